// Package integration runs the tracking function as a separate process
// against a real Apache Cassandra, started by the project's own
// cassandra/local.sh, and reads back with gocql what each request stored.
// Nothing here is mocked; when Cassandra cannot start, the suite fails.
package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"tracker/test/contract"
	"tracker/test/internal/harness"
)

var (
	// baseURL is the running function, e.g. http://127.0.0.1:41234.
	baseURL string
	// keyspace is fresh for every run, so runs never see each other's rows.
	keyspace string
	// session reads back what the function wrote.
	session *gocql.Session
	// functionBin is the function's binary, for tests that start their own.
	functionBin string
	// hosts is where Cassandra answers CQL.
	hosts string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	hosts = harness.SharedHosts()
	// The project's script reuses a node that already answers CQL and
	// otherwise starts one; either way the node must take writes within
	// the function's CASSANDRA_TIMEOUT before the tests count on it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	_, err := harness.StartShared(ctx, harness.DefaultTimeout)
	cancel()
	if err != nil {
		return fail("the shared Cassandra: %v", err)
	}

	keyspace = fmt.Sprintf("it_%d", time.Now().UnixNano())
	cluster := gocql.NewCluster(strings.Split(hosts, ",")...)
	cluster.Timeout = 10 * time.Second
	cluster.ConnectTimeout = 10 * time.Second
	cluster.Consistency = gocql.One
	if session, err = cluster.CreateSession(); err != nil {
		return fail("connect to Cassandra at %s: %v", hosts, err)
	}
	defer session.Close()

	tmp, err := os.MkdirTemp("", "tracker-it-*")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmp)
	bin, err := harness.Build(tmp, ".", "./function/cmd/tracker", "tracker")
	if err != nil {
		return fail("build the function: %v", err)
	}
	functionBin = bin
	// The log outlives a failed run, for its reader.
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("tracker-it-%d.log", os.Getpid()))
	fn, err := harness.StartFunction(bin, logPath,
		"CASSANDRA_HOSTS="+hosts,
		"CASSANDRA_KEYSPACE="+keyspace,
		"CASSANDRA_CONSISTENCY=ONE",
		"TRACK_MAX_BATCH_EVENTS=100",
	)
	if err != nil {
		return fail("start the function: %v", err)
	}
	defer fn.Stop(30 * time.Second)
	baseURL = fn.URL

	if err := fn.WaitReady(60 * time.Second); err != nil {
		return fail("the function did not become ready: %v\n--- function log ---\n%s", err, fn.LogTail(40))
	}
	// Every answer the tests get is also checked against the OpenAPI
	// description, function/openapi.yaml.
	checker, err := contract.Load()
	if err != nil {
		return fail("%v", err)
	}
	http.DefaultClient.Transport = checker.Transport(http.DefaultTransport)
	code := m.Run()
	fmt.Fprintln(os.Stderr, checker.Summary())
	for _, f := range checker.Failures() {
		fmt.Fprintf(os.Stderr, "answer breaks the OpenAPI description: %s\n", f)
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- function log (%s) ---\n%s\n", logPath, fn.LogTail(60))
	} else {
		os.Remove(logPath)
	}
	dropCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := session.Query("DROP KEYSPACE IF EXISTS " + keyspace).WithContext(dropCtx).Exec(); err != nil {
		fmt.Fprintf(os.Stderr, "drop keyspace %s: %v\n", keyspace, err)
	}
	return code
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "integration: "+format+"\n", args...)
	return 1
}
