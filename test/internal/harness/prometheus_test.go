package harness

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// exposition is a fixed /metrics page: a counter with two series and a
// gauge, in the text format the function's metrics will use.
const exposition = `# HELP harness_events_total Events seen.
# TYPE harness_events_total counter
harness_events_total{description="VIEW"} 3
harness_events_total{description="CLICK"} 1.5
# HELP harness_inflight Events in flight.
# TYPE harness_inflight gauge
harness_inflight 7
`

// TestPrometheusScrapesAndQueries runs the real Prometheus against a
// fixed exposition and reads the series back through the harness.
func TestPrometheusScrapesAndQueries(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte(exposition))
	}))
	defer srv.Close()
	target := strings.TrimPrefix(srv.URL, "http://")

	p, err := StartPrometheus(ctx, t.TempDir(), 200*time.Millisecond, target)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop: %v\n%s", err, p.LogTail(20))
		}
	}()
	if err := p.WaitScraped(ctx, target); err != nil {
		t.Fatalf("%v\n%s", err, p.LogTail(20))
	}

	got, err := p.Query(ctx, `sum by (description) (harness_events_total)`)
	if err != nil {
		t.Fatal(err)
	}
	want := Vector{
		{Labels: map[string]string{"description": "CLICK"}, Value: 1.5},
		{Labels: map[string]string{"description": "VIEW"}, Value: 3},
	}
	// Prometheus does not promise an order.
	if len(got) == 2 && got[0].Labels["description"] == "VIEW" {
		got[0], got[1] = got[1], got[0]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events by description (-want +got):\n%s", diff)
	}

	got, err = p.Query(ctx, `harness_inflight`)
	if err != nil {
		t.Fatal(err)
	}
	want = Vector{{Labels: map[string]string{"__name__": "harness_inflight", "instance": target, "job": "test"}, Value: 7}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("harness_inflight (-want +got):\n%s", diff)
	}

	if _, err := p.Query(ctx, `sum(`); err == nil {
		t.Error("a query with a syntax error: got no error")
	}
}

// TestPrometheusWaitScrapedSaysWhy waits for a target that refuses
// connections and expects the scrape error in the answer.
func TestPrometheusWaitScrapedSaysWhy(t *testing.T) {
	t.Parallel()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	target := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := StartPrometheus(ctx, t.TempDir(), 200*time.Millisecond, target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()

	wait, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	err = p.WaitScraped(wait, target)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("got %v, want an error that says the connection was refused", err)
	}
}

// TestPromtoolChecksMetrics runs promtool on a good and a bad exposition.
func TestPromtoolChecksMetrics(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := PromtoolInput(ctx, exposition, "check", "metrics"); err != nil {
		t.Errorf("a good exposition: %v", err)
	} else if strings.TrimSpace(out) != "" {
		t.Errorf("a good exposition: got %q, want no output", out)
	}
	// A counter's name must end in _total; promtool's linter says so.
	bad := "# HELP harness_events Events.\n# TYPE harness_events counter\nharness_events 1\n"
	if out, err := PromtoolInput(ctx, bad, "check", "metrics"); err == nil || !strings.Contains(out, "_total") {
		t.Errorf("a counter without _total: got %q, %v; want an error about _total", out, err)
	}
}
