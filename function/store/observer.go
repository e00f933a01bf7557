package store

import (
	"context"
	"errors"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Observer is told what the store does, for metrics and traces; Open takes
// one. The store calls it from many goroutines, on the path of every
// write, so its methods must be quick and must not block.
type Observer interface {
	// Statement is called after every attempt of every statement the
	// store runs; a retried statement is reported once per attempt. ctx is
	// the statement's, so it carries the request's trace.
	Statement(ctx context.Context, s Statement)
	// Connect is called after every attempt to open a connection to a
	// node; err is nil when it opened.
	Connect(host string, err error)
	// WriterWait is how long a statement waited for a free writer
	// (writers.go) before it was sent.
	WriterWait(d time.Duration)
	// Claim is the outcome of an id claim (claim.go): existing is false
	// when this delivery claimed a new event, true when the event was
	// stored before.
	Claim(ctx context.Context, existing bool)
}

// Statement is one attempt of one statement, as Observer.Statement sees it.
type Statement struct {
	// Keyspace and Table name what it wrote or read; Table is "other" for
	// statements on no event table (schema reads and changes).
	Keyspace, Table string
	// Operation is insert, batch (an unlogged batch of the inserts of
	// one partition's rows), claim (the INSERT ... IF NOT EXISTS of
	// claim.go), probe (a readiness or schema read of a table), or other.
	Operation string
	// CQL is the statement's text, without values; a batch's INSERT.
	CQL string
	// BatchSize is how many rows a batch wrote; 0 for any other statement.
	BatchSize int
	// Consistency is the consistency level, in lower case
	// (local_quorum); Serial is set for a claim's Paxos round.
	Consistency, Serial string
	// host is the node that ran the attempt; nil when none was tried.
	host *gocql.HostInfo
	// Attempt is 0 for the first attempt, then 1, 2, ... for retries.
	Attempt int
	// Start and End bound the attempt.
	Start, End time.Time
	// Outcome is ok, or the kind of failure: timeout, unavailable,
	// overloaded, canceled or error (see ErrorKind).
	Outcome string
	// Err is the driver's error; nil when Outcome is ok.
	Err error
}

// Host is the address and port of the node that ran the attempt; empty
// when no node was tried. It is worked out when asked for: only a traced
// statement needs it.
func (s Statement) Host() string {
	if s.host == nil {
		return ""
	}
	return s.host.ConnectAddressAndPort()
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) Statement(context.Context, Statement) {}
func (nopObserver) Connect(string, error)                {}
func (nopObserver) WriterWait(time.Duration)             {}
func (nopObserver) Claim(context.Context, bool)          {}

// statementInfo is what the store knows of one of its statements.
type statementInfo struct {
	table, operation string
}

// driverObserver turns the driver's query and connection observations
// into Observer calls, naming each statement's table and operation.
type driverObserver struct {
	obs      Observer
	logs     *Logs
	keyspace string
	known    map[string]statementInfo
}

func newDriverObserver(obs Observer, logs *Logs, keyspace string, stmts *statements) *driverObserver {
	known := map[string]statementInfo{stmts.claim: {tables[byID].name, "claim"}}
	for i, t := range tables {
		known[stmts.inserts[i]] = statementInfo{t.name, "insert"}
		known[stmts.probes[i]] = statementInfo{t.name, "probe"}
	}
	return &driverObserver{obs: obs, logs: logs, keyspace: keyspace, known: known}
}

// ObserveQuery implements gocql.QueryObserver.
func (d *driverObserver) ObserveQuery(ctx context.Context, q gocql.ObservedQuery) {
	info, ok := d.known[q.Statement]
	if !ok {
		info = statementInfo{"other", "other"}
	}
	s := Statement{
		Keyspace:  d.keyspace,
		Table:     info.table,
		Operation: info.operation,
		CQL:       q.Statement,
		Attempt:   q.Attempt,
		Start:     q.Start,
		End:       q.End,
		Outcome:   ErrorKind(q.Err),
		Err:       q.Err,
	}
	if q.Keyspace != "" {
		s.Keyspace = q.Keyspace
	}
	if q.Query != nil {
		s.Consistency = consistencyName(q.Query.GetConsistency())
		if serial, ok := q.Query.GetSerialConsistency(); ok {
			s.Serial = consistencyName(serial)
		}
	}
	s.host = q.Host
	d.obs.Statement(ctx, s)
}

// ObserveBatch implements gocql.BatchObserver: the store's batches hold
// the INSERTs of one table's rows of one partition.
func (d *driverObserver) ObserveBatch(ctx context.Context, b gocql.ObservedBatch) {
	s := Statement{
		Keyspace:  d.keyspace,
		Table:     "other",
		Operation: "batch",
		BatchSize: len(b.Statements),
		Attempt:   b.Attempt,
		Start:     b.Start,
		End:       b.End,
		Outcome:   ErrorKind(b.Err),
		Err:       b.Err,
		host:      b.Host,
	}
	if len(b.Statements) > 0 {
		s.CQL = b.Statements[0]
		if info, ok := d.known[s.CQL]; ok {
			s.Table = info.table
		}
	}
	if b.Keyspace != "" {
		s.Keyspace = b.Keyspace
	}
	if b.Batch != nil {
		s.Consistency = consistencyName(b.Batch.GetConsistency())
	}
	d.obs.Statement(ctx, s)
}

// ObserveConnect implements gocql.ConnectObserver: every attempt to open
// a connection, the TLS handshake and the authentication included.
func (d *driverObserver) ObserveConnect(c gocql.ObservedConnect) {
	host := ""
	if c.Host != nil {
		host = c.Host.ConnectAddressAndPort()
	}
	d.obs.Connect(host, c.Err)
	d.logs.connect(host, c.Err)
}

// consistencyNames are the levels' names in lower case, as OpenTelemetry's
// cassandra.consistency.level has them, by their protocol code.
var consistencyNames = func() (names [16]string) {
	for c := range gocql.Consistency(len(names)) {
		names[c] = strings.ToLower(c.String())
	}
	return names
}()

func consistencyName(c gocql.Consistency) string {
	if int(c) < len(consistencyNames) {
		return consistencyNames[c]
	}
	return "unknown"
}

// ErrorKind names the kind of a store error, for metrics and logs: ok for
// nil, then timeout, unavailable, overloaded, canceled (the caller gave
// up: its context was canceled), or error for an error Cassandra answered
// that no retry cures (a refused statement, missing rights). Errors of
// the connection (none open, one closed, a dial that failed) are
// unavailable.
func ErrorKind(err error) string {
	var reqErr gocql.RequestError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, gocql.ErrTimeoutNoResponse):
		return "timeout"
	case errors.As(err, &reqErr):
		switch reqErr.Code() {
		case gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadTimeout, gocql.ErrCodeCASWriteUnknown:
			return "timeout"
		case gocql.ErrCodeOverloaded:
			return "overloaded"
		case gocql.ErrCodeUnavailable, gocql.ErrCodeServer, gocql.ErrCodeBootstrapping, gocql.ErrCodeTruncate,
			gocql.ErrCodeWriteFailure, gocql.ErrCodeReadFailure:
			return "unavailable"
		}
		return "error"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	}
	// Connection errors: no connections, a closed connection, a dial
	// that failed.
	return "unavailable"
}
