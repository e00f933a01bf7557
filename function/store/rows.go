package store

import (
	"hash/fnv"
	"time"

	"tracker/function/event"
)

// row is the values of one INSERT, in the column order of its table.
type row []any

// rowsOf returns ev's rows in the order of tables, each in the order of
// its table's columns. The rows share one backing array and each value is
// boxed once, however many rows hold it.
func rowsOf(ev *event.Event, occurred, received time.Time) [len(tables)]row {
	var (
		id, user, target, desc, source any = ev.ID, ev.Username, ev.Target, ev.Description, ev.Source
		occ, rec, day                  any = occurred, received, time.Date(occurred.Year(), occurred.Month(), occurred.Day(), 0, 0, 0, 0, time.UTC)
	)
	v := []any{
		id, occ, rec, user, target, desc, source,
		user, day, occ, id, rec, target, desc, source,
		target, day, bucketOf(ev.ID), desc, occ, id, user, rec,
	}
	return [len(tables)]row{byID: v[0:7:7], byUser: v[7:15:15], byTarget: v[15:23:23]}
}

// bucketOf spreads a target's events over targetBuckets partitions by a
// stable hash of the event id (32-bit FNV-1a), so a retry lands in the
// same bucket.
func bucketOf(id string) int16 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int16(h.Sum32() % targetBuckets)
}

// maxBatchRows bounds the rows of one batch: a request's rows of one
// partition past it go in further batches, written concurrently.
const maxBatchRows = 50

// partitions gathers the rows of one request's events_by_user and
// events_by_target by partition, in the order each partition was first
// seen, so that the rows of one partition are written as one
// single-partition unlogged batch: one mutation for Cassandra, where a
// statement per row costs it a mutation each. A batch never spans two
// partitions (that would make its coordinator send each partition's
// rows to other replicas). events_by_id has a partition per event, so
// its rows are not gathered.
type partitions struct {
	index map[partitionKey]int
	list  []partition
}

type partition struct {
	table int
	rows  []row
}

// partitionKey is a row's table and partition key: username and day in
// events_by_user; target, day and bucket in events_by_target.
type partitionKey struct {
	table  int
	text   string
	day    int64
	bucket int16
}

func newPartitions(events int) *partitions {
	return &partitions{index: make(map[partitionKey]int, 2*events)}
}

// add puts values, a row of table (byUser or byTarget) as rowsOf makes
// it, with the rows of its partition.
func (p *partitions) add(table int, values row) {
	k := partitionKey{table: table, text: values[0].(string), day: values[1].(time.Time).Unix()}
	if table == byTarget {
		k.bucket = values[2].(int16)
	}
	i, ok := p.index[k]
	if !ok {
		i = len(p.list)
		p.index[k] = i
		p.list = append(p.list, partition{table: table})
	}
	p.list[i].rows = append(p.list[i].rows, values)
}
