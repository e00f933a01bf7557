package store

import (
	"errors"
	"testing"
	"time"
)

func TestWriteHealthCountsFailuresInARow(t *testing.T) {
	t.Parallel()
	var h writeHealth
	for i := 1; i < unreadyAfter; i++ {
		h.failed()
		if !h.healthy() {
			t.Fatalf("unhealthy after %d failures, want healthy until %d", i, unreadyAfter)
		}
	}
	h.succeeded()
	for range unreadyAfter - 1 {
		h.failed()
	}
	if !h.healthy() {
		t.Fatalf("a success between failures must restart the count")
	}
	h.failed()
	if h.healthy() {
		t.Fatalf("healthy after %d failures in a row", unreadyAfter)
	}
	h.succeeded()
	if !h.healthy() {
		t.Fatalf("a success must make the store healthy again")
	}
}

func TestWriteHealthProbe(t *testing.T) {
	t.Parallel()
	var h writeHealth
	for range unreadyAfter {
		h.failed()
	}
	now := time.Now()

	// A failing probe leaves the store unhealthy; one runs at a time.
	release, ran := make(chan struct{}), make(chan struct{}, 4)
	failing := func() error { ran <- struct{}{}; <-release; return errors.New("timeout") }
	if !h.probe(now, failing) {
		t.Fatalf("the first probe did not start")
	}
	<-ran
	if h.probe(now.Add(2*probeEvery), failing) {
		t.Fatalf("a second probe started while the first was running")
	}
	close(release)
	waitUntil(t, func() bool { return !h.probing.Load() })
	if h.healthy() {
		t.Fatalf("healthy after a failed probe")
	}

	// Probes are spaced by probeEvery.
	ok := func() error { return nil }
	if h.probe(now.Add(probeEvery/2), ok) {
		t.Fatalf("a probe started %s after the last, want at least %s", probeEvery/2, probeEvery)
	}
	if !h.probe(now.Add(probeEvery), ok) {
		t.Fatalf("no probe %s after the last", probeEvery)
	}
	waitUntil(t, h.healthy)
}

// waitUntil polls cond until it holds, failing the test after a deadline.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
