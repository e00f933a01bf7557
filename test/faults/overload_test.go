package faults

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

// Overload settings: batches keep the client's request rate low enough for
// two cores while the event rate goes far past what Cassandra takes, and a
// small TRACK_MAX_INFLIGHT makes the bound, not Cassandra, the limit.
const (
	overloadBatch    = 50
	overloadInflight = 500 // TRACK_MAX_INFLIGHT: ten batches
	overloadFactor   = 10  // offered load, in multiples of the measured capacity
	// overloadTimeout is the function's default CASSANDRA_TIMEOUT, which
	// the test leaves as it is.
	overloadTimeout = 2 * time.Second
)

// TestOverload measures what the function sustains, then offers ten times
// that as an open-loop stream: past TRACK_MAX_INFLIGHT it must answer 503
// with Retry-After at once, its peak memory must stay bounded, and every
// event it accepted must be stored.
func TestOverload(t *testing.T) {
	nodeUp(t)
	ks := keyspaceFor(t)
	checker := newChecker(t)
	fn := startFunction(t, trackerBin, ks,
		"TRACK_MAX_INFLIGHT="+strconv.Itoa(overloadInflight),
		"TRACK_MAX_BATCH_EVENTS="+strconv.Itoa(overloadBatch))
	if err := fn.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	client := newClient(checker, 1024)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	users := make([]string, 8)
	for i := range users {
		users[i] = fmt.Sprintf("overload-%s-%d", run, i)
	}
	batch := func(phase string) func(n int) request {
		return func(n int) request {
			events := make([]map[string]string, overloadBatch)
			for i := range events {
				id := fmt.Sprintf("%s-%s-%d-%d", phase, run, n, i)
				events[i] = event(id, users[(n+i)%len(users)], "https://faults.example/overload/"+strconv.Itoa(i%4), "VIEW", time.Time{})
			}
			return plainRequest(events...)
		}
	}

	// Warm up Cassandra and the function (JIT, connections), then measure
	// capacity: a closed loop with as many batches in flight as the bound
	// holds.
	warm := &load{url: fn.URL, client: client, workers: overloadInflight / overloadBatch, next: batch("warm")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	warmResults := warm.run(ctx)
	cancel()
	capLoad := &load{url: fn.URL, client: client, workers: overloadInflight / overloadBatch, next: batch("cap")}
	ctx, cancel = context.WithTimeout(context.Background(), 4*time.Second)
	capResults := capLoad.run(ctx)
	cancel()
	capacity := float64(len(okIDs(capResults))) / 4 // events per second
	if capacity == 0 {
		t.Fatalf("capacity phase stored nothing: %v", tally(capResults))
	}
	hwmBefore, err := vmHWM(fn.PID())
	if err != nil {
		t.Fatal(err)
	}

	// Overload: an open loop at ten times capacity, for four seconds. When
	// the capacity measured was too low (the machine was busier then) and
	// most requests still got through, offer three times more, twice at
	// most: the point is a load far above what the function sustains.
	offered := overloadFactor * capacity / overloadBatch // requests per second
	var results []result
	for attempt := 1; ; attempt++ {
		over := &load{url: fn.URL, client: client, rate: offered, workers: 1024, next: batch(fmt.Sprintf("over%d", attempt))}
		ctx, cancel = context.WithTimeout(context.Background(), 4*time.Second)
		began := time.Now()
		round := over.run(ctx)
		cancel()
		sentFor := time.Since(began)
		results = append(results, round...)
		refusedShare := float64(count(round, isRefusal)) / float64(len(round))
		t.Logf("offered %.0f events/s (%.0f× the measured capacity) for 4s: sent %.0f events/s, %d sends waited for a free slot; outcomes %v, %.0f%% refused at once",
			offered*overloadBatch, offered*overloadBatch/capacity, float64(len(round)*overloadBatch)/sentFor.Seconds(), over.stalls(), tally(round), 100*refusedShare)
		if refusedShare >= 0.5 {
			break
		}
		if attempt == 3 {
			t.Fatalf("at %.0f× the measured capacity only %.0f%% of the requests were refused; want most", offered*overloadBatch/capacity, 100*refusedShare)
		}
		offered *= 3
	}
	hwmAfter, err := vmHWM(fn.PID())
	if err != nil {
		t.Fatal(err)
	}

	counts := tally(results)
	timedOut := func(r result) bool { return r.Status == http.StatusServiceUnavailable && !isRefusal(r) }
	is201 := func(r result) bool { return r.Status == http.StatusCreated }
	t.Logf("capacity %.0f events/s (%v); overload outcomes %v: %d refused at once, %d 503 after a Cassandra timeout",
		capacity, tally(capResults), counts, count(results, isRefusal), count(results, timedOut))
	t.Logf("refusal latency p50 %s, p99 %s, max %s; 201 latency p50 %s, p99 %s",
		percentile(results, isRefusal, 0.5), percentile(results, isRefusal, 0.99), percentile(results, isRefusal, 1),
		percentile(results, is201, 0.5), percentile(results, is201, 0.99))
	t.Logf("peak RSS (VmHWM): %d MiB after the capacity phase, %d MiB after the overload", hwmBefore>>10, hwmAfter>>10)

	if counts["error"] > 0 || counts["201"]+counts["503"] != len(results) {
		t.Errorf("outcomes %v, want only 201 and 503", counts)
	}
	for _, r := range results {
		if r.Status == http.StatusServiceUnavailable && r.RetryAfter == "" {
			t.Errorf("503 without Retry-After")
			break
		}
	}
	// Refusals come at once: they wait for nothing but the body and the
	// CPU, never for a write. Bounds relative to the writes, not in
	// milliseconds, hold on a machine busy with other work too (an
	// absolute 500 ms p99 failed there at 625 ms while 201s took 783 ms
	// at the median): the median refusal is ten times faster than the
	// median 201, and no refusal takes as long as a write may
	// (CASSANDRA_TIMEOUT, 2s). Writes that were let in never wait past
	// CASSANDRA_TIMEOUT plus the margin of TestCassandraOutage.
	refusalMedian, okMedian := percentile(results, isRefusal, 0.5), percentile(results, is201, 0.5)
	if refusalMedian > okMedian/10 {
		t.Errorf("refusal latency p50 %s, want at most a tenth of the 201s' p50 %s: a refusal must not queue", refusalMedian, okMedian)
	}
	if most := percentile(results, isRefusal, 1); most >= overloadTimeout {
		t.Errorf("a refusal took %s, want less than CASSANDRA_TIMEOUT (%s): a refusal must not wait for a write", most, overloadTimeout)
	}
	if most := percentile(results, timedOut, 1); most > overloadTimeout+outageMargin {
		t.Errorf("a 503 after a timeout took %s, want at most CASSANDRA_TIMEOUT (%s) + %s", most, overloadTimeout, outageMargin)
	}
	// Memory stays bounded: what the overload adds to the peak is what the
	// bounded work takes (in-flight batches, request bodies), far from one
	// copy of every offered request.
	const mostGrowth = 64 << 10 // KiB
	if hwmAfter-hwmBefore > mostGrowth {
		t.Errorf("peak RSS grew by %d MiB under overload (from %d to %d MiB), want at most %d MiB",
			(hwmAfter-hwmBefore)>>10, hwmBefore>>10, hwmAfter>>10, mostGrowth>>10)
	}

	// Every accepted event is stored.
	ok := append(append(okIDs(warmResults), okIDs(capResults)...), okIDs(results)...)
	stored := userRows(t, readSession(t), ks, users)
	var missing []string
	for _, id := range ok {
		if len(stored[id]) != 1 {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d accepted events are not stored once, e.g. %q", len(missing), len(ok), missing[:min(5, len(missing))])
	}
	// (A 503 after a timeout may have stored part of its batch; a retry
	// completes it. Only the events answered 201 must all be there.)
}

// isRefusal tells a 503 of TRACK_MAX_INFLIGHT, refused before any write,
// from one after a Cassandra timeout, by its detail.
func isRefusal(r result) bool {
	return r.Status == http.StatusServiceUnavailable && strings.Contains(r.Detail, "too many events")
}

func count(results []result, keep func(result) bool) int {
	n := 0
	for _, r := range results {
		if keep(r) {
			n++
		}
	}
	return n
}

// vmHWM is the peak resident set of a process, in KiB.
func vmHWM(pid int) (int64, error) { return harness.ProcStatusKB(pid, "VmHWM") }
