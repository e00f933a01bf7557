package store

import (
	"context"
	"sync/atomic"
	"time"
)

// unreadyAfter is how many saves in a row must fail, with no success in
// between, before the store reports itself unready.
const unreadyAfter = 3

// probeEvery is the least time between two probes of an unready store.
const probeEvery = 500 * time.Millisecond

// writeHealth tells whether writes go through. The driver marks a node down
// only when its connections break, so a node that stops answering with its
// connections open (a network partition, a long GC pause) stays "up" while
// every write times out. writeHealth counts the saves that fail in a row:
// from unreadyAfter of them on, the store is unready until a save or a
// probe succeeds. The probe matters in Kubernetes, where an unready pod
// gets no traffic and so no save that could succeed.
type writeHealth struct {
	failures  atomic.Int32
	probing   atomic.Bool
	lastProbe atomic.Int64 // UnixNano of the last probe's start
}

// succeeded records a save or probe that reached Cassandra.
func (h *writeHealth) succeeded() {
	if h.failures.Load() != 0 {
		h.failures.Store(0)
	}
}

// failed records a save that Cassandra did not take in time.
func (h *writeHealth) failed() {
	h.failures.Add(1)
}

// healthy reports whether fewer than unreadyAfter saves failed in a row.
func (h *writeHealth) healthy() bool {
	return h.failures.Load() < unreadyAfter
}

// probe runs check in a new goroutine unless one runs already or the last
// started less than probeEvery before now; a nil error marks the store
// healthy. It reports whether it started check.
func (h *writeHealth) probe(now time.Time, check func() error) bool {
	if now.UnixNano()-h.lastProbe.Load() < int64(probeEvery) || !h.probing.CompareAndSwap(false, true) {
		return false
	}
	h.lastProbe.Store(now.UnixNano())
	go func() {
		defer h.probing.Store(false)
		if check() == nil {
			h.succeeded()
		}
	}()
	return true
}

// Ready reports whether the store takes writes now: its session is open,
// the driver sees at least one node up, and saves have not been failing
// (see writeHealth). While they have, each call starts a probe: a read of
// events_by_id at the configured consistency, the replicas and the path a
// write takes.
func (s *Store) Ready() bool {
	if s.session.Closed() || s.HostsUp() == 0 {
		return false
	}
	if s.health.healthy() {
		return true
	}
	s.health.probe(time.Now(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		defer cancel()
		return s.query(ctx, s.stmts.probes[byID], "readiness probe").Exec()
	})
	return false
}

// HostsUp is how many Cassandra nodes the driver counts as up now.
func (s *Store) HostsUp() int {
	if s.session.Closed() {
		return 0
	}
	up := 0
	for _, h := range s.session.GetHosts() {
		if h.IsUp() {
			up++
		}
	}
	return up
}

// Healthy is Ready without its side effect: it starts no probe, so a
// metrics scrape may call it as often as it likes.
func (s *Store) Healthy() bool {
	return !s.session.Closed() && s.HostsUp() > 0 && s.health.healthy()
}
