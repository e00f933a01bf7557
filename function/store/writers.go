package store

import (
	"context"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// writers is the most statements one store has in flight to Cassandra.
// Long-lived writer goroutines run them: a goroutine per statement spent
// CPU growing fresh stacks (BENCHMARKS.md, "Changes and their effect"),
// and the bound keeps a burst of batches from queueing thousands of
// statements inside Cassandra, where they cost memory on both sides and
// then time out together. Statements past the bound wait in the function,
// within their deadline.
const writers = 256

// statement is one INSERT handed to a writer, or an unlogged batch of
// the INSERTs of rows of one partition (batch set, values nil).
type statement struct {
	ctx    context.Context
	wait   *saveWait
	stmt   string
	values row
	batch  []row
}

// saveWait collects the outcome of one Save's statements.
type saveWait struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	mu     sync.Mutex
	err    error
}

// fail records the first error and cancels the statements not yet run.
func (w *saveWait) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
		w.cancel()
	}
	w.mu.Unlock()
}

func (w *saveWait) first() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// startWriters starts the writer goroutines; Close ends them.
func (s *Store) startWriters() {
	for range writers {
		go s.writer()
	}
}

// submit hands one statement to a writer, waiting for a free one until ctx
// ends. It reports whether the statement was taken.
func (s *Store) submit(ctx context.Context, w *saveWait, stmt string, values row, batch []row) bool {
	w.wg.Add(1)
	queued := time.Now()
	select {
	case s.queue <- statement{ctx: ctx, wait: w, stmt: stmt, values: values, batch: batch}:
		// The queue is unbuffered: the send returns when a writer took it.
		s.obs.WriterWait(time.Since(queued))
		return true
	case <-ctx.Done():
		// Waited for a writer until the deadline: the wait the
		// histogram is there for.
		s.obs.WriterWait(time.Since(queued))
		w.fail(ctx.Err())
	case <-s.quit:
		w.fail(errClosed)
	}
	w.wg.Done()
	return false
}

// writer runs statements until the store is closed. It keeps its stack
// between statements, grown once to the driver's depth.
func (s *Store) writer() {
	for {
		select {
		case st := <-s.queue:
			st.run(s.session, s.speculation())
		case <-s.quit:
			return
		}
	}
}

// run executes the statement on session, with speculative execution spec
// when it is not nil, and records its outcome. Every statement is
// idempotent (the cluster's DefaultIdempotence).
func (st statement) run(session *gocql.Session, spec gocql.SpeculativeExecutionPolicy) {
	defer st.wait.wg.Done()
	err := st.ctx.Err()
	switch {
	case err != nil:
	case st.batch != nil:
		// One partition's rows: Cassandra applies them as one mutation,
		// on the replicas of that partition, which the driver routes to
		// by the first row's key.
		b := session.Batch(gocql.UnloggedBatch)
		b.Entries = make([]gocql.BatchEntry, len(st.batch))
		for i, values := range st.batch {
			b.Entries[i] = gocql.BatchEntry{Stmt: st.stmt, Args: values, Idempotent: true}
		}
		if spec != nil {
			b.SpeculativeExecutionPolicy(spec)
		}
		err = b.ExecContext(st.ctx)
	default:
		q := session.Query(st.stmt, st.values...)
		if spec != nil {
			q.SetSpeculativeExecutionPolicy(spec)
		}
		err = q.ExecContext(st.ctx)
	}
	if err != nil {
		st.wait.fail(err)
	}
}
