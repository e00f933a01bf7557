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
		occ, rec, day                  any = occurred, received, dayOf(occurred)
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

// partitions gathers one request's events by their partitions of
// events_by_user and events_by_target, in the order each partition was
// first seen, so that the rows of one partition are written as one
// single-partition unlogged batch: one mutation for Cassandra, where a
// statement per row costs it a mutation each. A batch never spans two
// partitions (that would make its coordinator send each partition's
// rows to other replicas). events_by_id has a partition per event, so
// its rows are not gathered. It holds the events' indexes, not their
// rows: a batch's rows are built when a writer is about to take it, so
// that a request holds the rows of the statements in flight, not of
// all its events at once.
type partitions struct {
	index map[partitionKey]int
	list  []partition
}

type partition struct {
	table  int
	events []int // indexes in the request's events
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

// add puts event i of the request, ev, which occurred at occurred, with
// the other events of its partition of table (byUser or byTarget).
func (p *partitions) add(table int, ev *event.Event, occurred time.Time, i int) {
	k := partitionKey{table: table, text: ev.Username, day: dayOf(occurred).Unix()}
	if table == byTarget {
		k.text, k.bucket = ev.Target, bucketOf(ev.ID)
	}
	j, ok := p.index[k]
	if !ok {
		j = len(p.list)
		p.index[k] = j
		p.list = append(p.list, partition{table: table})
	}
	p.list[j].events = append(p.list[j].events, i)
}

// rowOf returns ev's row of table alone, the same values as
// rowsOf(ev, occurred, received)[table].
func rowOf(table int, ev *event.Event, occurred, received time.Time) row {
	switch table {
	case byUser:
		return row{ev.Username, dayOf(occurred), occurred, ev.ID, received, ev.Target, ev.Description, ev.Source}
	case byTarget:
		return row{ev.Target, dayOf(occurred), bucketOf(ev.ID), ev.Description, occurred, ev.ID, ev.Username, received}
	}
	return row{ev.ID, occurred, received, ev.Username, ev.Target, ev.Description, ev.Source}
}

// dayOf is the day partition of an event that occurred at t.
func dayOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
