package telemetry

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Trace starts the request's server span and returns ctx carrying it,
// for the store's statements to be its children. The span's parent is
// the request's W3C traceparent header; when it has none, parent, the
// traceparent of the CloudEvent the request carried. links are the
// traceparents of the CloudEvents of a batch (or of a single CloudEvent
// whose trace is not the parent); each valid one becomes a span link.
// Handler starts the span itself at the end for a request whose handler
// never called Trace. The span starts at the request's arrival either
// way. Without tracing, it returns ctx as it is.
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

// endSpan names the server span by its route, as OpenTelemetry's HTTP
// conventions do, sets what the request did, and ends it. Every value
// that comes from the client is of a fixed set or cut to
// maxAttributeBytes.
func endSpan(rec *Request, r *http.Request, status int, bodyBytes int64) {
	span := rec.span
	method := rec.method
	if method == "other" {
		method = "_OTHER" // OpenTelemetry's name for a method it does not know
	}
	name := method
	if rec.route != "other" {
		name += " " + rec.route
		span.SetAttributes(semconv.HTTPRoute(rec.route))
	}
	span.SetName(name)
	span.SetAttributes(
		semconv.HTTPRequestMethodKey.String(method),
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
