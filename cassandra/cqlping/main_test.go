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

// TestReadPassword checks that the probe reads a password file as the
// function's store does: the whole content, only trailing CR and LF
// characters trimmed, and nothing left an error.
func TestReadPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, content, want string
		wantErr             bool
	}{
		{name: "no line end", content: "s3cret", want: "s3cret"},
		{name: "LF", content: "s3cret\n", want: "s3cret"},
		{name: "CRLF", content: "s3cret\r\n", want: "s3cret"},
		{name: "several line ends", content: "s3cret\n\r\n\n", want: "s3cret"},
		{name: "more than one line", content: "first\nsecond\n", want: "first\nsecond"},
		{name: "CR inside kept", content: "a\rb\r\n", want: "a\rb"},
		{name: "spaces kept", content: " s3cret \t\n", want: " s3cret \t"},
		{name: "empty", content: "", wantErr: true},
		{name: "line ends only", content: "\r\n\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "password")
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readPassword(file)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("readPassword(%q) = %q, want an error", tc.content, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("readPassword(%q): %v", tc.content, err)
			}
			if got != tc.want {
				t.Errorf("readPassword(%q) = %q, want %q", tc.content, got, tc.want)
			}
		})
	}
}

// TestReadPasswordMissingFile checks that a file that is not there is an
// error naming the flag, not an empty password.
func TestReadPasswordMissingFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "absent")
	got, err := readPassword(file)
	if err == nil {
		t.Fatalf("readPassword(%s) = %q, want an error", file, got)
	}
	if !strings.Contains(err.Error(), "-password-file") {
		t.Errorf("readPassword(%s) error %q, want it to name -password-file", file, err)
	}
}
