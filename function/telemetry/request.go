package telemetry

import (
	"context"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
)

// Request is the telemetry of one request: the handlers tell it what the
// request carried and how it ended, and Handler records it when the
// request is answered. RequestFrom finds it in a request's context. It
// belongs to the request's goroutine.
type Request struct {
	t      *Telemetry
	start  time.Time
	method string
	route  string
	parent context.Context // the request's context with its remote parent, if any
	span   trace.Span      // nil until Trace starts it; always nil with tracing off
	// w and body wrap the request's writer and body; they live here to
	// cost the request one allocation, not three.
	w    statusWriter
	body countingBody

	format   string
	counted  bool // the handler counted the events
	received int
	stored   int
	rejected map[string]int // by reason
	failed   map[string]int // by reason
	// reason and err say why the request was not answered 2xx, for the
	// log: the first problem, and the error behind a 5xx.
	reason string
	err    error
	ce     *CloudEvent
}

// CloudEvent is what a request's log line and span tell of the
// CloudEvent it carried.
type CloudEvent struct {
	ID, Source, Type string
}

type contextKey struct{}

// RequestFrom returns the telemetry of the request whose context is ctx.
// Outside Handler (in unit tests of a single handler) it returns a
// Request that records nothing.
func RequestFrom(ctx context.Context) *Request {
	if r, ok := ctx.Value(contextKey{}).(*Request); ok {
		return r
	}
	return &Request{}
}

// SetRoute names the route the request matched: its path pattern, such
// as /track. A request that matched none stays "other".
func (r *Request) SetRoute(route string) { r.route = route }

// SetFormat names the input form of the request's events (one of
// Formats).
func (r *Request) SetFormat(format string) { r.format = format }

// SetCloudEvent tells the log and the span which CloudEvent the request
// carried, when it carried one. Each attribute is cut to
// maxAttributeBytes: they come from the client, whose headers may be
// long.
func (r *Request) SetCloudEvent(ce CloudEvent) {
	ce.ID, ce.Source, ce.Type = truncate(ce.ID), truncate(ce.Source), truncate(ce.Type)
	r.ce = &ce
}

// Stored counts n events of the request as stored.
func (r *Request) Stored(n int) {
	r.counted = true
	r.received += n
	r.stored += n
}

// Rejected counts n events of the request as rejected for reason.
func (r *Request) Rejected(reason string, n int) {
	r.counted = true
	r.received += n
	if r.rejected == nil {
		r.rejected = map[string]int{}
	}
	r.rejected[reason] += n
	if r.reason == "" {
		r.reason = reason
	}
}

// Failed counts n events of the request as failed for reason (one of
// FailedReasons); err is what the log tells of it.
func (r *Request) Failed(reason string, n int, err error) {
	r.counted = true
	r.received += n
	if r.failed == nil {
		r.failed = map[string]int{}
	}
	r.failed[reason] += n
	if r.reason == "" {
		r.reason, r.err = reason, err
	}
}

// Problem records why the request was refused, for a request that
// carried no events (an unknown path, a preflight) or that was refused
// before its events were read.
func (r *Request) Problem(reason string, err error) {
	if r.reason == "" {
		r.reason, r.err = reason, err
	}
}

func (r *Request) reasonOr(fallback string) string {
	if r.reason != "" {
		return r.reason
	}
	return fallback
}

// maxAttributeBytes bounds what a log line or span tells of a client's
// value.
const maxAttributeBytes = 256

// truncate cuts s to at most maxAttributeBytes, at a rune boundary.
func truncate(s string) string {
	if len(s) <= maxAttributeBytes {
		return s
	}
	cut := maxAttributeBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
