package faults

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sigtermLoad describes the event stream of TestSIGTERM: unique ids at a
// steady rate, spread over a few users and targets; every other event
// carries a client timestamp, the rest leave the time to the function (and
// so to its events_by_id lookup on a retry).
type sigtermLoad struct {
	run     string
	users   []string
	targets []string
	started time.Time
}

func newSigtermLoad() *sigtermLoad {
	l := &sigtermLoad{run: strconv.FormatInt(time.Now().UnixNano(), 36), started: time.Now()}
	for i := range 4 {
		l.users = append(l.users, fmt.Sprintf("sigterm-%s-user-%d", l.run, i))
	}
	for i := range 3 {
		l.targets = append(l.targets, fmt.Sprintf("https://faults.example/%s/page/%d", l.run, i))
	}
	return l
}

// request builds the n-th request of a round; ids never repeat across
// rounds.
func (l *sigtermLoad) request(round, n int) request {
	id := fmt.Sprintf("s-%s-%d-%d", l.run, round, n)
	var ts time.Time
	if n%2 == 0 {
		ts = l.started.Add(time.Duration(n) * time.Millisecond)
	}
	desc := "VIEW"
	if n%3 == 0 {
		desc = "CLICK"
	}
	return plainRequest(event(id, l.users[n%len(l.users)], l.targets[n%len(l.targets)], desc, ts))
}

