package store

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tracker/function/event"
)

// TestBucketOfIsPinned pins the bucket of a few ids: rows already stored
// were placed with 32-bit FNV-1a modulo 16, and a retry must land in the
// same bucket, so any change of the hash must show here.
func TestBucketOfIsPinned(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id   string
		want int16
	}{
		{"a", 12},
		{"evt-1", 4},
		{"b-1", 11},
		{"https://shop.example/web 42", 11},
		{"0193f0c2-7f5e-7a1b-9c3d-2e4f5a6b7c8d", 9},
		{"ü-event", 15},
		{"x", 7},
		{"id-1", 2},
	} {
		if got := bucketOf(tt.id); got != tt.want {
			t.Errorf("bucketOf(%q): got %d, want %d", tt.id, got, tt.want)
		}
	}
}

// TestRowsOf checks each row's values against the column order of its
// INSERT.
func TestRowsOf(t *testing.T) {
	t.Parallel()
	occurred := time.Date(2026, 5, 4, 23, 59, 59, 0, time.UTC)
	received := occurred.Add(time.Minute)
	day := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	ev := event.Event{ID: "id-1", Username: "John", Target: "https://e.com/", Description: "VIEW", Source: "src"}
	got := rowsOf(&ev, occurred, received)
	want := [len(tables)]row{
		{"id-1", occurred, received, "John", "https://e.com/", "VIEW", "src"},
		{"John", day, occurred, "id-1", received, "https://e.com/", "VIEW", "src"},
		{"https://e.com/", day, bucketOf("id-1"), "VIEW", occurred, "id-1", "John", received},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	for i, stmt := range newStatements("ks").inserts {
		if n := countPlaceholders(stmt); n != len(got[i]) {
			t.Errorf("insert %d has %d placeholders, its row %d values", i, n, len(got[i]))
		}
	}
}

func countPlaceholders(s string) int {
	n := 0
	for _, c := range s {
		if c == '?' {
			n++
		}
	}
	return n
}

// BenchmarkRowsOf builds the three rows of one event, as Save does for
// every event.
func BenchmarkRowsOf(b *testing.B) {
	at := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	ev := event.Event{ID: "bench-1", Username: "user-1", Target: "https://example.com/page/1", Description: "VIEW", OccurredAt: at, ReceivedAt: at}
	b.ReportAllocs()
	for b.Loop() {
		benchRows = rowsOf(&ev, ev.OccurredAt, ev.ReceivedAt)
	}
}

// benchRows keeps the compiler from dropping the rows.
var benchRows [len(tables)]row

// TestPartitionsGatherOnePartitionEach: the events_by_user rows of one
// user and day are one partition, another user or day is another, and an
// events_by_target row goes with the rows of its target, day and bucket;
// partitions keep the order they were first seen in.
func TestPartitionsGatherOnePartitionEach(t *testing.T) {
	t.Parallel()
	day1 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	ev := func(id, user, target string, at time.Time) event.Event {
		return event.Event{ID: id, Username: user, Target: target, Description: "VIEW", OccurredAt: at}
	}
	// "a" and "x" share no bucket (12 and 7); "evt-1" and "id-1" neither
	// (4 and 2); "b-1" and "https://shop.example/web 42" share 11.
	evs := []event.Event{
		ev("a", "u1", "https://t/1", day1),
		ev("x", "u1", "https://t/1", day1.Add(time.Hour)),
		ev("b-1", "u2", "https://t/1", day1),
		ev("https://shop.example/web 42", "u1", "https://t/1", day1),
		ev("evt-1", "u1", "https://t/1", day2),
	}
	p := newPartitions(len(evs))
	for i := range evs {
		p.add(byUser, &evs[i], evs[i].OccurredAt, i)
		p.add(byTarget, &evs[i], evs[i].OccurredAt, i)
	}
	type group struct {
		Table int
		IDs   []string
	}
	var got []group
	for _, g := range p.list {
		var ids []string
		for _, i := range g.events {
			ids = append(ids, evs[i].ID)
		}
		got = append(got, group{g.table, ids})
	}
	want := []group{
		{byUser, []string{"a", "x", "https://shop.example/web 42"}},
		{byTarget, []string{"a"}},
		{byTarget, []string{"x"}},
		{byUser, []string{"b-1"}},
		{byTarget, []string{"b-1", "https://shop.example/web 42"}},
		{byUser, []string{"evt-1"}},
		{byTarget, []string{"evt-1"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("partitions (-want +got):\n%s", diff)
	}
}

// TestRowOfIsRowsOf: a batch's rows, built one table at a time, hold the
// values that a single event's rows hold, in the same column order.
func TestRowOfIsRowsOf(t *testing.T) {
	t.Parallel()
	occurred := time.Date(2026, 5, 4, 23, 59, 59, 0, time.UTC)
	received := occurred.Add(time.Second)
	ev := event.Event{ID: "evt-1", Username: "u1", Target: "https://t/1", Description: "CLICK", Source: "web"}
	all := rowsOf(&ev, occurred, received)
	for table := range tables {
		if diff := cmp.Diff(all[table], rowOf(table, &ev, occurred, received)); diff != "" {
			t.Errorf("table %d (-rowsOf +rowOf):\n%s", table, diff)
		}
	}
}
