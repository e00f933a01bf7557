package contract_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"tracker/test/contract"
	"tracker/test/internal/harness"
)

// These tests run the function as a process against the shared Cassandra
// (cassandra/local.sh start reuses a node that answers CQL, and never
// stops it), each in a keyspace of its own that is dropped after it.

// suite is the shared node, a session to it, and the function's binary.
var suite *harness.Suite

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if suite, err = harness.StartSuite("contract"); err != nil {
		fmt.Fprintf(os.Stderr, "contract: %v\n", err)
		return 1
	}
	code := m.Run()
	suite.Close(code != 0)
	return code
}

// startFunction runs the function with a fresh keyspace on the shared node.
func startFunction(t *testing.T, env ...string) (*harness.Function, string) {
	t.Helper()
	ks := harness.Keyspace(t, suite.Session, "contract")
	env = append([]string{"CASSANDRA_HOSTS=" + suite.Hosts, "CASSANDRA_KEYSPACE=" + ks, "CASSANDRA_CONSISTENCY=ONE"}, env...)
	fn, err := harness.StartFunction(suite.Bin, filepath.Join(suite.Dir, ks+".log"), env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fn.Stop(30 * time.Second)
		if t.Failed() {
			t.Logf("function log:\n%s", fn.LogTail(40))
		}
	})
	return fn, ks
}

func newChecker(t *testing.T) (*contract.Checker, *http.Client) {
	t.Helper()
	c, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Report(t) })
	return c, &http.Client{Transport: c.Transport(nil), Timeout: 20 * time.Second}
}

const (
	event   = `{"username":"contract","target":"https://www.google.com/","description":"VIEW"}`
	ceData  = `{"username":"contract","target":"https://shop.example/p/1","description":"CLICK"}`
	maxBody = 4096 // TRACK_MAX_BODY_BYTES of TestEveryKindOfAnswer
)

// call is one request of the API and the status it must get.
type call struct {
	name   string
	req    func(t *testing.T, url string) *http.Request
	status int
}

func plain(method, path, contentType, body string) func(*testing.T, string) *http.Request {
	return func(t *testing.T, url string) *http.Request {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, url+path, r)
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return req
	}
}

