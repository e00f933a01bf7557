package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitStatements(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"one without a semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"comments and blanks", "-- a comment; with a semicolon\n\nA;\n  -- indented comment\n;;B;\n", []string{"A", "B"}},
		{"semicolon in a string", "ALTER ROLE r WITH PASSWORD = 'a;b''c;';X", []string{"ALTER ROLE r WITH PASSWORD = 'a;b''c;'", "X"}},
		{"semicolon in a quoted name", `CREATE TABLE "a;b" (k int PRIMARY KEY);`, []string{`CREATE TABLE "a;b" (k int PRIMARY KEY)`}},
		{"multi-line statement", "CREATE TABLE t (\n  k int PRIMARY KEY\n);\n", []string{"CREATE TABLE t (\n  k int PRIMARY KEY\n)"}},
		{"nothing", "-- only a comment\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, splitStatements(tc.text)); diff != "" {
				t.Errorf("splitStatements(%q) (-want +got):\n%s", tc.text, diff)
			}
		})
	}
}

// TestSplitSchema splits the schema that local.sh runs with -exec into its
// keyspace and three tables.
func TestSplitSchema(t *testing.T) {
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "schema.cql"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range splitStatements(string(b)) {
		got = append(got, strings.Join(strings.Fields(s)[:min(6, len(strings.Fields(s)))], " "))
	}
	want := []string{
		"CREATE KEYSPACE IF NOT EXISTS tracking",
		"CREATE TABLE IF NOT EXISTS tracking.events_by_id",
		"CREATE TABLE IF NOT EXISTS tracking.events_by_user",
		"CREATE TABLE IF NOT EXISTS tracking.events_by_target",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statements of schema.cql (-want +got):\n%s", diff)
	}
}
