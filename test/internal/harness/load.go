package harness

import (
	"sync"
	"sync/atomic"
	"time"
)

// Load is the one load generator of the fault suite and the benchmark. It
// sends requests from goroutines of its own, either as a closed loop
// (Rate 0: Workers senders, each sending its next request once its last
// is answered) or as an open loop (Rate > 0: request n is due at
// start + n/Rate whatever the answers do, so that a slow answer delays
// nothing and hides nothing; at most Workers are in flight, and a due
// request that finds every one busy waits, counted in Stalls). What a
// request is, and what is recorded of it, is Send's.
type Load[W any] struct {
	// Rate is the open loop's requests per second; 0 makes a closed loop.
	Rate float64
	// Workers is how many goroutines send: all of them at once in a
	// closed loop; in an open loop at most this many, started as due
	// requests find the others busy.
	Workers int
	// Worker makes one goroutine's own state, such as its connection;
	// Close ends it. Both may be nil.
	Worker func() W
	Close  func(W)
	// Send sends request n (0, 1, ...) and returns once it is answered or
	// failed. due is when the open loop's schedule wanted it sent; in a
	// closed loop, the moment the worker took it.
	Send func(w W, n int, due time.Time)

	stalls atomic.Int64
}

// Stalls is how many due requests of an open loop waited for a worker.
func (l *Load[W]) Stalls() int64 { return l.stalls.Load() }

// Run sends until stop is closed (nil: never) or limit requests have been
// sent (0: no limit), then waits until every request sent is answered.
func (l *Load[W]) Run(stop <-chan struct{}, limit int) {
	if l.Rate > 0 {
		l.open(stop, limit)
	} else {
		l.closed(stop, limit)
	}
}

func (l *Load[W]) worker(body func(W)) {
	var w W
	if l.Worker != nil {
		w = l.Worker()
	}
	if l.Close != nil {
		defer l.Close(w)
	}
	body(w)
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

func (l *Load[W]) closed(stop <-chan struct{}, limit int) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range l.Workers {
		wg.Add(1)
		go l.worker(func(w W) {
			defer wg.Done()
			for !stopped(stop) {
				n := int(next.Add(1) - 1)
				if limit > 0 && n >= limit {
					return
				}
				l.Send(w, n, time.Now())
			}
		})
	}
	wg.Wait()
}

type job struct {
	n   int
	due time.Time
}

func (l *Load[W]) open(stop <-chan struct{}, limit int) {
	var (
		jobs    = make(chan job)
		wg      sync.WaitGroup
		idle    atomic.Int64
		workers int
	)
	spawn := func() {
		workers++
		wg.Add(1)
		go l.worker(func(w W) {
			defer wg.Done()
			for {
				idle.Add(1)
				j, more := <-jobs
				idle.Add(-1)
				if !more {
					return
				}
				l.Send(w, j.n, j.due)
			}
		})
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	begin := time.Now()
	interval := float64(time.Second) / l.Rate
schedule:
	for n := 0; limit == 0 || n < limit; n++ {
		due := begin.Add(time.Duration(float64(n) * interval))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-stop:
				break schedule
			}
		}
		if stopped(stop) {
			break
		}
		if idle.Load() == 0 && workers < l.Workers {
			spawn() // and wait below for it to take the job
		} else {
			select {
			case jobs <- job{n, due}:
				continue
			default:
				l.stalls.Add(1)
			}
		}
		select {
		case jobs <- job{n, due}:
		case <-stop:
			break schedule
		}
	}
	close(jobs)
	wg.Wait()
}
