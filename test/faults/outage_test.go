package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

// outageTimeout is CASSANDRA_TIMEOUT in TestCassandraOutage, and
// outageMargin what a request may take beyond it: decoding, scheduling on
// a busy two-core machine, the HTTP round trip.
const (
	outageTimeout = time.Second
	outageMargin  = time.Second
)

// TestCassandraOutage runs a steady load while Cassandra first freezes
// (SIGSTOP: connections stay open and nothing answers, as in a network
// partition or a long GC pause) and then stops gracefully and starts
// again. It checks that every answer during the outage is a 503 with
// Retry-After, none slower than CASSANDRA_TIMEOUT plus a margin; that
// readiness turns false and back to true in both faults; that service resumes without a
// restart, and how long after Cassandra answers CQL; that no goroutines
// leaked; and that every acknowledged id is stored.
func TestCassandraOutage(t *testing.T) {
	nodeUp(t)
	t.Cleanup(func() { _ = node.Signal(syscall.SIGCONT) })
	ks := keyspaceFor(t)
	checker := newChecker(t)
	probePort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	probe := fmt.Sprintf("http://127.0.0.1:%d", probePort)
	fn := startFunction(t, probeBin, ks,
		"PROBE_ADDRESS=127.0.0.1:"+strconv.Itoa(probePort),
		"CASSANDRA_TIMEOUT="+outageTimeout.String(),
		"CASSANDRA_CONNECT_TIMEOUT=1s")
	if err := fn.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	client := newClient(checker, 256)

	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	user, target := "outage-"+run, "https://faults.example/outage/"+run
	next := func(n int) request {
		return plainRequest(event(fmt.Sprintf("o-%s-%d", run, n), user, target, "VIEW", time.Time{}))
	}

	// Warm up the function's own path (its fresh tables, its
	// connections), then count the goroutines of the idle function.
	warmFunction(t, fn.URL, client, func(n int) request { return next(-1 - n) })
	client.CloseIdleConnections()
	before := settledGoroutines(t, probe, 0)

	ready := watchReadiness(fn.URL)
	defer ready.stop()

	ld := &load{url: fn.URL, client: client, rate: 150, workers: 256, next: next}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan []result)
	go func() { done <- ld.run(ctx) }()
	peak := watchGoroutines(probe)
	defer peak.stop()
	// A deadline, not a count in a fixed time: on a busy machine the
	// steady rate may take longer to reach 150 successes.
	if !waitFor(60*time.Second, func() bool { return ld.okCount.Load() >= 150 }) {
		t.Fatalf("only %d 2xx of %d answers in 60s before the outage, from a node that took writes within %s just before\n--- node log ---\n%s",
			ld.okCount.Load(), ld.answered.Load(), warmTimeout, node.LogTail(30))
	}

	// Phase 1: Cassandra freezes for three timeouts, then thaws.
	frozeAt := time.Now()
	if err := node.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	errsBefore := ld.answered.Load() - ld.okCount.Load()
	if !waitFor(20*time.Second, func() bool { return ld.answered.Load()-ld.okCount.Load() >= errsBefore+100 }) {
		t.Errorf("no 503s while Cassandra was frozen")
	}
	// The driver still sees the node up; the failed writes in a row must
	// make the function unready.
	if !waitFor(20*time.Second, func() bool { return ready.sawFalseSince(frozeAt) }) {
		t.Errorf("readiness stayed true while Cassandra was frozen and every write failed")
	}
	unreadyFrozen := ready.firstFalseSince(frozeAt).Sub(frozeAt)
	if rest := 3*outageTimeout - time.Since(frozeAt); rest > 0 {
		<-time.After(rest) // the length of the fault, not a wait for state
	}
	thawedAt := time.Now()
	if err := node.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	okAt := ld.okCount.Load()
	if !waitFor(30*time.Second, func() bool { return ld.okCount.Load() > okAt+50 }) {
		t.Fatalf("service did not resume within 30s after Cassandra thawed")
	}
	thawRecovery := time.Since(thawedAt)
	if !waitFor(30*time.Second, func() bool { return ready.trueSince(thawedAt) }) {
		t.Errorf("readiness did not turn true within 30s after Cassandra thawed")
	}
	readyAfterThaw := ready.firstTrueSince(thawedAt).Sub(thawedAt)

	// Phase 2: Cassandra stops gracefully, stays down a moment, and starts.
	stoppingAt := time.Now()
	nodeDown(t)
	stoppedAt := time.Now()
	if !waitFor(30*time.Second, func() bool { return ready.sawFalseSince(stoppingAt) }) {
		t.Errorf("readiness did not turn false within 30s of Cassandra stopping")
	}
	unreadyAfter := ready.firstFalseSince(stoppingAt).Sub(stoppingAt)
	answered := ld.answered.Load()
	if !waitFor(10*time.Second, func() bool { return ld.answered.Load() >= answered+150 }) {
		t.Errorf("the function stopped answering while Cassandra was down")
	}
	startingAt := time.Now()
	nodeStart(t) // no warm-up: the recovery from a cold node is what is measured
	cqlAt := time.Now()
	okAt = ld.okCount.Load()
	if !waitFor(60*time.Second, func() bool { return ld.okCount.Load() > okAt }) {
		t.Fatalf("no 2xx within 60s after Cassandra answered CQL again")
	}
	firstOK := time.Since(cqlAt)
	if !waitFor(30*time.Second, func() bool { return ready.trueSince(cqlAt) }) {
		t.Errorf("readiness did not turn true within 30s after Cassandra answered CQL")
	}
	readyAgain := ready.firstTrueSince(cqlAt).Sub(cqlAt)
	okAt = ld.okCount.Load()
	if !waitFor(60*time.Second, func() bool { return ld.okCount.Load() >= okAt+150 }) {
		t.Errorf("only %d 2xx in 60s after readiness came back, want 150", ld.okCount.Load()-okAt)
	}
	cancel()
	results := <-done
	peak.stop()
	ready.stop()

	// Every answer is a 201 or a 503 with Retry-After, in time; no request
	// failed without an answer.
	bound := outageTimeout + outageMargin
	var slow, unanswered, wrong []string
	for _, r := range results {
		switch {
		case r.Err != nil:
			unanswered = append(unanswered, fmt.Sprintf("%s after %s: %v", r.Req.IDs[0], r.latency().Round(time.Millisecond), r.Err))
		case r.Status == http.StatusServiceUnavailable:
			if n, err := strconv.Atoi(r.RetryAfter); err != nil || n < 1 {
				wrong = append(wrong, fmt.Sprintf("503 with Retry-After %q", r.RetryAfter))
			}
		case r.Status != http.StatusCreated:
			wrong = append(wrong, fmt.Sprintf("status %d", r.Status))
		}
		if r.latency() > bound {
			slow = append(slow, fmt.Sprintf("%s: %d after %s", r.Req.IDs[0], r.Status, r.latency().Round(time.Millisecond)))
		}
	}
	is503 := func(r result) bool { return r.Status == http.StatusServiceUnavailable }
	all := func(result) bool { return true }
	t.Logf("outage load: %v; 503 latency p50 %s, p99 %s, max %s; any answer max %s (bound %s)",
		tally(results), percentile(results, is503, 0.5), percentile(results, is503, 0.99), percentile(results, is503, 1),
		percentile(results, all, 1), bound)
	t.Logf("freeze (%s): readiness false %s after SIGSTOP; after SIGCONT, service back in %s, readiness true in %s",
		thawedAt.Sub(frozeAt).Round(time.Millisecond), unreadyFrozen.Round(time.Millisecond),
		thawRecovery.Round(time.Millisecond), readyAfterThaw.Round(time.Millisecond))
	t.Logf("graceful stop: local.sh stop took %s, readiness false %s after it began; local.sh start took %s; once Cassandra answered CQL, first 201 after %s, readiness true after %s",
		stoppedAt.Sub(stoppingAt).Round(time.Millisecond), unreadyAfter.Round(time.Millisecond), cqlAt.Sub(startingAt).Round(time.Millisecond),
		firstOK.Round(time.Millisecond), readyAgain.Round(time.Millisecond))
	for _, list := range []struct {
		what  string
		items []string
	}{{"requests without an answer", unanswered}, {"answers other than 201 or 503 with Retry-After", wrong}, {"answers slower than CASSANDRA_TIMEOUT + " + outageMargin.String(), slow}} {
		if len(list.items) > 0 {
			t.Errorf("%d %s, e.g. %s", len(list.items), list.what, strings.Join(list.items[:min(5, len(list.items))], "; "))
		}
	}

	// No goroutine leaked: the idle function has as many as before.
	client.CloseIdleConnections()
	after := settledGoroutines(t, probe, before)
	t.Logf("goroutines: %d idle before the outage, %d at most during it, %d idle after", before, peak.max(), after)
	if after > before+goroutineSlack {
		t.Errorf("goroutines: %d idle after the outage, want at most %d (%d before + %d)\n%s", after, before+goroutineSlack, before, goroutineSlack, goroutineDump(probe))
	}

	// Every acknowledged id is stored, and the rest go in on a retry.
	s := readSession(t)
	if missing := missingByID(t, s, ks, okIDs(results)); len(missing) > 0 {
		t.Errorf("%d ids answered 201 are not stored, e.g. %q", len(missing), missing[:min(5, len(missing))])
	}
	var failed []request
	for _, r := range results {
		if !r.ok() {
			failed = append(failed, r.Req)
		}
	}
	// A spread sample of them, to keep the test short; TestSIGTERM resends
	// every one.
	var retry []request
	for i := 0; i < len(failed); i += max(1, len(failed)/300) {
		retry = append(retry, failed[i])
	}
	if left := resendUntilStored(fn.URL, client, retry, time.Minute); len(left) > 0 {
		t.Errorf("resending %d of the %d requests without 2xx: %d still without 2xx after a minute of retries", len(retry), len(failed), len(left))
	}
}

