// Package integration runs the tracking function as a separate process
// against a real Apache Cassandra, the shared node that the project's own
// cassandra/local.sh starts (test/internal/harness), and reads back with
// gocql what each request stored.
// Nothing here is mocked; when Cassandra cannot start, the suite fails.
package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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
	// functionLog is the output of the function at baseURL.
	functionLog string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	suite, err := harness.StartSuite("it")
	if err != nil {
		return fail("%v", err)
	}
	hosts, session, functionBin = suite.Hosts, suite.Session, suite.Bin
	keyspace = fmt.Sprintf("it_%d", time.Now().UnixNano())
	logPath := filepath.Join(suite.Dir, "function.log")
	functionLog = logPath
	fn, err := harness.StartFunction(functionBin, logPath,
		"CASSANDRA_HOSTS="+hosts,
		"CASSANDRA_KEYSPACE="+keyspace,
		"CASSANDRA_CONSISTENCY=ONE",
		"TRACK_MAX_BATCH_EVENTS=100",
		// The production stream: JSON at info (checkLogStream).
		"LOG_FORMAT=json",
		"LOG_LEVEL=info",
	)
	if err != nil {
		suite.Close(true)
		return fail("start the function: %v", err)
	}
	baseURL = fn.URL
	code := 1
	if err := fn.WaitReady(60 * time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "integration: the function did not become ready: %v\n", err)
	} else {
		code = runChecked(m)
	}
	fn.Stop(30 * time.Second)
	if err := checkLogStream(logPath); err != nil {
		fmt.Fprintf(os.Stderr, "integration: the function's log: %v\n", err)
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- function log (%s) ---\n%s\n", logPath, fn.LogTail(60))
	} else if err := harness.DropKeyspace(session, keyspace); err != nil {
		fmt.Fprintf(os.Stderr, "drop keyspace %s: %v\n", keyspace, err)
	}
	suite.Close(code != 0)
	return code
}

// runChecked runs the tests with every answer they get also checked
// against the OpenAPI description, function/openapi.yaml.
func runChecked(m *testing.M) int {
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
	return code
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "integration: "+format+"\n", args...)
	return 1
}
