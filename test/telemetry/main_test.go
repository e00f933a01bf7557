// Package telemetry checks what an operator sees of the function with the
// consumers an operator runs: a real Prometheus server scrapes the
// function's metrics listener, and a real Jaeger receives its spans over
// OTLP/HTTP. The function runs as a process against the shared Cassandra
// node; every test has a function and a keyspace of its own.
package telemetry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

var (
	suite  *harness.Suite
	jaeger *harness.Jaeger
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if suite, err = harness.StartSuite("telemetry"); err != nil {
		fmt.Fprintf(os.Stderr, "telemetry: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	jaeger, err = harness.StartJaeger(ctx, suite.Dir)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "telemetry: %v\n", err)
		suite.Close(true)
		return 1
	}
	code := m.Run()
	if err := jaeger.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "telemetry: stop Jaeger: %v\n", err)
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- Jaeger log ---\n%s\n", jaeger.LogTail(30))
	}
	suite.Close(code != 0)
	return code
}

// startFunction runs the function on a fresh keyspace, with its spans
// going to the suite's Jaeger and its log in JSON, and waits until it is
// ready; the test's cleanup stops it and shows its log when the test
// failed.
func startFunction(t *testing.T, env ...string) (*harness.Function, string) {
	t.Helper()
	ks := harness.Keyspace(t, suite.Session, "tel")
	logPath := filepath.Join(suite.Dir, ks+".log")
	fn, err := harness.StartFunction(suite.Bin, logPath, append([]string{
		"CASSANDRA_HOSTS=" + suite.Hosts,
		"CASSANDRA_KEYSPACE=" + ks,
		"CASSANDRA_CONSISTENCY=ONE",
		"LOG_FORMAT=json",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + jaeger.OTLPEndpoint(),
		"OTEL_SERVICE_NAME=tracker-" + ks,
		"OTEL_TRACES_SAMPLER=parentbased_always_on",
	}, env...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fn.Stop(30 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("function log %s, last lines:\n%s", logPath, fn.LogTail(40))
		}
	})
	if err := fn.WaitReady(60 * time.Second); err != nil {
		t.Fatalf("the function did not become ready: %v\n%s", err, fn.LogTail(30))
	}
	return fn, ks
}
