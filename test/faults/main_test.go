// Package faults proves that a 2xx from the tracking function means the
// event is in Cassandra, under the faults a Knative pod meets: SIGTERM in
// the middle of a stream, a Cassandra that freezes, stops and comes back, a
// Cassandra that is not there at start, load far above capacity, and slow
// clients. The function runs as a separate process, built from this
// repository; Cassandra is a real node of this suite's own, started and
// stopped through cassandra/local.sh with its own state directory and
// ports, so the shared node on 9042 is never touched.
//
// The tests share that node and run one after another; each brings it to
// the state it needs. Every answer the function gives goes through the
// OpenAPI contract checker.
package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tracker/test/contract"
	"tracker/test/internal/harness"
)

var (
	// trackerBin is the product binary, function/cmd/tracker.
	trackerBin string
	// probeBin is the same function plus a goroutine counter (./probe).
	probeBin string
	// node is this suite's own Cassandra.
	node *harness.Node
	// workDir holds the binaries, the node's state and the function logs.
	workDir string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if workDir, err = os.MkdirTemp("", "tracker-faults-"); err != nil {
		return fail("%v", err)
	}
	if trackerBin, err = harness.Build(workDir, ".", "./function/cmd/tracker", "tracker"); err != nil {
		return fail("%v", err)
	}
	if probeBin, err = harness.Build(workDir, "test", "./faults/probe", "tracker-probe"); err != nil {
		return fail("%v", err)
	}
	if node, err = harness.NewNode(filepath.Join(workDir, "cassandra")); err != nil {
		return fail("%v", err)
	}
	code := m.Run()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_ = node.Signal(syscall.SIGCONT) // in case a test froze it and died
	if err := node.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
	}
	if code == 0 {
		os.RemoveAll(workDir)
	} else {
		fmt.Fprintf(os.Stderr, "faults: logs kept in %s\n", workDir)
	}
	return code
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "faults: "+format+"\n", args...)
	return 1
}

// warmTimeout is the shortest CASSANDRA_TIMEOUT of the suite's tests
// (TestCassandraOutage's): nodeUp returns only once the node takes writes
// within it.
const warmTimeout = outageTimeout

// nodeUp brings the suite's Cassandra up, or finds it up, and waits until
// it takes writes within warmTimeout: a node that has just started may
// not yet, and a test that counts successes must not count them from it.
// A node that never gets there fails the test with its log's tail.
func nodeUp(t *testing.T) {
	t.Helper()
	nodeStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	took, err := node.WarmUp(ctx, warmTimeout)
	if err != nil {
		t.Fatalf("the suite's Cassandra does not take writes: %v", err)
	}
	t.Logf("node %s took writes within %s after a warm-up of %s", node.Host, warmTimeout, took.Round(time.Millisecond))
}

// nodeStart brings the suite's Cassandra up, or finds it up, and returns
// once it answers CQL, without a warm-up: for tests that measure how the
// function recovers from a restart, and then poll with deadlines.
func nodeStart(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Second)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// nodeDown stops the suite's Cassandra gracefully, or finds it stopped.
func nodeDown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := node.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// startFunction runs bin against the suite's node with a keyspace of the
// test's own; the test's cleanup stops it and, on failure, shows its log.
func startFunction(t *testing.T, bin, keyspace string, env ...string) *harness.Function {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	logPath := filepath.Join(workDir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	env = append([]string{"CASSANDRA_HOSTS=" + node.Host, "CASSANDRA_KEYSPACE=" + keyspace}, env...)
	f, err := harness.StartFunction(bin, logPath, env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Stop(40 * time.Second)
		if t.Failed() {
			t.Logf("function log %s, last lines:\n%s", logPath, f.LogTail(40))
		}
	})
	return f
}

// keyspaceFor is a fresh keyspace name for the test. The suite's node is
// thrown away whole at the end, so nothing drops it.
func keyspaceFor(t *testing.T) string { return harness.KeyspaceName(t, "f") }

// newChecker is the OpenAPI contract checker of one test; the test's
// cleanup reports every answer that breaks the description.
func newChecker(t *testing.T) *contract.Checker {
	t.Helper()
	c, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Report(t) })
	return c
}
