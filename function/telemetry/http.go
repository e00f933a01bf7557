package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// TrackRoute is the route whose POST requests carry events.
const TrackRoute = "/track"

// Request is the telemetry of one request: the handlers tell it what the
// request carried and how it ended, and Handler records it when the
// request is answered. RequestFrom finds it in a request's context.
type Request struct {
	t      *Telemetry
	start  time.Time
	method string
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

type requestKey struct{}

// RequestFrom returns the telemetry of the request whose context is ctx.
// Outside Handler (in unit tests of a single handler) it returns a
// Request that records nothing.
func RequestFrom(ctx context.Context) *Request {
	if r, ok := ctx.Value(requestKey{}).(*Request); ok {
		return r
	}
	return &Request{}
}

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

// Trace starts the request's server span and returns ctx carrying it,
// for the store's statements to be its children. The span's parent is
// the request's W3C traceparent header; when it has none, parent, the
// traceparent of the CloudEvent the request carried. links are the
// traceparents of the CloudEvents of a batch (or of a single CloudEvent
// whose trace is not the parent); each valid one becomes a span link.
// Handler starts the span itself at the end for a request whose handler
// never called Trace. The span starts at the request's arrival either way.
func (r *Request) Trace(ctx context.Context, parent string, links []string) context.Context {
	if r.t == nil || !r.t.tracing || r.span != nil {
		return ctx
	}
	return r.startSpan(ctx, parent, links)
}

func (r *Request) startSpan(ctx context.Context, ceParent string, links []string) context.Context {
	parentCtx := r.parent
	if !trace.SpanContextFromContext(parentCtx).IsValid() && ceParent != "" {
		if sc := spanContextOf(ceParent); sc.IsValid() {
			parentCtx = trace.ContextWithRemoteSpanContext(parentCtx, sc)
		}
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(r.start)}
	if len(links) > 0 {
		parentID := trace.SpanContextFromContext(parentCtx)
		var ls []trace.Link
		for _, tp := range links {
			if sc := spanContextOf(tp); sc.IsValid() && !sc.Equal(parentID) && len(ls) < maxLinks {
				ls = append(ls, trace.Link{SpanContext: sc})
			}
		}
		opts = append(opts, trace.WithLinks(ls...))
	}
	_, r.span = r.t.tracer.Start(parentCtx, "", opts...)
	return trace.ContextWithSpan(ctx, r.span)
}

// maxLinks bounds the links of one span: a batch may hold 500 events.
const maxLinks = 128

// spanContextOf reads a W3C traceparent value.
func spanContextOf(traceparent string) trace.SpanContext {
	carrier := propagation.MapCarrier{"traceparent": traceparent}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
}

// Handler wraps the API: for every request it counts and times it, gives
// it a server span (Request.Trace) and, when it was not answered 2xx or
// 3xx, logs one line about it (rate-limited). routeOf names the route
// the request matched, once it has been served.
func (t *Telemetry) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &Request{t: t, start: time.Now(), method: methodLabel(r.Method), format: "unknown", parent: context.Background()}
		// The canonical key, read straight: Get would canonicalize
		// "traceparent" into a new string on every request.
		if len(r.Header["Traceparent"]) > 0 {
			rec.parent = t.propagator.Extract(rec.parent, propagation.HeaderCarrier(r.Header))
		}
		t.inst.inFlight.Add(r.Context(), 1, t.inst.noAttrs...)
		rec.w.ResponseWriter = w
		if r.Body != nil && r.Body != http.NoBody {
			rec.body.ReadCloser = r.Body
			r.Body = &rec.body
		}
		served := r.WithContext(context.WithValue(r.Context(), requestKey{}, rec))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				t.log.Error("panic while serving a request", "panic", p, "stack", string(debug.Stack()))
				rec.reason, rec.err = "internal", nil
				if !rec.w.wrote {
					rec.w.WriteHeader(http.StatusInternalServerError)
				}
			}
			t.finish(rec, served, rec.w.status(), rec.body.n)
		}()
		next.ServeHTTP(&rec.w, served)
	})
}

// finish records a request that has been answered.
func (t *Telemetry) finish(rec *Request, r *http.Request, status int, bodyBytes int64) {
	ctx := r.Context()
	elapsed := time.Since(rec.start)
	route := routeOf(r)
	in := t.inst
	in.inFlight.Add(ctx, -1, in.noAttrs...)
	req := in.attrs.get(attrKey{kind: keyRequest, a: route, b: rec.method, statusCode: status})
	in.requests.Add(ctx, 1, req.add...)
	in.duration.Record(ctx, elapsed.Seconds(), req.record...)
	in.bodyBytes.Record(ctx, float64(bodyBytes), in.attrs.get(attrKey{kind: keyRoute, a: route}).record...)

	if route == TrackRoute && r.Method == http.MethodPost {
		if !rec.counted {
			// Refused before its events were read: count it as one.
			switch {
			case status < 300:
				rec.Stored(1)
			case status < 500:
				rec.Rejected(rec.reasonOr("rejected"), 1)
			default:
				rec.Failed(rec.reasonOr("internal"), 1, rec.err)
			}
		}
		t.countEvents(ctx, rec)
	}

	// Without tracing there is no span: the log still carries the
	// caller's trace id, if it sent one.
	sc, ours := trace.SpanContextFromContext(rec.parent), false
	if t.tracing {
		if rec.span == nil {
			rec.startSpan(ctx, "", nil)
		}
		sc, ours = rec.span.SpanContext(), rec.span.IsRecording()
		if ours {
			endSpan(rec, r, route, status, bodyBytes)
		} else {
			rec.span.End()
		}
	}
	if status >= 400 {
		t.logRequest(ctx, rec, route, status, elapsed, sc, ours)
	}
}

