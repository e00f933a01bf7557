package store

import (
	"testing"
	"time"

	"tracker/function/event"
)

// TestSameContent holds the claim's check to every content column of
// events_by_id and to none of its times: a retry without a time takes
// the stored times, and another event under the id is a conflict.
func TestSameContent(t *testing.T) {
	t.Parallel()
	ev := event.Event{ID: "a", Retryable: true, Username: "u", Target: "https://a.b/", Description: "VIEW", ReceivedAt: time.Now()}
	stored := func(change func(map[string]any)) map[string]any {
		// As MapScanCAS returns it: [applied] and every column of the row.
		row := map[string]any{"[applied]": false, "event_id": "a", "username": "u", "target": "https://a.b/", "description": "VIEW", "source": "",
			"occurred_at": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "received_at": time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)}
		if change != nil {
			change(row)
		}
		return row
	}
	ce := ev
	ce.ID, ce.Source = "/s 1", "/s"
	for _, tt := range []struct {
		name   string
		ev     event.Event
		stored map[string]any
		want   bool
	}{
		{"the same event", ev, stored(nil), true},
		{"other times", ev, stored(func(r map[string]any) { r["occurred_at"] = time.Now() }), true},
		{"a null source", ev, stored(func(r map[string]any) { r["source"] = nil }), true},
		{"the same CloudEvent", ce, stored(func(r map[string]any) { r["source"] = "/s" }), true},
		{"another username", ev, stored(func(r map[string]any) { r["username"] = "v" }), false},
		{"another target", ev, stored(func(r map[string]any) { r["target"] = "https://a.b/x" }), false},
		{"another description", ev, stored(func(r map[string]any) { r["description"] = "CLICK" }), false},
		{"another source", ce, stored(func(r map[string]any) { r["source"] = "/t" }), false},
		{"no username", ev, stored(func(r map[string]any) { delete(r, "username") }), false},
	} {
		if got := sameContent(&tt.ev, tt.stored); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
