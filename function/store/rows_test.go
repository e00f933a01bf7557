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
