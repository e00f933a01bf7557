package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

// TestSpeculationWithOneNode: speculative execution asks a second node
// when the first is slow; with one node there is none, and the driver
// would take the failed second attempt ("no hosts available") as the
// statement's answer. With a speculative delay far below every
// statement's latency, a function on the single shared node must still
// store every event.
func TestSpeculationWithOneNode(t *testing.T) {
	t.Parallel()
	const events = 60
	ks := harness.Keyspace(t, session, "it_spec")
	fn, err := harness.StartFunction(functionBin, filepath.Join(t.TempDir(), "function.log"),
		"CASSANDRA_HOSTS="+hosts,
		"CASSANDRA_KEYSPACE="+ks,
		"CASSANDRA_SPECULATIVE_DELAY=1us",
	)
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop(30 * time.Second)
	if err := fn.WaitReady(time.Minute); err != nil {
		t.Fatal(err)
	}

	day := time.Now().UTC().Truncate(time.Millisecond)
	ids := make([]string, events)
	statuses := make([]int, events)
	var wg sync.WaitGroup
	for i := range events {
		ids[i] = fmt.Sprintf("0198a3c6-5f10-4b1e-9c2d-%012d", time.Now().UnixNano()%1e12+int64(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"id":%q,"username":"spec","target":"https://a.b/%d","description":"VIEW","timestamp":%q}`,
				ids[i], i, day.Format(time.RFC3339Nano))
			resp, err := http.Post(fn.URL+"/track", "application/json", strings.NewReader(body))
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusCreated {
			t.Errorf("event %d: status %d, want 201\n%s", i, s, fn.LogTail(5))
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := harness.Tables{Session: session, Keyspace: ks}.ByID(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != events {
		t.Errorf("%d of %d events in events_by_id", len(rows), events)
	}
}