// with adds headers (name, value, ...) to the requests of req.
func with(req func(*testing.T, string) *http.Request, header ...string) func(*testing.T, string) *http.Request {
	return func(t *testing.T, url string) *http.Request {
		r := req(t, url)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
}

func ce(mode, id, data string) func(*testing.T, string) *http.Request {
	return func(t *testing.T, url string) *http.Request {
		e := cloudevents.NewEvent()
		e.SetID(id)
		e.SetSource("https://shop.example/web")
		e.SetType("dev.tracker.impression")
		e.SetTime(time.Now().Add(-time.Minute))
		if err := e.SetData(cloudevents.ApplicationJSON, []byte(data)); err != nil {
			t.Fatal(err)
		}
		events := []cloudevents.Event{e}
		if mode == "batch" {
			e2 := e.Clone()
			e2.SetID(id + "-2")
			events = append(events, e2)
		}
		req, err := harness.CloudEventRequest(url, mode, events...)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
}

// TestEveryKindOfAnswer sends every kind of request the API has, the kinds
// the integration suite sends among them, and checks each answer against
// the OpenAPI description as well as its status.
func TestEveryKindOfAnswer(t *testing.T) {
	const shop = "https://shop.example"
	fn, _ := startFunction(t, fmt.Sprintf("TRACK_MAX_BODY_BYTES=%d", maxBody), "TRACK_MAX_BATCH_EVENTS=5", "TRACK_CORS_ORIGINS="+shop)
	if err := fn.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	_, client := newChecker(t)
	run := time.Now().UnixNano()
	batch := func(n int) string {
		var events []string
		for i := range n {
			events = append(events, fmt.Sprintf(`{"id":"c-%d-%d","username":"contract","target":"https://a.b/","description":"CLICK","timestamp":"%s"}`,
				run, i, time.Now().UTC().Format(time.RFC3339)))
		}
		return "[" + strings.Join(events, ",") + "]"
	}
	calls := []call{
		{"health", plain(http.MethodGet, "/", "", ""), 200},
		{"health without body", plain(http.MethodHead, "/", "", ""), 200},
		{"readiness", plain(http.MethodGet, "/health/readiness", "", ""), 200},
		{"liveness", plain(http.MethodGet, "/health/liveness", "", ""), 200},
		{"event, curl -d", plain(http.MethodPost, "/track", "application/x-www-form-urlencoded", event), 201},
		{"event, JSON", plain(http.MethodPost, "/track", "application/json; charset=utf-8", event), 201},
		{"event, sendBeacon", plain(http.MethodPost, "/track", "text/plain;charset=UTF-8", event), 201},
		{"event, no type", plain(http.MethodPost, "/track", "", event), 201},
		{"batch", plain(http.MethodPost, "/track", "application/json", batch(3)), 201},
		{"binary CloudEvent", ce("binary", fmt.Sprint("b", run), ceData), 201},
		{"structured CloudEvent", ce("structured", fmt.Sprint("s", run), ceData), 201},
		{"CloudEvents batch", ce("batch", fmt.Sprint("cb", run), ceData), 201},
		{"invalid event", plain(http.MethodPost, "/track", "", strings.Replace(event, "VIEW", "HOVER", 1)), 400},
		{"batch with a bad event", plain(http.MethodPost, "/track", "application/json", `[`+event+`,{"username":"a","target":"nope","description":"VIEW"}]`), 400},
		{"not JSON", plain(http.MethodPost, "/track", "application/json", `{"username":`), 400},
		{"empty body", plain(http.MethodPost, "/track", "application/json", ""), 400},
		{"duplicate field", plain(http.MethodPost, "/track", "application/json", `{"username":"a","username":"b","target":"https://a.b/","description":"VIEW"}`), 400},
		{"invalid UTF-8", plain(http.MethodPost, "/track", "application/json", "{\"username\":\"\xff\",\"target\":\"https://a.b/\",\"description\":\"VIEW\"}"), 400},
		{"batch with one id for two events", plain(http.MethodPost, "/track", "application/json",
			fmt.Sprintf(`[{"id":"d-%d","username":"a","target":"https://a.b/","description":"VIEW"},{"id":"d-%d","username":"b","target":"https://a.b/","description":"VIEW"}]`, run, run)), 400},
		{"event with an id and no time", plain(http.MethodPost, "/track", "application/json", fmt.Sprintf(`{"id":"u-%d","username":"a","target":"https://a.b/","description":"VIEW"}`, run)), 201},
		{"its id for another event", plain(http.MethodPost, "/track", "application/json", fmt.Sprintf(`{"id":"u-%d","username":"b","target":"https://a.b/","description":"VIEW"}`, run)), 409},
		{"its id for another event, in a batch", plain(http.MethodPost, "/track", "application/json",
			fmt.Sprintf(`[{"id":"u-%d","username":"b","target":"https://a.b/","description":"VIEW"},`, run)+event+"]"), 409},
		{"CloudEvent with a bad description", ce("binary", "bad", strings.Replace(ceData, "CLICK", "HOVER", 1)), 400},
		{"CloudEvents batch with a bad event", ce("batch", "bad", `{"username":"a"}`), 400},
		{"unknown specversion", func(t *testing.T, url string) *http.Request {
			req := plain(http.MethodPost, "/track", "application/json", ceData)(t, url)
			req.Header.Set("ce-specversion", "9.9")
			return req
		}, 400},
		{"body over the limit", plain(http.MethodPost, "/track", "application/json", `{"username":"`+strings.Repeat("a", maxBody)+`"}`), 413},
		{"batch over the limit", plain(http.MethodPost, "/track", "application/json", batch(6)), 413},
		{"XML", plain(http.MethodPost, "/track", "application/xml", "<event/>"), 415},
		{"unparsable type", plain(http.MethodPost, "/track", "application/json; =", event), 415},
		{"event from a listed origin", with(plain(http.MethodPost, "/track", "application/json", event), "Origin", shop), 201},
		{"preflight of a listed origin", with(plain(http.MethodOptions, "/track", "", ""),
			"Origin", shop, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"), 204},
		{"OPTIONS without a preflight", plain(http.MethodOptions, "/track", "", ""), 204},
		{"event from an unlisted origin", with(plain(http.MethodPost, "/track", "application/json", event), "Origin", "https://other.example"), 403},
		{"preflight of an unlisted origin", with(plain(http.MethodOptions, "/track", "", ""),
			"Origin", "https://other.example", "Access-Control-Request-Method", "POST"), 403},
		{"GET /track", plain(http.MethodGet, "/track", "", ""), 405},
		{"DELETE /track", plain(http.MethodDelete, "/track", "", ""), 405},
		{"POST /", plain(http.MethodPost, "/", "application/json", event), 405},
		{"unknown path", plain(http.MethodGet, "/nope", "", ""), 404},
		{"unknown path, POST", plain(http.MethodPost, "/track/extra", "application/json", event), 404},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			resp, err := client.Do(c.req(t, fn.URL))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("got %d %s, want %d", resp.StatusCode, body, c.status)
			}
		})
	}
}

// TestUnavailableAnswers checks the answers of a function whose Cassandra
// is not reachable: 503 with Retry-After on / and /track, unready, alive.
func TestUnavailableAnswers(t *testing.T) {
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	fn, _ := startFunction(t, fmt.Sprintf("CASSANDRA_HOSTS=127.0.0.1:%d", port), "CASSANDRA_CONNECT_TIMEOUT=200ms")
	if err := fn.PollStatus("/health/liveness", http.StatusOK, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	_, client := newChecker(t)
	for _, c := range []call{
		{"health", plain(http.MethodGet, "/", "", ""), 503},
		{"health without body", plain(http.MethodHead, "/", "", ""), 503},
		{"readiness", plain(http.MethodGet, "/health/readiness", "", ""), 503},
		{"liveness", plain(http.MethodGet, "/health/liveness", "", ""), 200},
		{"event", plain(http.MethodPost, "/track", "application/json", event), 503},
		{"CloudEvent", ce("binary", "u1", ceData), 503},
		{"invalid event", plain(http.MethodPost, "/track", "", strings.Replace(event, "VIEW", "HOVER", 1)), 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := client.Do(c.req(t, fn.URL))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("got %d, want %d", resp.StatusCode, c.status)
			}
		})
	}
}

