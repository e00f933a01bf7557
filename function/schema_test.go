package function

import (
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
	raw, err := os.ReadFile("../cassandra/schema.cql")
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

func TestBucketOfIsStableAndInRange(t *testing.T) {
	t.Parallel()
	seen := map[int16]bool{}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "evt-1", "https://x y"} {
		b := bucketOf(id)
		if b < 0 || b >= targetBuckets {
			t.Errorf("bucketOf(%q) = %d, want 0..%d", id, b, targetBuckets-1)
		}
		if b != bucketOf(id) {
			t.Errorf("bucketOf(%q) changed between calls", id)
		}
		seen[b] = true
	}
	if len(seen) < 3 {
		t.Errorf("10 ids fell into %d buckets, want a spread", len(seen))
	}
}
