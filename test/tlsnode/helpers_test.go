package tlsnode

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"tracker/test/internal/harness"
)

var seq atomic.Int64

// startFunction runs the function with the node's settings
// (harness.Node.FunctionEnv: TLS, the client certificate, the role
// tracker, no schema creation) and env on top; a later entry wins.
func startFunction(t *testing.T, env ...string) *harness.Function {
	t.Helper()
	return startFunctionEnv(t, append(node.FunctionEnv(), env...))
}

// startFunctionEnv runs the function with env as its whole configuration,
// logging JSON at info, in an environment that holds nothing else of this
// process's (no CASSANDRA_* of the shell leaks in). The test's cleanup
// stops it and shows its log on failure.
func startFunctionEnv(t *testing.T, env []string) *harness.Function {
	t.Helper()
	logPath := filepath.Join(dir, fmt.Sprintf("%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), seq.Add(1)))
	all := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LOG_FORMAT=json", "LOG_LEVEL=info",
		"CASSANDRA_CONNECT_TIMEOUT=2s"}, env...)
	fn, err := harness.StartFunctionEnv(bin, logPath, all)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fn.Stop(30 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("function log %s, last lines:\n%s", logPath, fn.LogTail(30))
		}
	})
	return fn
}

// without is env without the entries of the names.
func without(env []string, names ...string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, name)
	})
}

// post sends one plain event with an id and a timestamp and returns the
// status, the Retry-After header and the id.
func post(t *testing.T, fn *harness.Function) (int, string, string) {
	t.Helper()
	id := fmt.Sprintf("tls-%d-%d", time.Now().UnixNano(), seq.Add(1))
	body := fmt.Sprintf(`{"id":%q,"timestamp":%q,"username":"tls","target":"https://shop.example/tls","description":"VIEW"}`,
		id, time.Now().UTC().Format(time.RFC3339))
	resp, err := http.Post(fn.URL+"/track", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /track: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), id
}

// expectStores waits until fn is ready, posts an event, and reads it back
// from the node as the superuser, over TLS.
func expectStores(t *testing.T, fn *harness.Function, keyspace string) {
	t.Helper()
	if err := fn.WaitReady(90 * time.Second); err != nil {
		t.Fatalf("the function did not become ready: %v\n%s", err, fn.LogTail(20))
	}
	status, _, id := post(t, fn)
	if status != http.StatusCreated {
		t.Fatalf("POST /track: got %d, want 201", status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := harness.Tables{Session: admin(t), Keyspace: keyspace}.ByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rows[id]; !ok {
		t.Fatalf("event %s was answered 201 but is not in %s.events_by_id", id, keyspace)
	}
}

// expectRefused waits until fn has logged a line with want (a cause, or a
// sentence of a log line), then checks that it serves unready: readiness
// 503 and /track 503 with Retry-After. It returns the log's lines.
func expectRefused(t *testing.T, fn *harness.Function, want string) []logLine {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !slices.ContainsFunc(logLines(t, fn), func(l logLine) bool { return l.has(want) }) {
		select {
		case <-fn.Exited():
			t.Fatalf("the function exited: %v", fn.ExitErr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within 60s", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, path := range []string{"/health/readiness", "/"} {
		resp, err := http.Get(fn.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s: got %d, want 503", path, resp.StatusCode)
		}
	}
	if status, retry, _ := post(t, fn); status != http.StatusServiceUnavailable || retry == "" {
		t.Errorf("POST /track: got %d with Retry-After %q, want 503 with Retry-After", status, retry)
	}
	return logLines(t, fn)
}

// expectOnce waits until fn has made three more connection attempts of
// outcome (a cause, or ok for a store that connected and failed after)
// and checks that its log still says want once: one line per distinct
// cause, not one per attempt.
func expectOnce(t *testing.T, fn *harness.Function, want, outcome string) {
	t.Helper()
	start := failedAttempts(t, fn, outcome)
	deadline := time.Now().Add(60 * time.Second)
	for failedAttempts(t, fn, outcome) < start+3 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 more connection attempts of outcome %s within 60s", outcome)
		}
		time.Sleep(100 * time.Millisecond)
	}
	n := 0
	for _, l := range logLines(t, fn) {
		if l.has(want) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d log lines with %q after %d attempts, want 1", n, want, failedAttempts(t, fn, outcome))
	}
}

// failedAttempts reads tracker_cassandra_connect_attempts_total of outcome
// cause from fn's metrics listener.
func failedAttempts(t *testing.T, fn *harness.Function, cause string) int {
	t.Helper()
	resp, err := http.Get("http://" + fn.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	prefix := `tracker_cassandra_connect_attempts_total{outcome="` + cause + `"} `
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			var n float64
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return int(n)
		}
	}
	return 0
}

// logLine is one JSON line of the function's log.
type logLine map[string]any

// has reports whether s appears in the line's message or any of its
// string values.
func (l logLine) has(s string) bool {
	for _, v := range l {
		if str, ok := v.(string); ok && strings.Contains(str, s) {
			return true
		}
	}
	return false
}

func logLines(t *testing.T, fn *harness.Function) []logLine {
	t.Helper()
	b, err := os.ReadFile(fn.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []logLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, l)
	}
	return out
}

// expectNoSecret checks that no line of fn's log holds any of secrets.
func expectNoSecret(t *testing.T, fn *harness.Function, secrets ...string) {
	t.Helper()
	b, err := os.ReadFile(fn.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if s != "" && bytes.Contains(b, []byte(s)) {
			t.Errorf("the log shows a secret (%d characters)", len(s))
		}
	}
}

// issueClient writes a client certificate from the node's CA, valid until
// notAfter, into files of the test's own, and returns their paths.
func issueClient(t *testing.T, name string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	ca, err := harness.LoadCA(node.CAFile(), node.CAKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(harness.IssueOptions{CommonName: "tracker", Client: true, NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := harness.WritePair(certFile, keyFile, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// admin opens a session to the node as the superuser over TLS, verifying
// the node by the name its certificate carries now; the test's cleanup
// closes it. A session per use: one kept across a restart with another
// node certificate would not reconnect.
func admin(t *testing.T) *gocql.Session {
	t.Helper()
	s, err := node.TLSSession()
	if err != nil {
		t.Fatalf("superuser session: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// restartNode stops the node gracefully and starts it again, which ends
// every connection to it.
func restartNode(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := node.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
}