// goroutineSlack is how many more goroutines an idle function may have
// after the outage than before: the driver may hold a timer or a
// connection attempt in flight. A leak per failed request would be
// thousands.
const goroutineSlack = 5

func goroutines(probe string) (int, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(probe + "/goroutines")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// settledGoroutines polls the count until it is at most target (when
// target > 0) or stops falling, and returns it.
func settledGoroutines(t *testing.T, probe string, target int) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last, same := -1, 0
	for {
		n, err := goroutines(probe)
		if err != nil {
			t.Fatal(err)
		}
		if target > 0 && n <= target {
			return n
		}
		if n == last {
			same++
		} else {
			same = 0
		}
		if (target == 0 && same >= 5) || time.Now().After(deadline) {
			return n
		}
		last = n
		time.Sleep(100 * time.Millisecond)
	}
}

func goroutineDump(probe string) string {
	resp, err := http.Get(probe + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// sampler polls something every 50 ms in the background.
type sampler struct {
	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
}

func newSampler(poll func()) *sampler {
	s := &sampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			poll()
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	<-s.done
}

// readiness records every answer of /health/readiness with its time.
type readiness struct {
	*sampler
	mu     sync.Mutex
	points []readyPoint
}

type readyPoint struct {
	at    time.Time
	ready bool
}

func watchReadiness(url string) *readiness {
	r := &readiness{}
	client := &http.Client{Timeout: 2 * time.Second}
	r.sampler = newSampler(func() {
		resp, err := client.Get(url + "/health/readiness")
		if err != nil {
			return
		}
		resp.Body.Close()
		r.mu.Lock()
		r.points = append(r.points, readyPoint{time.Now(), resp.StatusCode == http.StatusOK})
		r.mu.Unlock()
	})
	return r
}

// firstSince is the time of the first answer after since that was ready
// (or not); zero if none.
func (r *readiness) firstSince(since time.Time, ready bool) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.points {
		if p.at.After(since) && p.ready == ready {
			return p.at
		}
	}
	return time.Time{}
}

func (r *readiness) firstFalseSince(since time.Time) time.Time { return r.firstSince(since, false) }
func (r *readiness) firstTrueSince(since time.Time) time.Time  { return r.firstSince(since, true) }
func (r *readiness) sawFalseSince(since time.Time) bool        { return !r.firstFalseSince(since).IsZero() }
func (r *readiness) trueSince(since time.Time) bool            { return !r.firstTrueSince(since).IsZero() }

// goroutineWatch records the largest goroutine count it sees.
type goroutineWatch struct {
	*sampler
	mu   sync.Mutex
	most int
}

func watchGoroutines(probe string) *goroutineWatch {
	g := &goroutineWatch{}
	g.sampler = newSampler(func() {
		if n, err := goroutines(probe); err == nil {
			g.mu.Lock()
			g.most = max(g.most, n)
			g.mu.Unlock()
		}
	})
	return g
}

func (g *goroutineWatch) max() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most
}
