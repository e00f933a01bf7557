package queueproxy

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

// overloadBatch is the events of one request: requests heavy enough that
// the function's memory would show requests let through beyond
// containerConcurrency.
const overloadBatch = 50

// queueFull is the queue-proxy's answer when its breaker's queue is full
// (queue.ErrRequestQueueFull); tooMany is in the function's own refusal
// past TRACK_MAX_INFLIGHT.
const (
	queueFull = "pending request queue full"
	tooMany   = "too many events"
	// requestTimeout is the body of the queue-proxy's 504 once a request
	// has taken the revision's timeoutSeconds.
	requestTimeout = "request timeout"
)

// overloadTimeout is the function's CASSANDRA_TIMEOUT here: long, so that
// a node slowed by the load (or by a busy machine) answers 201 late rather
// than 503; the queue-proxy's breaker, not Cassandra, is under test.
const overloadTimeout = 10 * time.Second

// TestOverload sends more requests at once than containerConcurrency plus
// the queue-proxy's queue (ten times containerConcurrency) hold. The
// queue-proxy must answer the excess 503 itself; the function must never
// serve more than containerConcurrency requests at once (its in-flight
// gauge), nor refuse one (its TRACK_MAX_INFLIGHT is set to exactly what
// containerConcurrency batches hold; a 503 after a Cassandra timeout is
// counted, not failed); its peak memory must stay within the
// manifest's limit and near what containerConcurrency requests take; and
// every event answered 201 must be stored.
func TestOverload(t *testing.T) {
	ks := harness.Keyspace(t, suite.Session, "qp")
	rev, err := harness.MakeRevision(0)
	if err != nil {
		t.Fatal(err)
	}
	cc, depth := rev.ContainerConcurrency(), rev.QueueDepth()
	limit, err := rev.MemoryLimit()
	if err != nil {
		t.Fatal(err)
	}
	qp := startPod(t, suite.Hosts, ks, "TRACK_MAX_INFLIGHT="+strconv.Itoa(cc*overloadBatch), "CASSANDRA_TIMEOUT="+overloadTimeout.String())
	fn := qp.Function
	run := fmt.Sprint(time.Now().UnixNano())
	users := make([]string, 8)
	for i := range users {
		users[i] = fmt.Sprintf("over-%s-%d", run, i)
	}
	client := newClient(cc + depth + 64)
	batch := func(phase string) func(n int) result {
		return func(n int) result {
			events := make([]map[string]string, overloadBatch)
			for i := range events {
				events[i] = event(fmt.Sprintf("%s-%s-%d-%d", phase, run, n, i), users[(n+i)%len(users)], "https://qp.example/over/"+strconv.Itoa(i%4))
			}
			return post(client, qp.URL, events...)
		}
	}
	phase := func(name string, workers int, d time.Duration) []result {
		ld := &load{workers: workers, send: batch(name)}
		stop := make(chan struct{})
		time.AfterFunc(d, func() { close(stop) })
		return ld.run(stop)
	}

	// containerConcurrency requests at a time: the function's working set.
	base := phase("base", cc, 3*time.Second)
	hwmBase, err := harness.ProcStatusKB(fn.PID(), "VmHWM")
	if err != nil {
		t.Fatal(err)
	}

	// Past the breaker: more requests at once than it admits and queues.
	var peak atomic.Int64
	sampling, cancel := context.WithCancel(context.Background())
	sampled := make(chan int)
	go func() { sampled <- sampleInFlight(sampling, fn.MetricsAddr, &peak) }()
	over := phase("over", cc+depth+64, 5*time.Second)
	cancel()
	samples := <-sampled
	hwmOver, err := harness.ProcStatusKB(fn.PID(), "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	qpRSS, _ := harness.ProcStatusKB(qp.PID(), "VmHWM")
	t.Logf("containerConcurrency %d, queue %d; %d at a time: %v; %d at a time: %v", cc, depth, cc, tally(base), cc+depth+64, tally(over))
	t.Logf("function's requests in flight: at most %d in %d samples; peak RSS %d MiB at %d at a time, %d MiB under overload (limit %d MiB); queue-proxy's peak RSS %d MiB",
		peak.Load(), samples, hwmBase>>10, cc, hwmOver>>10, limit>>20, qpRSS>>10)

	var shed, timedOut, qpTimedOut int
	var bad []result
	for _, r := range append(slices.Clone(base), over...) {
		switch {
		case r.Status == http.StatusCreated:
		case r.Status == http.StatusServiceUnavailable && strings.Contains(r.Body, queueFull):
			shed++
		case r.Status == http.StatusServiceUnavailable && !strings.Contains(r.Body, tooMany) && r.RetryAfter != "":
			timedOut++ // the function's 503 after a Cassandra timeout
		case r.Status == http.StatusGatewayTimeout && strings.Contains(r.Body, requestTimeout):
			// The queue-proxy's own answer to a request not answered
			// within timeoutSeconds, its wait in the breaker's queue
			// included: on a busy machine the queue (ten times
			// containerConcurrency batches) can take that long.
			qpTimedOut++
		default:
			bad = append(bad, r)
		}
	}
	t.Logf("%d answered 503 by the queue-proxy, %d by the function after a Cassandra timeout, %d 504 by the queue-proxy after timeoutSeconds", shed, timedOut, qpTimedOut)
	if len(bad) > 0 {
		r := bad[0]
		t.Errorf("%d answers neither 201 nor the queue-proxy's 503 %q nor a timeout (the function's 503, the queue-proxy's 504), e.g. %d %q (%v)", len(bad), queueFull, r.Status, r.Body, r.Err)
	}
	if shed == 0 {
		t.Errorf("%d requests at once past a breaker of %d+%d: no 503 %q", cc+depth+64, cc, depth, queueFull)
	}
	if samples == 0 {
		t.Errorf("no sample of the function's requests in flight")
	}
	if got := peak.Load(); got > int64(cc) {
		t.Errorf("the function served %d requests at once, want at most containerConcurrency %d", got, cc)
	}
	if hwmOver<<10 > limit {
		t.Errorf("the function's peak RSS %d MiB is over the manifest's memory limit %d MiB", hwmOver>>10, limit>>20)
	}
	const mostGrowth = 32 << 10 // KiB
	if hwmOver-hwmBase > mostGrowth {
		t.Errorf("the function's peak RSS grew by %d MiB under overload (from %d MiB), want at most %d MiB: the breaker bounds its work", (hwmOver-hwmBase)>>10, hwmBase>>10, mostGrowth>>10)
	}

	// Every event answered 201 is stored once.
	ok := append(okIDs(base), okIDs(over)...)
	stored := map[string]int{}
	tables := harness.Tables{Session: suite.Session, Keyspace: ks}
	for _, u := range users {
		rows, err := tables.ByUser(readContext(t), u, harness.DaysAround(time.Now())...)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			stored[r.EventID]++
		}
	}
	var lost []string
	for _, id := range ok {
		if stored[id] != 1 {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d events answered 201 are not stored once, e.g. %q", len(lost), len(ok), lost[:min(5, len(lost))])
	}
}

// sampleInFlight reads the function's tracker_http_requests_in_flight from
// its metrics listener until ctx ends, keeps the highest value in peak and
// returns how many samples it took.
func sampleInFlight(ctx context.Context, addr string, peak *atomic.Int64) int {
	client := &http.Client{Timeout: 5 * time.Second}
	samples := 0
	for ctx.Err() == nil {
		if v, ok := gauge(ctx, client, "http://"+addr+"/metrics", "tracker_http_requests_in_flight"); ok {
			samples++
			if int64(v) > peak.Load() {
				peak.Store(int64(v))
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return samples
}

// gauge reads the first series of a metric from a Prometheus text exposition.
func gauge(ctx context.Context, client *http.Client, url, name string) (float64, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		fields := strings.Fields(line)
		f, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		return f, err == nil
	}
	return 0, false
}
