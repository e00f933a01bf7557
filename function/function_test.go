package function

import (
	"context"
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
