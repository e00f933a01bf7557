package store

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSchemaFileMatchesCode keeps cassandra/schema.cql, which operators run
// by hand, equal to the statements the function runs at start.
func TestSchemaFileMatchesCode(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../cassandra/schema.cql")
	if err != nil {
		t.Fatal(err)
	}
	comments := regexp.MustCompile(`(?m)--.*$`)
	var fromFile []string
	for _, stmt := range strings.Split(comments.ReplaceAllString(string(raw), ""), ";") {
		if s := normalizeCQL(stmt); s != "" {
			fromFile = append(fromFile, s)
		}
	}
	var fromCode []string
	for _, stmt := range schemaStatements("tracking", "{'class': 'SimpleStrategy', 'replication_factor': 1}") {
		fromCode = append(fromCode, normalizeCQL(stmt))
	}
	if diff := cmp.Diff(fromCode, fromFile); diff != "" {
		t.Errorf("cassandra/schema.cql differs from schemaStatements (-code +file):\n%s", diff)
	}
}

func normalizeCQL(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// TestBucketOfSpreadsIDs checks that the bucket hash stays in range and
// spreads ids over the buckets: a hash that put every id in one bucket
// would bring back the unbounded partition the buckets exist to avoid.
func TestBucketOfSpreadsIDs(t *testing.T) {
	t.Parallel()
	counts := make([]int, targetBuckets)
	const ids = 16000
	for i := range ids {
		b := bucketOf(fmt.Sprintf("evt-%d", i))
		if b < 0 || b >= targetBuckets {
			t.Fatalf("bucketOf(evt-%d) = %d, want 0..%d", i, b, targetBuckets-1)
		}
		counts[b]++
	}
	// A uniform hash puts about 1000 in each; 800 and 1200 are more than
	// six standard deviations (about 31) away.
	for b, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("bucket %d holds %d of %d ids, want about %d: %v", b, n, ids, ids/targetBuckets, counts)
		}
	}
}

// TestStatementsFollowTheTables checks the statements built from tables
// against their columns and partition keys.
func TestStatementsFollowTheTables(t *testing.T) {
	t.Parallel()
	s := newStatements("ks")
	want := statements{
		inserts: [len(tables)]string{
			"INSERT INTO ks.events_by_id (event_id, occurred_at, received_at, username, target, description, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
			"INSERT INTO ks.events_by_user (username, day, occurred_at, event_id, received_at, target, description, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			"INSERT INTO ks.events_by_target (target, day, bucket, description, occurred_at, event_id, username, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		},
		probes: [len(tables)]string{
			"SELECT event_id FROM ks.events_by_id WHERE event_id = ?",
			"SELECT username FROM ks.events_by_user WHERE username = ? AND day = ?",
			"SELECT target FROM ks.events_by_target WHERE target = ? AND day = ? AND bucket = ?",
		},
		claim: "INSERT INTO ks.events_by_id (event_id, occurred_at, received_at, username, target, description, source) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS",
	}
	if diff := cmp.Diff(want, s, cmp.AllowUnexported(statements{})); diff != "" {
		t.Errorf("statements (-want +got):\n%s", diff)
	}
	for i, tbl := range tables {
		if n := countPlaceholders(s.probes[i]); n != len(tbl.probeKey) {
			t.Errorf("%s: the probe has %d placeholders, its key %d values", tbl.name, n, len(tbl.probeKey))
		}
	}
}
