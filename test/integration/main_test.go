// Package integration runs the tracking function as a separate process
// against a real Apache Cassandra, started by the project's own
// cassandra/local.sh, and reads back with gocql what each request stored.
// Nothing here is mocked; when Cassandra cannot start, the suite fails.
package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"tracker/test/contract"
)

var (
	// baseURL is the running function, e.g. http://127.0.0.1:41234.
	baseURL string
	// keyspace is fresh for every run, so runs never see each other's rows.
	keyspace string
	// session reads back what the function wrote.
	session *gocql.Session
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs("../..")
	if err != nil {
		return fail("%v", err)
	}
	hosts := os.Getenv("CASSANDRA_HOSTS")
	if hosts == "" {
		hosts = "127.0.0.1:9042"
	}
	// The project's script reuses a node that already answers CQL and
	// otherwise starts one; it fails loudly with the log's tail.
	start := exec.Command(filepath.Join(root, "cassandra", "local.sh"), "start")
	start.Stdout, start.Stderr = os.Stderr, os.Stderr
	start.Env = append(os.Environ(), "CASSANDRA_HOSTS="+hosts)
	if err := start.Run(); err != nil {
		return fail("cassandra/local.sh start: %v", err)
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

	bin := filepath.Join(os.TempDir(), fmt.Sprintf("tracker-it-%d", os.Getpid()))
	build := exec.Command("go", "build", "-o", bin, "./function/cmd/tracker")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fail("build the function: %v", err)
	}
	defer os.Remove(bin)

	addr, err := freeAddr()
	if err != nil {
		return fail("%v", err)
	}
	baseURL = "http://" + addr
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("tracker-it-%d.log", os.Getpid()))
	logFile, err := os.Create(logPath)
	if err != nil {
		return fail("%v", err)
	}
	defer logFile.Close()
	fn := exec.Command(bin)
	fn.Env = append(os.Environ(),
		"LISTEN_ADDRESS="+addr,
		"CASSANDRA_HOSTS="+hosts,
		"CASSANDRA_KEYSPACE="+keyspace,
		"CASSANDRA_CONSISTENCY=ONE",
		"TRACK_MAX_BATCH_EVENTS=100",
		"LOG_FORMAT=text",
	)
	fn.Stdout, fn.Stderr = logFile, logFile
	if err := fn.Start(); err != nil {
		return fail("start the function: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- fn.Wait() }()
	defer func() {
		_ = fn.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = fn.Process.Kill()
		}
	}()

	if err := waitReady(exited, 60*time.Second); err != nil {
		log, _ := os.ReadFile(logPath)
		return fail("the function did not become ready: %v\n--- function log ---\n%s", err, tail(string(log), 40))
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
		log, _ := os.ReadFile(logPath)
		fmt.Fprintf(os.Stderr, "--- function log (%s) ---\n%s\n", logPath, tail(string(log), 60))
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

// waitReady polls func-go's readiness endpoint until it answers 200.
func waitReady(exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("the process exited: %v", err)
		default:
		}
		resp, err := client.Get(baseURL + "/health/readiness")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s", timeout)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "integration: "+format+"\n", args...)
	return 1
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
