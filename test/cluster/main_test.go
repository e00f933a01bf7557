// Package cluster proves the durability and availability claims of the
// production topology on a real three-node Cassandra cluster: replication
// factor 3 in one data center and LOCAL_QUORUM, read from
// knative/configmap.yaml itself, with the function as a separate process
// built from this repository. The nodes are cassandra/local.sh's cluster
// (CASSANDRA_LOCAL_CLUSTER=1, 127.0.0.1-3:9242); the tests crash, stop,
// freeze and restart them through the same script, one test after another,
// and read back every event the function acknowledged.
package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"tracker/test/internal/harness"
)

var (
	cluster harness.Cluster
	// trackerBin is the product binary, function/cmd/tracker.
	trackerBin string
	// workDir holds the binary and the function logs.
	workDir string
	// deployed is the function's configuration from knative/configmap.yaml.
	deployed map[string]string
	// checker reads rows back at the consistency the function writes with.
	checker *gocql.Session
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	if deployed, err = configMap(); err != nil {
		return fail("%v", err)
	}
	if workDir, err = os.MkdirTemp("", "tracker-cluster-"); err != nil {
		return fail("%v", err)
	}
	if trackerBin, err = harness.Build(workDir, ".", "./function/cmd/tracker", "tracker"); err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	started := time.Now()
	err = cluster.Start(ctx)
	if err == nil {
		err = cluster.WaitRing(ctx, []int{1, 2, 3}, allUp())
	}
	cancel()
	if err != nil {
		for n := 1; n <= harness.ClusterNodes; n++ {
			fmt.Fprintf(os.Stderr, "---- node %d, last lines of its log ----\n%s\n", n, cluster.LogTail(n, 40))
		}
		return fail("the cluster did not start: %v", err)
	}
	fmt.Fprintf(os.Stderr, "cluster: three nodes up in %s\n", time.Since(started).Round(time.Second))
	if checker, err = checkSession(); err != nil {
		return fail("%v", err)
	}

	code := m.Run()

	checker.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for n := 1; n <= harness.ClusterNodes; n++ {
		_ = cluster.ThawNode(ctx, n) // in case a test froze it and died
	}
	if err := cluster.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
	}
	if code == 0 {
		os.RemoveAll(workDir)
	} else {
		fmt.Fprintf(os.Stderr, "cluster: function logs kept in %s\n", workDir)
	}
	return code
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "cluster: "+format+"\n", args...)
	return 1
}

// configMap reads the data of knative/configmap.yaml.
func configMap() (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(harness.Root(), "knative", "configmap.yaml"))
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(b, &cm); err != nil {
		return nil, fmt.Errorf("knative/configmap.yaml: %w", err)
	}
	for _, k := range []string{"CASSANDRA_CONSISTENCY", "CASSANDRA_LOCAL_DC", "CASSANDRA_REPLICATION", "CASSANDRA_TIMEOUT"} {
		if cm.Data[k] == "" {
			return nil, fmt.Errorf("knative/configmap.yaml has no %s", k)
		}
	}
	return cm.Data, nil
}

// functionEnv is the environment that points the function at the cluster
// the way the ConfigMap points it at the StatefulSet: the same data
// center, replication, consistency and timeout; the contact points are
// the local nodes, and the local nodes speak plain CQL without passwords.
func functionEnv(keyspace string) []string {
	env := []string{"CASSANDRA_HOSTS=" + cluster.Hosts(), "CASSANDRA_KEYSPACE=" + keyspace}
	for _, k := range []string{"CASSANDRA_CONSISTENCY", "CASSANDRA_LOCAL_DC", "CASSANDRA_REPLICATION", "CASSANDRA_TIMEOUT"} {
		env = append(env, k+"="+deployed[k])
	}
	return env
}

// timeout is the ConfigMap's CASSANDRA_TIMEOUT.
func timeout(t *testing.T) time.Duration {
	d, err := time.ParseDuration(deployed["CASSANDRA_TIMEOUT"])
	if err != nil {
		t.Fatalf("CASSANDRA_TIMEOUT %q: %v", deployed["CASSANDRA_TIMEOUT"], err)
	}
	return d
}

// consistency is the ConfigMap's CASSANDRA_CONSISTENCY.
func consistency() gocql.Consistency {
	c, err := gocql.ParseConsistencyWrapper(deployed["CASSANDRA_CONSISTENCY"])
	if err != nil {
		panic(err)
	}
	return c
}

// checkSession is a session to every node that reads at the function's
// consistency.
func checkSession() (*gocql.Session, error) { return checkSessionAt(consistency()) }

// checkSessionAt is a session to every node that reads at consistency c.
func checkSessionAt(level gocql.Consistency) (*gocql.Session, error) {
	c := gocql.NewCluster(strings.Split(cluster.Hosts(), ",")...)
	c.Timeout, c.ConnectTimeout = 10*time.Second, 10*time.Second
	c.Consistency = level
	c.ReconnectInterval = time.Second
	return c.CreateSession()
}

func allUp() map[int]string {
	return map[int]string{1: "UN", 2: "UN", 3: "UN"}
}

// startFunction runs the function against the cluster with a keyspace of
// the test's own, plus env; the test's cleanup stops it and, on failure,
// shows its log.
func startFunction(t *testing.T, keyspace string, env ...string) *harness.Function {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	logPath := filepath.Join(workDir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := harness.StartFunction(trackerBin, logPath, append(functionEnv(keyspace), env...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Stop(40 * time.Second)
		if t.Failed() {
			t.Logf("function log %s, last lines:\n%s", logPath, f.LogTail(40))
		}
	})
	if err := f.WaitReady(2 * time.Minute); err != nil {
		t.Fatalf("the function did not get ready: %v\n%s", err, f.LogTail(30))
	}
	return f
}

// restoreCluster brings every node back up and waits until each sees the
// others up, so that the next test starts from a whole cluster; it runs
// in the test's cleanup, and a test that stopped nodes on purpose calls
// it too.
func restoreCluster(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for n := 1; n <= harness.ClusterNodes; n++ {
		_ = cluster.ThawNode(ctx, n)
	}
	if err := cluster.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitRing(ctx, []int{1, 2, 3}, allUp()); err != nil {
		t.Fatal(err)
	}
}

// noSpeculativeReads turns off Cassandra's speculative retry of reads on
// the keyspace's tables, so that a read at ONE through one node answers
// from that node's own data and not from a faster replica.
func noSpeculativeReads(t *testing.T, keyspace string) {
	t.Helper()
	for _, table := range []string{"events_by_id", "events_by_user", "events_by_target"} {
		q := fmt.Sprintf("ALTER TABLE %s.%s WITH speculative_retry = 'NONE'", keyspace, table)
		if err := checker.Query(q).Exec(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// dropKeyspace drops the test's keyspace when it passed.
func dropKeyspace(t *testing.T, keyspace string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("keyspace %s kept for a look at its rows", keyspace)
			return
		}
		if err := harness.DropKeyspace(checker, keyspace); err != nil {
			t.Logf("drop keyspace %s: %v", keyspace, err)
		}
	})
}
