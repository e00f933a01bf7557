package event

import (
	"strconv"
	"strings"
)

// One id is one event: the id is the key of every row an event is stored
// in, so two events of one request that share an id must be the same
// event, sent twice, or the request is rejected.

// sameContent reports whether ev and o, two events with one id, would
// store the same rows: every field that reaches Cassandra is equal, the
// time they happened included (both zero, the store's to choose, or the
// same instant). ReceivedAt is not compared: it is the request's, or the
// first delivery's once stored.
func (ev *Event) sameContent(o *Event) bool {
	return ev.ID == o.ID && ev.Username == o.Username && ev.Target == o.Target &&
		ev.Description == o.Description && ev.Source == o.Source && ev.OccurredAt.Equal(o.OccurredAt)
}

// DuplicateIDs names the events of a batch that share an id with an event
// of other content: each of them gets a duplicate_id error on field that
// names the other indexes of its id. Events that share an id and their
// content are one event sent twice, and no error. valid[i] false leaves
// event i out: it has errors of its own, and its content is not known.
// Server-made ids never repeat, so only client ids are compared.
func DuplicateIDs(events []Event, valid []bool, field string) []FieldError {
	if len(events) < 2 {
		return nil
	}
	compared := func(i int) bool { return valid[i] && events[i].Retryable }
	var (
		first     map[string]int   // the first index of each id
		conflicts map[string][]int // every index of an id whose events differ
	)
	for i := range events {
		if !compared(i) {
			continue
		}
		if first == nil {
			first = make(map[string]int, len(events))
		}
		j, seen := first[events[i].ID]
		switch {
		case !seen:
			first[events[i].ID] = i
		case !events[j].sameContent(&events[i]):
			if conflicts == nil {
				conflicts = map[string][]int{}
			}
			conflicts[events[i].ID] = nil
		}
	}
	if conflicts == nil {
		return nil
	}
	for i := range events {
		if g, ok := conflicts[events[i].ID]; ok && compared(i) {
			conflicts[events[i].ID] = append(g, i)
		}
	}
	var fe fieldErrors
	for i := range events {
		g, ok := conflicts[events[i].ID]
		if !ok || !compared(i) {
			continue
		}
		others := make([]string, 0, len(g)-1)
		for _, k := range g {
			if k != i {
				others = append(others, strconv.Itoa(k))
			}
		}
		index := i
		fe.add(&index, field, "duplicate_id", "is also the id of index %s, and the events differ: one id is one event", strings.Join(others, ", "))
	}
	return fe
}