// TestSIGTERM proves issue 5's first two promises. A steady stream of
// events with unique ids runs while the function gets SIGTERM: every id
// answered 2xx must be in Cassandra. Then every request that did not get a
// 2xx is sent again, unchanged, to a restarted function (itself stopped by
// SIGTERM mid-stream once more, and started a third time), until all are
// 2xx: afterwards each id is stored exactly once in every table.
func TestSIGTERM(t *testing.T) {
	nodeUp(t)
	ks := keyspaceFor(t)
	checker := newChecker(t)
	client := newClient(checker, 64)
	l := newSigtermLoad()
	sent := map[string]request{} // every request ever sent, by its event's id
	var all []result             // every result of every round

	// round sends the resends and then new requests at 600/s, and SIGTERMs
	// the function once at least 300 events of the round are stored and
	// some requests are in flight.
	round := func(t *testing.T, number int, resend []request) []result {
		fn := startFunction(t, trackerBin, ks)
		if err := fn.WaitReady(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		ld := &load{url: fn.URL, client: client, rate: 600, workers: 64}
		ld.next = func(n int) request {
			if n < len(resend) {
				return resend[n]
			}
			return l.request(number, n-len(resend))
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan []result)
		go func() { done <- ld.run(ctx) }()

		if !waitFor(60*time.Second, func() bool { return ld.okCount.Load() >= 300 }) {
			t.Fatalf("round %d: only %d 2xx in 60s", number, ld.okCount.Load())
		}
		// Signal while requests are in flight, so that the drain has work.
		if !waitFor(5*time.Second, func() bool { return ld.inflight.Load() >= 5 }) {
			t.Logf("round %d: never 5 requests in flight in 5s; signalling anyway", number)
		}
		inflight := ld.inflight.Load()
		signalled := time.Now()
		if err := fn.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := fn.WaitExit(40 * time.Second); err != nil {
			t.Errorf("round %d: after SIGTERM: %v, want a clean exit", number, err)
		}
		exited := time.Now()
		// Keep sending until some requests after the exit have failed:
		// they must get no 2xx, and are resent in the next round.
		errs := ld.errCount.Load()
		if !waitFor(5*time.Second, func() bool { return ld.errCount.Load() >= errs+10 }) {
			t.Errorf("round %d: requests to the exited function did not fail", number)
		}
		cancel()
		results := <-done

		var drained, drainErrs int
		for _, r := range results {
			if r.Start.Before(signalled) && r.End.After(signalled) {
				if r.Err == nil {
					drained++
				} else {
					drainErrs++
				}
			}
		}
		t.Logf("round %d: %d requests in flight at SIGTERM; of the requests open at that moment %d got an answer and %d a connection error; exit %s after SIGTERM; outcomes %v",
			number, inflight, drained, drainErrs, exited.Sub(signalled).Round(time.Millisecond), tally(results))
		return results
	}

	// pending lists, once each, the requests of results whose id has no
	// 2xx among them.
	pending := func(results []result) []request {
		stored := map[string]bool{}
		for _, id := range okIDs(results) {
			stored[id] = true
		}
		var out []request
		for _, r := range results {
			if id := r.Req.IDs[0]; !stored[id] {
				stored[id] = true // once
				out = append(out, r.Req)
			}
		}
		return out
	}
	remember := func(results []result) {
		for _, r := range results {
			sent[r.Req.IDs[0]] = r.Req
		}
		all = append(all, results...)
	}

	// Round 1: stream, SIGTERM; every 2xx must be stored.
	r1 := round(t, 1, nil)
	remember(r1)
	if ok := okIDs(r1); len(ok) == 0 {
		t.Fatal("round 1: no 2xx at all")
	} else if missing := missingByID(t, readSession(t), ks, ok); len(missing) > 0 {
		t.Fatalf("round 1: %d of %d ids answered 2xx are not in events_by_id, e.g. %q", len(missing), len(ok), missing[:min(5, len(missing))])
	}

	// Round 2: a restarted function gets every request that did not get a
	// 2xx, then new ones, and SIGTERM again.
	r2 := round(t, 2, pending(r1))
	remember(r2)
	if missing := missingByID(t, readSession(t), ks, okIDs(r2)); len(missing) > 0 {
		t.Fatalf("round 2: %d ids answered 2xx are not in events_by_id, e.g. %q", len(missing), missing[:min(5, len(missing))])
	}

	// Round 3: resend until everything is 2xx, honouring Retry-After. A
	// few already stored events go along, as a client that lost the answer
	// would send them.
	retry := pending(all)
	okSoFar := okIDs(all)
	for _, id := range okSoFar[:min(50, len(okSoFar))] {
		retry = append(retry, sent[id])
	}
	fn := startFunction(t, trackerBin, ks)
	if err := fn.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	// A deadline rather than a number of attempts: on a busy machine a
	// resend may meet a timeout again.
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 1; len(retry) > 0; attempt++ {
		if time.Now().After(deadline) {
			t.Fatalf("round 3: %d requests still without 2xx after %d attempts in 2 minutes", len(retry), attempt-1)
		}
		results := sendAll(fn.URL, client, retry, 16)
		all = append(all, results...)
		retry = pending(results)
		if len(retry) > 0 {
			// The client's side of Retry-After, not a wait for state.
			time.Sleep(retryAfter(results))
		}
	}

	// Every id ever sent is now stored exactly once in every table, with
	// the same occurred_at everywhere.
	s := readSession(t)
	ids := make([]string, 0, len(sent))
	for id := range sent {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	byID := idRows(t, s, ks, ids)
	byUser := userRows(t, s, ks, l.users)
	byTarget := targetRows(t, s, ks, l.targets)
	var bad []string
	for _, id := range ids {
		want := byID[id]
		if len(want) != 1 {
			bad = append(bad, fmt.Sprintf("%s: %d rows in events_by_id", id, len(want)))
			continue
		}
		if diff := cmp.Diff(want, byUser[id]); diff != "" {
			bad = append(bad, fmt.Sprintf("%s: events_by_user occurred_at (-events_by_id +events_by_user): %s", id, diff))
		}
		if diff := cmp.Diff(want, byTarget[id]); diff != "" {
			bad = append(bad, fmt.Sprintf("%s: events_by_target occurred_at (-events_by_id +events_by_target): %s", id, diff))
		}
	}
	for _, table := range []rowsByID{byUser, byTarget} {
		for id := range table {
			if _, ok := sent[id]; !ok {
				bad = append(bad, fmt.Sprintf("%s: stored but never sent", id))
			}
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Fatalf("%d problems with exactly-once storage, e.g.:\n%s", len(bad), bad[:min(10, len(bad))])
	}
	t.Logf("exactly once: %d ids, each one row in events_by_id, events_by_user and events_by_target; %d requests sent in all, %v",
		len(ids), len(all), tally(all))
}