func (r *Request) reasonOr(fallback string) string {
	if r.reason != "" {
		return r.reason
	}
	return fallback
}

func (t *Telemetry) countEvents(ctx context.Context, rec *Request) {
	in := t.inst
	format := in.attrs.get(attrKey{kind: keyFormat, a: rec.format})
	in.received.Add(ctx, int64(rec.received), format.add...)
	if rec.stored > 0 {
		in.stored.Add(ctx, int64(rec.stored), format.add...)
	}
	for reason, n := range rec.rejected {
		in.rejected.Add(ctx, int64(n), in.attrs.get(attrKey{kind: keyFormatReason, a: rec.format, b: reason}).add...)
	}
	for reason, n := range rec.failed {
		in.failed.Add(ctx, int64(n), in.attrs.get(attrKey{kind: keyFormatReason, a: rec.format, b: reason}).add...)
	}
}

// endSpan names the server span by its route, as OpenTelemetry's HTTP
// conventions do, sets what the request did, and ends it.
func endSpan(rec *Request, r *http.Request, route string, status int, bodyBytes int64) {
	span := rec.span
	name := r.Method
	if route != "other" {
		name += " " + route
		span.SetAttributes(semconv.HTTPRoute(route))
	}
	span.SetName(name)
	span.SetAttributes(
		semconv.HTTPRequestMethodKey.String(r.Method),
		semconv.URLPath(truncate(r.URL.Path)),
		semconv.URLScheme("http"),
		semconv.HTTPResponseStatusCode(status),
		semconv.HTTPRequestBodySize(int(bodyBytes)),
	)
	if ua := r.UserAgent(); ua != "" {
		span.SetAttributes(semconv.UserAgentOriginal(truncate(ua)))
	}
	if rec.received > 0 {
		span.SetAttributes(attribute.String("tracker.events.format", rec.format), attribute.Int("tracker.events.count", rec.received))
	}
	if ce := rec.ce; ce != nil {
		span.SetAttributes(semconv.CloudEventsEventID(ce.ID), semconv.CloudEventsEventSource(ce.Source), semconv.CloudEventsEventType(ce.Type))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, rec.reasonOr(strconv.Itoa(status)))
		span.SetAttributes(semconv.ErrorTypeKey.String(rec.reasonOr(strconv.Itoa(status))))
	} else if rec.reason != "" {
		span.SetAttributes(attribute.String("tracker.rejected.reason", rec.reason))
	}
	span.End()
}

// routeOf is the route the request matched by the function's ServeMux
// pattern ("POST /track" is /track), or other when it matched none.
func routeOf(r *http.Request) string {
	p := r.Pattern
	if p == "" {
		return "other"
	}
	if _, path, ok := strings.Cut(p, " "); ok {
		p = path
	}
	return strings.TrimSuffix(p, "{$}")
}

// logRequest writes the one line of a request answered 4xx or 5xx: at
// debug for 4xx (a client's mistake; a flood of them must not fill the
// log at info), warn for 503, error for other 5xx. Lines of one status and
// reason are rate-limited to one a second, with the count of those left
// out.
func (t *Telemetry) logRequest(ctx context.Context, rec *Request, route string, status int, elapsed time.Duration, sc trace.SpanContext, ours bool) {
	level := slog.LevelDebug
	msg := "request rejected"
	switch {
	case status == http.StatusServiceUnavailable:
		level, msg = slog.LevelWarn, "request failed"
	case status >= 500:
		level, msg = slog.LevelError, "request failed"
	}
	if !t.log.Enabled(ctx, level) {
		return
	}
	ok, suppressed := t.limit.allow(strconv.Itoa(status)+" "+rec.reason, time.Now())
	if !ok {
		return
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("route", route),
		slog.String("method", rec.method),
		slog.Int("status", status),
		slog.String("reason", rec.reasonOr("none")),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	)
	if rec.received > 0 {
		attrs = append(attrs, slog.String("format", rec.format), slog.Int("events", rec.received))
	}
	if sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
		if ours {
			attrs = append(attrs, slog.String("span_id", sc.SpanID().String()))
		}
	}
	if ce := rec.ce; ce != nil {
		attrs = append(attrs, slog.String("ce.id", ce.ID), slog.String("ce.source", ce.Source), slog.String("ce.type", ce.Type))
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("error", rec.err.Error()))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	t.log.LogAttrs(ctx, level, msg, attrs...)
}

// statusWriter remembers the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and Unwrap reach the server's
// writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.code
}

// Unwrap returns the writer the HTTP server made, under any wrapper that
// has an Unwrap method. http.MaxBytesReader needs it: only the server's
// writer can close the connection after a body over the limit.
func Unwrap(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// countingBody counts the bytes read of a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
