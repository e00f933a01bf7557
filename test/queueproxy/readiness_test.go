package queueproxy

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

// readinessTimeout is the function's CASSANDRA_TIMEOUT and connect timeout
// in TestReadinessFollowsCassandra: short, so that it notices the outage
// soon.
const readinessTimeout = time.Second

// TestReadinessFollowsCassandra stops the suite's own Cassandra under the
// function and starts it again. The queue-proxy answers the probes of the
// kubelet and of the activator from the function's readiness probe
// (SERVING_READINESS_PROBE): ready while Cassandra takes writes, 503
// while it is down, ready again once it is back, without a restart; in
// the outage requests get the function's 503 with Retry-After.
func TestReadinessFollowsCassandra(t *testing.T) {
	n := ownNode(t, readinessTimeout)
	ks := harness.KeyspaceName(t, "qp") // the node is thrown away whole
	qp := startPod(t, n.Host, ks,
		"CASSANDRA_TIMEOUT="+readinessTimeout.String(), "CASSANDRA_CONNECT_TIMEOUT="+readinessTimeout.String())
	client := newClient(2)
	run := fmt.Sprint(time.Now().UnixNano())
	user, target := "ready-"+run, "https://qp.example/ready/"+run

	probeBoth := func(want int, wantBody string) {
		t.Helper()
		for _, ua := range []string{harness.KubeletUserAgent, harness.ActivatorUserAgent} {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			status, body, err := qp.Probe(ctx, ua)
			cancel()
			if err != nil || status != want || (wantBody != "" && body != wantBody) {
				t.Errorf("probe as %s: got %d %q (%v), want %d %q", ua, status, body, err, want, wantBody)
			}
		}
	}
	probeBoth(http.StatusOK, "queue")
	if r := post(client, qp.URL, event(run+"-before", user, target)); r.Status != http.StatusCreated {
		t.Fatalf("before the outage: got %d %q (%v), want 201", r.Status, r.Body, r.Err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	if err := qp.PollProbe(http.StatusServiceUnavailable, time.Minute); err != nil {
		t.Fatalf("with Cassandra stopped: %v", err)
	}
	t.Logf("the queue-proxy reported the function unready %s after Cassandra stopped", time.Since(down).Round(time.Millisecond))
	probeBoth(http.StatusServiceUnavailable, "")
	r := post(client, qp.URL, event(run+"-down", user, target))
	if r.Status != http.StatusServiceUnavailable || r.RetryAfter == "" {
		t.Errorf("a request while Cassandra is down: got %d %q, Retry-After %q (%v), want the function's 503 with Retry-After", r.Status, r.Body, r.RetryAfter, r.Err)
	}

	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	if err := qp.PollProbe(http.StatusOK, 2*time.Minute); err != nil {
		t.Fatalf("with Cassandra back: %v", err)
	}
	t.Logf("the queue-proxy reported the function ready %s after Cassandra answered CQL again", time.Since(up).Round(time.Millisecond))
	probeBoth(http.StatusOK, "queue")
	var after result
	if !waitFor(time.Minute, func() bool {
		after = post(client, qp.URL, event(run+"-after", user, target))
		return after.Status == http.StatusCreated
	}) {
		t.Fatalf("after the outage: got %d %q (%v), want 201", after.Status, after.Body, after.Err)
	}

	session, err := harness.Session(n.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	if m := missing(t, session, ks, []string{run + "-before", run + "-after"}); len(m) > 0 {
		t.Errorf("answered 201, not stored: %q", m)
	}
}
