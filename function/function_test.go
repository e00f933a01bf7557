package function

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestStartRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	err := New().Start(context.Background(), map[string]string{"CASSANDRA_CONSISTENCY": "SOMETIMES"})
	if err == nil || !strings.Contains(err.Error(), "CASSANDRA_CONSISTENCY") || !strings.Contains(err.Error(), "SOMETIMES") {
		t.Fatalf("Start: got %v, want an error naming CASSANDRA_CONSISTENCY and its value", err)
	}
}

// TestUnreachableCassandra starts the function against a port where nothing
// listens: it must serve 503s with Retry-After, stay unready, keep
// retrying, and end its retry loop when stopped.
func TestUnreachableCassandra(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CASSANDRA_HOSTS": "127.0.0.1:1", "CASSANDRA_CONNECT_TIMEOUT": "200ms", "LOG_LEVEL": "error", "METRICS_ADDRESS": "127.0.0.1:0"}
	f := New()
	started := make(chan error, 1)
	go func() { started <- f.Start(context.Background(), env) }()

	// Poll until Start has installed the handler.
	deadline := time.Now().Add(5 * time.Second)
	var rec *httptest.ResponseRecorder
	for f.handler.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Start did not install the handler within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec = httptest.NewRecorder()
	f.Handle(rec, httptest.NewRequest(http.MethodPost, "/track", strings.NewReader(validJSON)))
	readProblem(t, rec, http.StatusServiceUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if ready, _ := f.Ready(context.Background()); ready {
		t.Error("Ready: got true without Cassandra, want false")
	}
	if alive, _ := f.Alive(context.Background()); !alive {
		t.Error("Alive: got false, want true: a lost Cassandra is no reason to restart")
	}
	select {
	case err := <-started:
		t.Fatalf("Start returned %v while Cassandra is unreachable, want it to keep retrying", err)
	default:
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-started:
		if err != nil {
			t.Errorf("Start after Stop: got %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Start still retrying after Stop")
	}
}

// TestMetricsListener: Start fails, naming the listener, when the metrics
// address is taken; otherwise /metrics answers until Stop, which closes it.
func TestMetricsListener(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	env := map[string]string{"CASSANDRA_HOSTS": "127.0.0.1:1", "CASSANDRA_CONNECT_TIMEOUT": "200ms", "LOG_LEVEL": "error"}
	env["METRICS_ADDRESS"] = taken.Addr().String()
	if err := New().Start(context.Background(), env); err == nil || !strings.Contains(err.Error(), "metrics listener") {
		t.Fatalf("Start with a taken METRICS_ADDRESS: got %v, want an error about the metrics listener", err)
	}

	env["METRICS_ADDRESS"] = "127.0.0.1:0"
	f := New()
	go func() { _ = f.Start(context.Background(), env) }()
	var addr string
	deadline := time.Now().Add(5 * time.Second)
	for addr == "" {
		f.mu.Lock()
		if f.tel != nil {
			addr = f.tel.MetricsAddr()
		}
		f.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("Start did not open the metrics listener within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("the metrics listener %s still accepts connections after Stop", addr)
	}
}

// TestStopBeforeStart: a Stop that comes while Start is still reading its
// configuration leaves nothing behind: Start gives up.
func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	f := New()
	if err := f.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CASSANDRA_HOSTS": "127.0.0.1:1", "LOG_LEVEL": "error", "METRICS_ADDRESS": "127.0.0.1:0"}
	done := make(chan error, 1)
	go func() { done <- f.Start(context.Background(), env) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start after Stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start after Stop still running after 5s: it went on connecting")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tel != nil {
		t.Errorf("Start after Stop kept its telemetry")
	}
}
