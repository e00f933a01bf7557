package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
)

// checkLogStream reads the log of the suite's function, which ran at
// LOG_LEVEL=info with LOG_FORMAT=json: every line it printed, func-go's
// and the driver's included, must be one JSON object at info or above,
// and the lines an operator looks for first must be there in that shape.
func checkLogStream(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var errs []error
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			errs = append(errs, fmt.Errorf("line %d is not JSON: %q", n, sc.Text()))
			continue
		}
		switch line["level"] {
		case "INFO", "WARN", "ERROR":
		default:
			errs = append(errs, fmt.Errorf("line %d has level %v at LOG_LEVEL=info: %s", n, line["level"], sc.Text()))
		}
		if _, ok := line["time"].(string); !ok {
			errs = append(errs, fmt.Errorf("line %d has no time: %s", n, sc.Text()))
		}
		msg, _ := line["msg"].(string)
		switch {
		case msg == "configuration":
			if cfg, ok := line["config"].(map[string]any); !ok || cfg["CASSANDRA_KEYSPACE"] != keyspace {
				errs = append(errs, fmt.Errorf("line %d: the configuration line has no config.CASSANDRA_KEYSPACE %q: %s", n, keyspace, sc.Text()))
			}
			seen["configuration"] = true
		case msg == "connected to Cassandra":
			seen["connected"] = true
		case line["component"] == "func-go":
			seen["func-go"] = true
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	for _, want := range []string{"configuration", "connected", "func-go"} {
		if !seen[want] {
			errs = append(errs, fmt.Errorf("no %s line in the log", want))
		}
	}
	return errors.Join(errs...)
}

// TestFloodOfInvalidRequestsIsQuiet: a client that sends garbage must not
// fill the log at info. Rejections are logged at debug, so 10,000 of them
// add no rejection line, and at most a few others (the driver's). Not
// parallel: the flood takes the cores, and the suite's
// concurrent lightweight transactions would time out beside it.
func TestFloodOfInvalidRequestsIsQuiet(t *testing.T) {
	logPath := functionLog
	before, beforeRejections := countLines(t, logPath)
	const requests, workers = 10000, 4
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < requests; i += workers {
				resp, err := client.Post(baseURL+"/track", "application/json",
					strings.NewReader(`{"username":"flood","target":"not a url","description":"VIEW"}`))
				status := 0
				if err == nil {
					status = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if statuses[http.StatusBadRequest] != requests {
		t.Fatalf("answers: got %v, want %d × 400", statuses, requests)
	}
	lines, rejections := countLines(t, logPath)
	if added := lines - before; added > 5 {
		t.Errorf("%d invalid requests added %d log lines at info; want at most a handful (5)", requests, added)
	}
	// Rejections are logged at debug, not at info rate-limited.
	if rejections > beforeRejections {
		t.Errorf("%d invalid requests added %d rejection lines at LOG_LEVEL=info; want none", requests, rejections-beforeRejections)
	}
}

// countLines counts the lines of the log at path, and those among them
// about a rejected request.
func countLines(t *testing.T, path string) (lines, rejections int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n")), bytes.Count(b, []byte(`"msg":"request rejected"`))
}
