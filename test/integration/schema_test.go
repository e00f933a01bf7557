package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

// TestMissingSchemaWithoutCreate: with CASSANDRA_SCHEMA_CREATE=false and no
// tables, the function stays unready, answers /track with 503 and says in
// its log which table is missing; it creates nothing.
func TestMissingSchemaWithoutCreate(t *testing.T) {
	t.Parallel()
	ks := fmt.Sprintf("it_noschema_%d", time.Now().UnixNano())
	fn, err := harness.StartFunction(functionBin, filepath.Join(t.TempDir(), "function.log"),
		"CASSANDRA_HOSTS="+hosts,
		"CASSANDRA_KEYSPACE="+ks,
		"CASSANDRA_SCHEMA_CREATE=false",
	)
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop(30 * time.Second)

	want := "table " + ks + ".events_by_id is missing"
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(fn.LogPath)
		if strings.Contains(string(b), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say %q within 30s:\n%s", want, fn.LogTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for path, wantStatus := range map[string]int{"/health/readiness": http.StatusServiceUnavailable, "/": http.StatusServiceUnavailable} {
		resp, err := http.Get(fn.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Errorf("GET %s: got %d, want %d", path, resp.StatusCode, wantStatus)
		}
	}
	resp, err := http.Post(fn.URL+"/track", "application/json",
		strings.NewReader(`{"username":"u","target":"https://a.b/","description":"VIEW"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST /track: got %d with Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	iter := session.Query(`SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?`, ks).Iter()
	var name string
	if iter.Scan(&name) {
		t.Errorf("keyspace %s exists; with CASSANDRA_SCHEMA_CREATE=false nothing may be created", ks)
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
}
