package faults

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

// TestCassandraDownAtStart starts the function while its Cassandra is
// down: it must serve at once, unready, answering 503 with Retry-After,
// and store the first event without a restart once Cassandra comes up.
// (It runs first in the suite, while the suite's node has never started.)
func TestCassandraDownAtStart(t *testing.T) {
	nodeDown(t)
	ks := keyspaceFor(t)
	checker := newChecker(t)
	client := newClient(checker, 4)
	fn := startFunction(t, trackerBin, ks, "CASSANDRA_CONNECT_TIMEOUT=1s")
	if err := fn.PollStatus("/health/liveness", http.StatusOK, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	body := plainRequest(event("down-"+run, "down-"+run, "https://faults.example/down", "CLICK", time.Time{})).Body
	post := func() (int, string) {
		resp, err := client.Post(fn.URL+"/track", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST /track: %v", err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	get := func(path string) int {
		resp, err := client.Get(fn.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}

	// Without Cassandra: unready, 503 with Retry-After, still retrying.
	// Check at once and again after three failed connection attempts (the
	// log says why once; the metric counts every attempt), to see that the
	// process neither exits nor changes its answer.
	attempts := func() int { return failedConnects(t, fn) }
	for i, failed := range []int{0, 3} {
		if !waitFor(30*time.Second, func() bool { return attempts() >= failed }) {
			t.Fatalf("the function logged %d failed connection attempts in 30s, want %d", attempts(), failed)
		}
		if got := get("/health/readiness"); got != http.StatusServiceUnavailable {
			t.Errorf("check %d: readiness: got %d, want 503", i, got)
		}
		if got := get("/"); got != http.StatusServiceUnavailable {
			t.Errorf("check %d: GET /: got %d, want 503", i, got)
		}
		if status, retry := post(); status != http.StatusServiceUnavailable || retry == "" {
			t.Errorf("check %d: POST /track: got %d with Retry-After %q, want 503 with Retry-After", i, status, retry)
		}
	}

	// Cassandra comes up; the same process stores the event.
	startingAt := time.Now()
	nodeStart(t) // no warm-up: how soon the function stores on a cold node is measured
	cqlAt := time.Now()
	var firstOK time.Duration
	var last string
	if !waitFor(60*time.Second, func() bool {
		status, retry := post()
		last = fmt.Sprintf("%d (Retry-After %q)", status, retry)
		return status == http.StatusCreated
	}) {
		t.Fatalf("no 201 within 60s after Cassandra answered CQL; last answer %s", last)
	}
	firstOK = time.Since(cqlAt)
	select {
	case <-fn.Exited():
		t.Fatalf("the function exited: %v", fn.ExitErr())
	default:
	}
	if got := get("/health/readiness"); got != http.StatusOK {
		t.Errorf("readiness after the first 201: got %d, want 200", got)
	}
	if missing := missingByID(t, readSession(t), ks, []string{"down-" + run}); len(missing) > 0 {
		t.Errorf("the event answered 201 is not stored")
	}
	t.Logf("Cassandra started in %s; first 201 %s after it answered CQL, same process (pid %d)",
		cqlAt.Sub(startingAt).Round(time.Millisecond), firstOK.Round(time.Millisecond), fn.PID())
}

// failedConnects is how many connection attempts fn has counted as
// failed: tracker_cassandra_connect_attempts_total of every outcome but ok,
// read from its metrics listener.
func failedConnects(t *testing.T, fn *harness.Function) int {
	t.Helper()
	resp, err := http.Get("http://" + fn.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "tracker_cassandra_connect_attempts_total{") || strings.Contains(line, `outcome="ok"`) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		n += int(v)
	}
	return n
}
