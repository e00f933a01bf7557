package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

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
	d := newDriverObserver(rec, NewLogs(slog.New(slog.DiscardHandler), Config{}), "ks", &stmts)
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

// TestDriverLinesAreRateLimited: a line with an error that the driver
// repeats while a node is away is written once a minute, the next one
// counting those left out; state changes (a node down, up) are always
// written.
func TestDriverLinesAreRateLimited(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := newGocqlLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	clock := time.Unix(1000, 0)
	l.now = func() time.Time { return clock }
	refused := gocql.NewLogFieldString("err", "dial tcp 127.0.0.1:9042: connect: connection refused")
	node := gocql.NewLogFieldString("host_addr", "127.0.0.1")
	for range 30 {
		l.Error("Unable to reconnect control connection.", refused)
		l.Warning("Node is DOWN.", node)
		clock = clock.Add(time.Second)
	}
	l.Error("Unable to reconnect control connection.", gocql.NewLogFieldString("err", "another error"))
	clock = clock.Add(time.Minute)
	l.Error("Unable to reconnect control connection.", refused)
	var errLines, downLines []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(line, "Node is DOWN") {
			downLines = append(downLines, line)
		} else {
			errLines = append(errLines, line)
		}
	}
	if len(downLines) != 30 {
		t.Errorf("got %d node-down lines, want all 30: they are state changes", len(downLines))
	}
	if len(errLines) != 3 {
		t.Fatalf("got %d error lines, want 3 (the first, another error, the first again with its count):\n%s", len(errLines), buf.String())
	}
	if !strings.Contains(errLines[2], "suppressed=29") {
		t.Errorf("last line %q: want suppressed=29", errLines[2])
	}
}

// TestLogsSayACauseOncePerNode: attempts to a node that fail for the same
// cause are one line, a new cause another, and a success one more; each
// node on its own.
func TestLogsSayACauseOncePerNode(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := NewLogs(slog.New(slog.NewTextHandler(&buf, nil)), Config{Username: "tracker", TLS: &TLSConfig{}})
	unknown := errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority")
	for range 5 {
		l.connect("127.0.0.1:9142", unknown)
		l.connect("127.0.0.2:9142", unknown)
	}
	for range 5 {
		l.connect("127.0.0.1:9142", errors.New("Provided username tracker and/or password are incorrect"))
		l.connect("127.0.0.2:9142", unknown)
	}
	l.connect("127.0.0.1:9142", nil)
	l.connect("127.0.0.1:9142", nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"node=127.0.0.1:9142 cause=unknown_authority", "node=127.0.0.2:9142 cause=unknown_authority",
		"authentication failed for user tracker", "connected to Cassandra again\" node=127.0.0.1:9142"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q: want %q", i, lines[i], w)
		}
	}
}
