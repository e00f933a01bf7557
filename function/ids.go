package function

import (
	"tracker/function/event"
)

// uniqueEvents returns the events of a request with each id once, for the
// store, and for each event of the request its position among them. The
// decoders have already rejected a request whose events share an id but
// not their content (event.DuplicateIDs), so an event left out is the
// same event sent again: it is stored once and answered at each index.
// Without repeats (the common case) it returns events itself and a nil at.
func uniqueEvents(events []event.Event) (unique []event.Event, at []int) {
	if !hasRepeats(events) {
		return events, nil
	}
	unique = make([]event.Event, 0, len(events)-1)
	at = make([]int, len(events))
	first := make(map[string]int, len(events))
	for i := range events {
		if events[i].Retryable {
			if j, ok := first[events[i].ID]; ok {
				at[i] = j
				continue
			}
			first[events[i].ID] = len(unique)
		}
		at[i] = len(unique)
		unique = append(unique, events[i])
	}
	return unique, at
}

// hasRepeats reports whether two events share a client id. Server-made
// ids never repeat.
func hasRepeats(events []event.Event) bool {
	if len(events) < 2 {
		return false
	}
	var seen map[string]struct{}
	for i := range events {
		if !events[i].Retryable {
			continue
		}
		if seen == nil {
			seen = make(map[string]struct{}, len(events))
		}
		if _, ok := seen[events[i].ID]; ok {
			return true
		}
		seen[events[i].ID] = struct{}{}
	}
	return false
}
