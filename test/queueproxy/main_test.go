// Package queueproxy runs the tracking function behind Knative's real
// queue-proxy (knative.dev/serving/cmd/queue at the version test/go.mod
// requires), configured by Knative's own reconciler code from
// knative/service.yaml (harness.MakeRevision), and checks what a client,
// the kubelet and the activator see through it: events stored, readiness
// that follows Cassandra, a pod terminated the way the kubelet does it, and
// load past containerConcurrency and the queue-proxy's queue.
//
// The queue-proxy listens on fixed ports (8022, 9090), so the tests run one
// after another, and the harness's file lock keeps other packages' and
// processes' queue-proxies from running at the same time.
package queueproxy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"tracker/test/internal/harness"
)

var (
	// suite holds the shared node's hosts and session, the function's
	// binary and the logs.
	suite *harness.Suite
	// node is the suite's own Cassandra, for the test that stops it;
	// started by that test.
	node *harness.Node
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if suite, err = harness.StartSuite("queueproxy"); err != nil {
		return fail("%v", err)
	}
	// The first build on a machine compiles the queue-proxy's
	// dependencies; later ones come from the build cache.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	began := time.Now()
	_, err = harness.QueueProxyBinary(ctx)
	cancel()
	if err != nil {
		suite.Close(true)
		return fail("%v", err)
	}
	fmt.Fprintf(os.Stderr, "queueproxy: the queue-proxy built (or found in the build cache) in %s\n", time.Since(began).Round(100*time.Millisecond))
	code := m.Run()
	if node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if err := node.Stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "queueproxy: %v\n", err)
		}
	}
	suite.Close(code != 0)
	return code
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "queueproxy: "+format+"\n", args...)
	return 1
}

// startPod starts the function against hosts with keyspace ks, the
// environment the manifest gives it and env, and the queue-proxy in front
// of it; it waits until the queue-proxy reports it ready. The test's
// cleanup kills both and, on failure, shows their logs.
func startPod(t *testing.T, hosts, ks string, env ...string) *harness.QueueProxy {
	t.Helper()
	rev, err := harness.MakeRevision(0)
	if err != nil {
		t.Fatal(err)
	}
	manifestEnv, err := rev.FunctionEnv()
	if err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	stamp := time.Now().UnixNano()
	fnLog := filepath.Join(suite.Dir, fmt.Sprintf("%s-%d-function.log", name, stamp))
	qpLog := filepath.Join(suite.Dir, fmt.Sprintf("%s-%d-queue-proxy.log", name, stamp))
	fnEnv := append(append(manifestEnv, "CASSANDRA_HOSTS="+hosts, "CASSANDRA_KEYSPACE="+ks, "CASSANDRA_CONSISTENCY=ONE"), env...)
	fn, err := harness.StartFunction(suite.Bin, fnLog, fnEnv...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fn.Stop(40 * time.Second); err != nil {
			t.Errorf("function: %v", err)
		}
		if t.Failed() {
			t.Logf("function log %s, last lines:\n%s", fnLog, fn.LogTail(30))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	qp, err := harness.StartQueueProxy(ctx, fn, qpLog)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the function's, so it runs first: the queue-proxy
	// goes before the function it fronts.
	t.Cleanup(func() {
		if err := qp.Kill(); err != nil {
			t.Errorf("queue-proxy: %v", err)
		}
		if t.Failed() {
			t.Logf("queue-proxy log %s, last lines:\n%s", qpLog, qp.LogTail(30))
		}
	})
	if err := qp.WaitReady(90 * time.Second); err != nil {
		t.Fatal(err)
	}
	return qp
}

// ownNode starts the suite's own Cassandra, or finds it up, and waits
// until it takes writes within timeout.
func ownNode(t *testing.T, timeout time.Duration) *harness.Node {
	t.Helper()
	if node == nil {
		n, err := harness.NewNode(filepath.Join(suite.Dir, "cassandra"))
		if err != nil {
			t.Fatal(err)
		}
		node = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := node.WarmUp(ctx, timeout); err != nil {
		t.Fatalf("the suite's Cassandra does not take writes: %v", err)
	}
	return node
}

// readContext bounds the reads of one test.
func readContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// missing reads ids from events_by_id of ks and returns those absent.
func missing(t *testing.T, session *gocql.Session, ks string, ids []string) []string {
	t.Helper()
	found, err := harness.Tables{Session: session, Keyspace: ks}.ByID(readContext(t), ids...)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}