// TestInternalErrorAnswer makes Cassandra refuse a write for a reason no
// retry cures (a table dropped under the running function) and expects a
// 500 problem that says nothing of the driver's error.
func TestInternalErrorAnswer(t *testing.T) {
	fn, ks := startFunction(t)
	if err := fn.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	_, client := newChecker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := suite.Session.Query("DROP TABLE " + ks + ".events_by_target").WithContext(ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post(fn.URL+"/track", "application/json", strings.NewReader(event))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("got %d %s, want 500", resp.StatusCode, body)
	}
	for _, leak := range []string{"events_by_target", "unconfigured", "gocql", ks} {
		if bytes.Contains(bytes.ToLower(body), []byte(strings.ToLower(leak))) {
			t.Errorf("the 500 body tells the client %q: %s", leak, body)
		}
	}
}

// TestSchemathesis runs schemathesis against the description and a live
// function. .ci/run installs it and sets TRACKER_REQUIRE_SCHEMATHESIS=1,
// so that CI never skips it; elsewhere it runs when schemathesis is on the
// PATH (or SCHEMATHESIS names it). SCHEMATHESIS_MAX_EXAMPLES bounds the
// cases per operation (default 50).
func TestSchemathesis(t *testing.T) {
	bin := os.Getenv("SCHEMATHESIS")
	if bin == "" {
		bin, _ = exec.LookPath("schemathesis")
	}
	if bin == "" {
		if os.Getenv("TRACKER_REQUIRE_SCHEMATHESIS") != "" {
			t.Fatal("schemathesis is required (TRACKER_REQUIRE_SCHEMATHESIS is set) but not installed: pip install schemathesis")
		}
		t.Skip("schemathesis is not installed (pip install schemathesis); .ci/run installs it and runs this test")
	}
	examples := os.Getenv("SCHEMATHESIS_MAX_EXAMPLES")
	if examples == "" {
		examples = "50"
	}
	fn, _ := startFunction(t)
	if err := fn.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--config-file", filepath.Join(harness.Root(), "test", "contract", "schemathesis.toml"),
		"run", contract.SpecPath(),
		"--url", fn.URL,
		"--max-examples", examples,
		"--workers", "2",
	)
	cmd.Dir = t.TempDir() // schemathesis keeps its Hypothesis database in the working directory
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("schemathesis: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("schemathesis:\n%s", strings.Join(lines[max(0, len(lines)-6):], "\n"))
}
