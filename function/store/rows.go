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
