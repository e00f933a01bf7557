package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// requestError is an error frame of Cassandra's, as gocql returns one.
type requestError int

func (e requestError) Code() int       { return int(e) }
func (e requestError) Message() string { return "message" }
func (e requestError) Error() string   { return fmt.Sprintf("code %#x", int(e)) }

func TestErrorKind(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{context.Canceled, "canceled"},
		{classify(context.Canceled), "canceled"},
		{classify(context.DeadlineExceeded), "timeout"},
		{gocql.ErrTimeoutNoResponse, "timeout"},
		{requestError(gocql.ErrCodeWriteTimeout), "timeout"},
		{requestError(gocql.ErrCodeReadTimeout), "timeout"},
		{requestError(gocql.ErrCodeCASWriteUnknown), "timeout"},
		{classify(requestError(gocql.ErrCodeOverloaded)), "overloaded"},
		{requestError(gocql.ErrCodeUnavailable), "unavailable"},
		{requestError(gocql.ErrCodeBootstrapping), "unavailable"},
		{classify(gocql.ErrNoConnections), "unavailable"},
		{errClosed, "unavailable"},
		{requestError(gocql.ErrCodeInvalid), "error"},
		{requestError(gocql.ErrCodeUnauthorized), "error"},
		{errors.New("anything else"), "unavailable"},
	} {
		if got := ErrorKind(c.err); got != c.want {
			t.Errorf("ErrorKind(%v): got %q, want %q", c.err, got, c.want)
		}
	}
}

func TestConsistencyNames(t *testing.T) {
	t.Parallel()
	for c, want := range map[gocql.Consistency]string{
		gocql.LocalQuorum: "local_quorum", gocql.One: "one", gocql.LocalSerial: "local_serial", gocql.All: "all",
	} {
		if got := consistencyName(c); got != want {
			t.Errorf("consistencyName(%v): got %q, want %q", c, got, want)
		}
	}
}

// TestDriverObserverNamesStatements: the store's own statements are named
// by table and operation; anything else is "other".
func TestDriverObserverNamesStatements(t *testing.T) {
	t.Parallel()
	stmts := newStatements("ks")
	rec := &recordingObserver{}
	d := newDriverObserver(rec, Config{Keyspace: "ks"}, slog.New(slog.NewTextHandler(io.Discard, nil)), &stmts)
	for _, cql := range []string{stmts.inserts[byUser], stmts.claim, stmts.probes[byTarget], "SELECT table_name FROM system_schema.tables"} {
		d.ObserveQuery(context.Background(), gocql.ObservedQuery{Statement: cql, Attempt: 1})
	}
	want := []string{"events_by_user insert", "events_by_id claim", "events_by_target probe", "other other"}
	if len(rec.got) != len(want) {
		t.Fatalf("got %d statements, want %d", len(rec.got), len(want))
	}
	for i, s := range rec.got {
		if got := s.Table + " " + s.Operation; got != want[i] || s.Keyspace != "ks" || s.Outcome != "ok" || s.Attempt != 1 {
			t.Errorf("statement %d: got %q in %q, outcome %q, attempt %d; want %q in ks, ok, 1", i, got, s.Keyspace, s.Outcome, s.Attempt, want[i])
		}
	}
}

type recordingObserver struct {
	nopObserver
	got []Statement
}

func (r *recordingObserver) Statement(_ context.Context, s Statement) { r.got = append(r.got, s) }
