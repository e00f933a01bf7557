package telemetry

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"tracker/function/store"
)

// Observer is what the store is told to report to: Cassandra metrics,
// and a client span per statement of a traced request.
func (t *Telemetry) Observer() store.Observer { return storeObserver{t} }

type storeObserver struct{ t *Telemetry }

// Statement records one attempt of one statement. Its span is made after
// the fact, from the attempt's own start and end, and only under a
// request's span that is recorded: the readiness probe and the schema
// reads have none, and a trace of every probe would bury the requests.
func (o storeObserver) Statement(ctx context.Context, s store.Statement) {
	if in := o.t.inst; in != nil {
		in.statementSeries.get([3]string{s.Table, s.Operation, s.Outcome}).Observe(s.End.Sub(s.Start).Seconds())
		if s.Attempt > 0 {
			in.retrySeries.get([2]string{s.Table, s.Operation}).Inc()
		}
	}
	if !o.t.tracing || !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	verb, _, _ := strings.Cut(s.CQL, " ")
	summary := verb + " " + s.Table
	switch s.Operation {
	case "claim":
		// The lightweight transaction: a Paxos round, not a plain write.
		summary = "INSERT IF NOT EXISTS " + s.Table
	case "batch":
		verb = "BATCH " + verb
		summary = verb + " " + s.Table
	}
	attrs := []attribute.KeyValue{
		semconv.DBSystemNameCassandra,
		semconv.DBNamespace(s.Keyspace),
		semconv.DBCollectionName(s.Table),
		semconv.DBOperationName(verb),
		semconv.DBQuerySummary(summary),
		semconv.DBQueryText(s.CQL),
		semconv.CassandraConsistencyLevelKey.String(s.Consistency),
	}
	if s.BatchSize > 0 {
		attrs = append(attrs, semconv.DBOperationBatchSize(s.BatchSize))
	}
	if s.Serial != "" {
		attrs = append(attrs, attribute.String("tracker.cassandra.serial_consistency", s.Serial), attribute.Bool("tracker.cassandra.lwt", true))
	}
	if host, port, err := net.SplitHostPort(s.Host()); err == nil {
		attrs = append(attrs, semconv.ServerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
	}
	if s.Attempt > 0 {
		attrs = append(attrs, attribute.Int("tracker.cassandra.attempt", s.Attempt))
	}
	_, span := o.t.tracer.Start(ctx, summary, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(s.Start), trace.WithAttributes(attrs...))
	if s.Err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(s.Outcome))
		span.SetStatus(codes.Error, s.Err.Error())
	}
	span.End(trace.WithTimestamp(s.End))
}

// Connect counts a connection attempt by its outcome: ok, or the cause
// of its failure (store.ConnectCauses).
func (o storeObserver) Connect(_ string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = store.ConnectFailure(err)
	}
	if in := o.t.inst; in != nil {
		in.outcomeSeries.get([2]string{"connects", outcome}).Inc()
	}
}

// WriterWait records how long a statement waited for a writer.
func (o storeObserver) WriterWait(d time.Duration) {
	if in := o.t.inst; in != nil {
		in.writerWait.Observe(d.Seconds())
	}
}

// Claim counts an id claim by its outcome and marks it on the request's
// span.
func (o storeObserver) Claim(ctx context.Context, existing bool) {
	outcome := "new"
	if existing {
		outcome = "existing"
	}
	if in := o.t.inst; in != nil {
		in.outcomeSeries.get([2]string{"claims", outcome}).Inc()
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("event id claimed", trace.WithAttributes(attribute.String("tracker.claim.outcome", outcome)))
	}
}
