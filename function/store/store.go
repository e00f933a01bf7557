// Package store writes validated events to Apache Cassandra through one
// long-lived gocql session: three tables per event (schema.go), written by
// a pool of writer goroutines (writers.go), a request's rows of one
// partition in one unlogged batch (rows.go), with a lightweight transaction
// for events that carry an id but no time (claim.go), and a readiness that
// follows whether writes go through (health.go). Its errors are typed
// (ErrUnavailable); it knows nothing of HTTP or of the function's
// configuration.
package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"tracker/function/event"
)

// Store writes events durably. Open makes one; it is safe for concurrent
// use.
type Store struct {
	cfg     Config
	obs     Observer
	session *gocql.Session
	stmts   statements

	// queue hands statements to the writers; it is unbuffered, so a
	// statement is either taken by a writer or still with its request.
	queue  chan statement
	health writeHealth
	// spec is the speculative execution of every statement (nil: none);
	// speculation says when it applies.
	spec          gocql.SpeculativeExecutionPolicy
	specHosts     atomic.Int32 // nodes up at the last check
	specCheckedAt atomic.Int64 // UnixNano of the last check
	quit          chan struct{}
	quitOnce      sync.Once
}

// Save stores every event and returns nil only when each one has been
// acknowledged at the configured consistency. Saving the same event again
// (same ID) leaves the stored rows as they were: one per table. An event
// with a zero OccurredAt takes the time it was first stored with, or its
// ReceivedAt when it is new. The events must have distinct IDs.
//
// An event with a zero OccurredAt whose ID is stored already with other
// content is not written: when every other event is, Save returns a
// *ConflictError that names it. An event with a time is written without
// a read, so no conflict is seen for it.
//
// Every row of every event is written concurrently by the writers, the
// events_by_user and events_by_target rows of a partition that several
// events share in batches of that partition's rows; the
// first failure cancels the rest and is returned, marked ErrUnavailable
// when a retry may cure it. ctx's deadline bounds the whole save, waiting
// for a writer included.
func (s *Store) Save(ctx context.Context, events []event.Event) error {
	err := s.save(ctx, events)
	var conflict *ConflictError
	switch {
	case err == nil, errors.As(err, &conflict):
		s.health.succeeded()
	case errors.Is(ctx.Err(), context.Canceled):
		// A client that went away says nothing about Cassandra.
	case errors.Is(err, ErrUnavailable):
		s.health.failed()
	}
	return err
}

func (s *Store) save(ctx context.Context, events []event.Event) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	times, err := s.resolveTimes(ctx, events)
	if err != nil {
		return classify(err)
	}
	w := &saveWait{cancel: cancel}
	timesOf := func(i int) eventTimes {
		if times != nil {
			return times[i]
		}
		return givenTimes(&events[i])
	}
	var (
		conflicts []int
		parts     *partitions // the events of events_by_user and events_by_target partitions
	)
	if len(events) > 1 {
		parts = newPartitions(len(events))
	}
events:
	for i := range events {
		t := timesOf(i)
		if t.conflict {
			conflicts = append(conflicts, i)
			continue
		}
		if parts == nil {
			// One event: its three rows share one backing array.
			for table, values := range rowsOf(&events[i], t.occurred, t.received) {
				if table == byID && t.byIDWritten {
					continue
				}
				if !s.submit(ctx, w, s.stmts.inserts[table], values, nil) {
					break events
				}
			}
			continue
		}
		parts.add(byUser, &events[i], t.occurred, i)
		parts.add(byTarget, &events[i], t.occurred, i)
		if !t.byIDWritten && !s.submit(ctx, w, s.stmts.inserts[byID], rowOf(byID, &events[i], t.occurred, t.received), nil) {
			break events
		}
	}
	if parts != nil && w.first() == nil {
	partitions:
		for _, p := range parts.list {
			for len(p.events) > 0 {
				n := min(len(p.events), maxBatchRows)
				rows := make([]row, n)
				for k, i := range p.events[:n] {
					t := timesOf(i)
					rows[k] = rowOf(p.table, &events[i], t.occurred, t.received)
				}
				var one row
				batch := rows
				if n == 1 {
					one, batch = rows[0], nil
				}
				if !s.submit(ctx, w, s.stmts.inserts[p.table], one, batch) {
					break partitions
				}
				p.events = p.events[n:]
			}
		}
	}
	w.wg.Wait()
	if err := w.first(); err != nil {
		return classify(err)
	}
	if conflicts != nil {
		return &ConflictError{Indexes: conflicts}
	}
	return nil
}

func (s *Store) query(ctx context.Context, stmt string, args ...any) *gocql.Query {
	q := s.session.Query(stmt, args...).Idempotent(true).WithContext(ctx)
	if spec := s.speculation(); spec != nil {
		q.SetSpeculativeExecutionPolicy(spec)
	}
	return q
}

// speculationCheck is how often speculation counts the nodes up.
const speculationCheck = time.Second

// speculation is the speculative execution of a statement sent now: spec
// while the driver counts two nodes or more up, else none. The driver
// sends a speculative attempt to the next node of the statement's plan;
// when there is none, that attempt fails at once with "no hosts
// available" and its failure is taken as the statement's, so with one
// node speculating would turn every slow statement into an error.
func (s *Store) speculation() gocql.SpeculativeExecutionPolicy {
	if s.spec == nil {
		return nil
	}
	if now := time.Now().UnixNano(); now-s.specCheckedAt.Load() > int64(speculationCheck) {
		s.specCheckedAt.Store(now)
		s.specHosts.Store(int32(s.HostsUp()))
	}
	if s.specHosts.Load() < 2 {
		return nil
	}
	return s.spec
}
