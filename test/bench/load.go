package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tracker/test/internal/harness"
)

// outcome is what one request (or one direct Save) did.
type outcome struct {
	// events is the number of events the request carried.
	events int
	// ok is true for a 2xx answer (or a nil error from Save).
	ok bool
	// why says what a request that was not ok got: its status, or the
	// error.
	why string
}

// sendFunc performs one request with the worker's scratch state.
type sendFunc func(ctx context.Context, w *worker) outcome

// worker is one load-generating goroutine's reusable state: its body
// buffer and its connection.
type worker struct {
	buf     []byte
	headers []header
	conn    httpConn
	// samples is the closed loop's index of this worker's samples.
	samples int
}

func (w *worker) close() { w.conn.close() }

// loadResult is what a closed or open loop measured in its window.
type loadResult struct {
	// window is the measured span; requests completed in it count.
	window time.Duration
	// requests and events completed in the window, and how many of those
	// requests were not 2xx (or failed to send).
	requests, events, failed int64
	// failedAll counts the requests that were not 2xx in the whole phase,
	// warm-up included; any fails the run.
	failedAll int64
	// failures counts the failed requests of the whole phase by what they
	// got (outcome.why).
	failures map[string]int64
	// latencies of the requests in the window, sorted.
	latencies []time.Duration
}

// add counts one request that completed in the window.
func (r *loadResult) add(o outcome, latency time.Duration) {
	r.requests++
	if o.ok {
		r.events += int64(o.events)
	} else {
		r.failed++
	}
	r.latencies = append(r.latencies, latency)
}

func (r loadResult) eventsPerSecond() float64   { return float64(r.events) / r.window.Seconds() }
func (r loadResult) requestsPerSecond() float64 { return float64(r.requests) / r.window.Seconds() }

