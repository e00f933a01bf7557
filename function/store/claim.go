package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"tracker/function/event"
)

// claimParallelism bounds how many events of one request claim their id
// at once (events with a client id but no timestamp).
const claimParallelism = 32

// eventTimes are the times an event's rows are written with.
type eventTimes struct {
	occurred, received time.Time
	// byIDWritten is set when the claim already wrote events_by_id.
	byIDWritten bool
	// conflict is set when the claim found the id stored with other
	// content: the event is not written.
	conflict bool
}

// resolveTimes settles when each event occurred. The rows' keys depend
// only on the event's ID and that time, so a retry overwrites the same
// rows. An event whose client gave an id but no time takes the time it was
// first stored with (see claim), and its events_by_id row is written
// before the others, so a partial failure cannot split a retry.
// It returns nil when no event needs a claim; then every event's times
// are givenTimes.
func (s *Store) resolveTimes(ctx context.Context, events []event.Event) ([]eventTimes, error) {
	if !slices.ContainsFunc(events, needsClaim) {
		return nil, nil
	}
	times := make([]eventTimes, len(events))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs error
		sem  = make(chan struct{}, claimParallelism)
	)
	for i := range events {
		ev := &events[i]
		if !needsClaim(*ev) {
			times[i] = givenTimes(ev)
			continue
		}
		times[i] = eventTimes{received: ev.ReceivedAt}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, errors.Join(errs, ctx.Err())
		}
		wg.Add(1)
		go func(t *eventTimes) {
			defer func() { <-sem; wg.Done() }()
			if err := s.claim(ctx, ev, t); err != nil {
				mu.Lock()
				if errs == nil {
					errs = err
				}
				mu.Unlock()
			}
		}(&times[i])
	}
	wg.Wait()
	return times, errs
}

// givenTimes are the times of an event that needs no claim: its own
// OccurredAt, or its ReceivedAt when the client gave none.
func givenTimes(ev *event.Event) eventTimes {
	t := eventTimes{occurred: ev.OccurredAt, received: ev.ReceivedAt}
	if t.occurred.IsZero() {
		t.occurred = t.received
	}
	return t
}

// needsClaim reports whether ev's time must come from events_by_id: its
// client gave an id, so it may be a retry, but no time.
func needsClaim(ev event.Event) bool { return ev.OccurredAt.IsZero() && ev.Retryable }

// claim fills t for ev from events_by_id: ev claims the row with
// INSERT ... IF NOT EXISTS, and when it exists already takes the times it
// holds. Deliveries that race (a client that retries while its first
// attempt is still being written) each have their own receive time;
// without the transaction each could find no row and store the event
// again under its own time. The transaction costs a Paxos round, so only
// events with an id and no time pay it. There is no plain read first:
// most such events are new, and the Paxos round reads the row anyway.
// A row that holds other content under the id sets t.conflict.
func (s *Store) claim(ctx context.Context, ev *event.Event, t *eventTimes) error {
	rows := rowsOf(ev, t.received, t.received)
	existing := make(map[string]any, 8)
	applied, err := s.query(ctx, s.stmts.claim, rows[byID]...).
		SerialConsistency(s.cfg.serialConsistency()).MapScanCAS(existing)
	if err == nil {
		s.obs.Claim(ctx, !applied)
	}
	switch {
	case err != nil:
		return err
	case applied:
		t.occurred = t.received
		t.byIDWritten = true
		return nil
	}
	o, okO := existing["occurred_at"].(time.Time)
	r, okR := existing["received_at"].(time.Time)
	if !okO || !okR {
		return fmt.Errorf("events_by_id row of a claimed event id has no times: %v", existing)
	}
	t.occurred, t.received = o, r
	t.conflict = !sameContent(ev, existing)
	return nil
}

// sameContent reports whether the events_by_id row stored holds ev: the
// same user, target, description and source. Its times are the stored
// row's own, which a retry without a time takes. The transaction returns
// the row anyway, so the check costs no read of its own.
func sameContent(ev *event.Event, stored map[string]any) bool {
	text := func(column string) string {
		s, _ := stored[column].(string) // a null source reads as ""
		return s
	}
	return text("username") == ev.Username && text("target") == ev.Target &&
		text("description") == ev.Description && text("source") == ev.Source
}
