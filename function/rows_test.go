package function

import (
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestBucketOfIsFNV1a pins the bucket hash: rows already stored were
// placed with 32-bit FNV-1a, and a retry must land in the same bucket.
func TestBucketOfIsFNV1a(t *testing.T) {
	t.Parallel()
	for i := range 1000 {
		id := fmt.Sprintf("event-%d-ü", i)
		h := fnv.New32a()
		h.Write([]byte(id))
		if got, want := bucketOf(id), int16(h.Sum32()%targetBuckets); got != want {
			t.Fatalf("bucketOf(%q): got %d, want %d", id, got, want)
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
	ev := Event{ID: "id-1", Username: "John", Target: "https://e.com/", Description: "VIEW", Source: "src"}
	got := rowsOf(&ev, occurred, received)
	want := [3]row{
		{"id-1", occurred, received, "John", "https://e.com/", "VIEW", "src"},
		{"John", day, occurred, "id-1", received, "https://e.com/", "VIEW", "src"},
		{"https://e.com/", day, bucketOf("id-1"), "VIEW", occurred, "id-1", "John", received},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	s := newCassandraStore(Config{CassandraKeyspace: "ks"}, nil)
	for i, stmt := range s.inserts {
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