// failuresText lists the failures by what they got, such as
// "503 ×2, EOF ×1".
func (r loadResult) failuresText() string {
	var out []string
	for why, n := range r.failures {
		out = append(out, fmt.Sprintf("%s ×%d", why, n))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// percentile returns the p-th percentile (0 < p <= 100) of the sorted
// latencies by the nearest-rank method.
func (r loadResult) percentile(p float64) time.Duration {
	n := len(r.latencies)
	if n == 0 {
		return 0
	}
	rank := int(p/100*float64(n)+0.999999) - 1
	return r.latencies[min(max(rank, 0), n-1)]
}

func (r loadResult) max() time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[len(r.latencies)-1]
}

// acked counts every event answered 2xx during the whole run, warm-ups
// included; the row check at the end compares it with Cassandra.
type acked struct{ n atomic.Int64 }

// maxRequestsPerWorker bounds the closed loop by count as well as by time.
const maxRequestsPerWorker = 50_000_000

// A closed loop's window must hold many rounds: with 256 batches of 100 in
// flight one round takes seconds, and a window of one or two rounds would
// count whole rounds, not a rate. So the warm-up lasts until every worker
// has had an answer, and the window until it holds minRounds answers per
// worker, within these bounds.
const (
	minRounds  = 5
	maxWarmup  = 30 * time.Second
	maxWindow  = 60 * time.Second
	monitorTic = 10 * time.Millisecond
)

// closedLoop runs conc workers that each send a request, wait for the
// answer and send the next. After the warm-up (at least warmup, and until
// every worker has had an answer) comes the measured window (at least
// window, and until it holds minRounds answers per worker); requests that
// complete inside it are measured, the others only count as acked. marks,
// when set, is called as the window starts and ends, so the caller can
// sample /proc at those moments.
func closedLoop(ctx context.Context, conc int, warmup, window time.Duration, send sendFunc, ack *acked, marks func(start bool)) loadResult {
	type sample struct {
		done time.Time
		lat  time.Duration
		o    outcome
	}
	var (
		begin     = time.Now()
		completed atomic.Int64
		failedAll atomic.Int64
		whyMu     sync.Mutex
		failures  = map[string]int64{}
		from, end atomic.Pointer[time.Time]
		samples   = make([][]sample, conc)
		next      atomic.Int64
		stop      = make(chan struct{})
		finished  = make(chan struct{})
	)
	ctx, cancel := context.WithDeadline(ctx, begin.Add(maxWarmup+maxWindow+30*time.Second))
	defer cancel()
	gen := harness.Load[*worker]{
		Workers: conc,
		// Each worker keeps its own samples, so that recording takes no lock.
		Worker: func() *worker { return &worker{samples: int(next.Add(1) - 1)} },
		Close:  (*worker).close,
		Send: func(w *worker, _ int, start time.Time) {
			if ctx.Err() != nil {
				return
			}
			o := send(ctx, w)
			done := time.Now()
			if o.ok {
				ack.n.Add(int64(o.events))
			} else {
				failedAll.Add(1)
				whyMu.Lock()
				failures[o.why]++
				whyMu.Unlock()
			}
			completed.Add(1)
			if from.Load() != nil {
				samples[w.samples] = append(samples[w.samples], sample{done, done.Sub(start), o})
			}
		},
	}
	go func() {
		defer close(finished)
		gen.Run(stop, conc*maxRequestsPerWorker)
	}()

	// The monitor opens and closes the window.
	var startCount int64
	tick := time.NewTicker(monitorTic)
	for now := range tick.C {
		if from.Load() == nil {
			if (now.Sub(begin) >= warmup && completed.Load() >= int64(conc)) || now.Sub(begin) >= maxWarmup || ctx.Err() != nil {
				startCount = completed.Load()
				from.Store(&now)
				if marks != nil {
					marks(true)
				}
			}
			continue
		}
		if (now.Sub(*from.Load()) >= window && completed.Load()-startCount >= int64(minRounds*conc)) || now.Sub(*from.Load()) >= maxWindow || ctx.Err() != nil {
			end.Store(&now)
			close(stop)
			if marks != nil {
				marks(false)
			}
			break
		}
	}
	tick.Stop()
	<-finished

	f, e := *from.Load(), *end.Load()
	r := loadResult{window: e.Sub(f), failedAll: failedAll.Load(), failures: failures}
	for _, part := range samples {
		for _, s := range part {
			if s.done.Before(f) || !s.done.Before(e) {
				continue
			}
			r.add(s.o, s.lat)
		}
	}
	slices.Sort(r.latencies)
	return r
}

// maxOpenWorkers bounds the goroutines (and so the connections) of the
// open loop; a request that finds every one busy waits in the queue, and
// that wait counts in its latency.
const maxOpenWorkers = 1024

// openLoop sends requests at a fixed rate, whatever the answers do: the
// i-th request is due at start + i/rate, and its latency is measured from
// that due time, so a slow answer delays nothing and hides nothing (no
// coordinated omission). Workers are added while every one is busy, up to
// maxOpenWorkers.
func openLoop(ctx context.Context, rate float64, warmup, window time.Duration, send sendFunc, ack *acked, marks func(start bool)) loadResult {
	total := int((warmup + window).Seconds() * rate)
	begin := time.Now()
	measureFrom := begin.Add(warmup)
	end := measureFrom.Add(window)
	ctx, cancel := context.WithDeadline(ctx, end.Add(30*time.Second))
	defer cancel()

	stopMarks := startMarks(measureFrom, end, marks)
	defer stopMarks()

	type sample struct {
		due, done time.Time
		o         outcome
	}
	samples := make([]sample, total)
	gen := harness.Load[*worker]{
		Rate:    rate,
		Workers: maxOpenWorkers,
		Worker:  func() *worker { return &worker{} },
		Close:   (*worker).close,
		Send: func(w *worker, i int, due time.Time) {
			samples[i].due = due
			if ctx.Err() != nil {
				samples[i].done = time.Now()
				return
			}
			samples[i].o = send(ctx, w)
			samples[i].done = time.Now()
			if samples[i].o.ok {
				ack.n.Add(int64(samples[i].o.events))
			}
		},
	}
	gen.Run(nil, total)

	r := loadResult{window: window, failures: map[string]int64{}}
	for _, s := range samples {
		if !s.o.ok {
			r.failedAll++
			r.failures[s.o.why]++
		}
		if s.due.Before(measureFrom) || !s.due.Before(end) {
			continue
		}
		r.add(s.o, s.done.Sub(s.due))
	}
	slices.Sort(r.latencies)
	return r
}

// startMarks calls marks(true) at from and marks(false) at to, from its
// own goroutine; the returned function waits for it to finish.
func startMarks(from, to time.Time, marks func(start bool)) func() {
	if marks == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(time.Until(from))
		marks(true)
		time.Sleep(time.Until(to))
		marks(false)
	}()
	return func() { <-done }
}
