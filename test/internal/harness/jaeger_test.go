package harness

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestJaegerReceivesAndAnswers sends a parent span, a child span with a
// link to a span of another trace, and a failed span through the
// OpenTelemetry SDK's OTLP/HTTP exporter, as the function will, to the
// real Jaeger, and reads the trace back through the harness.
func TestJaegerReceivesAndAnswers(t *testing.T) {
	t.Parallel()
	// The first build of Jaeger on a machine takes minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	j, err := StartJaeger(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := j.Stop(); err != nil {
			t.Errorf("stop: %v\n%s", err, j.LogTail(20))
		}
	}()

	exporter, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(j.OTLPEndpoint()+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exporter),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "harness-test"))),
	)
	defer provider.Shutdown(context.Background())
	tracer := provider.Tracer("harness")

	traceID := trace.TraceID{0x0a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xb0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		SpanID:  trace.SpanID{0xc0, 1, 2, 3, 4, 5, 6, 7},
		Remote:  true,
	})
	// A remote parent with a known trace id, as an incoming traceparent
	// header gives the function's server span.
	parentCtx := trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    traceID,
		SpanID:     trace.SpanID{0xd0, 1, 2, 3, 4, 5, 6, 7},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	}))
	began := time.Now()
	serverCtx, server := tracer.Start(parentCtx, "POST /track", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "POST"), attribute.Int("http.response.status_code", 201)))
	_, client := tracer.Start(serverCtx, "INSERT tracker.events_by_id", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(trace.Link{SpanContext: remote, Attributes: []attribute.KeyValue{attribute.String("why", "batch")}}),
		trace.WithAttributes(attribute.Bool("db.idempotent", true), attribute.Float64("ratio", 0.5)))
	client.End()
	_, failed := tracer.Start(serverCtx, "claim")
	failed.SetStatus(codes.Error, "timed out")
	failed.End()
	server.End()

	spans, err := j.WaitTrace(ctx, traceID.String(), 3)
	if err != nil {
		t.Fatalf("%v\n%s", err, j.LogTail(20))
	}
	for _, s := range spans {
		if s.Start.Before(began.Add(-time.Second)) || s.Duration < 0 || s.Duration > time.Minute {
			t.Errorf("span %s: start %s, duration %s; want a start after %s and a short duration", s.Name, s.Start, s.Duration, began)
		}
	}
	want := []Span{
		{
			TraceID: traceID.String(), SpanID: server.SpanContext().SpanID().String(), ParentSpanID: "d001020304050607",
			Name: "POST /track", Kind: "server", Service: "harness-test", StatusCode: "unset",
			Attributes: map[string]string{"http.request.method": "POST", "http.response.status_code": "201"},
		},
		{
			TraceID: traceID.String(), SpanID: client.SpanContext().SpanID().String(), ParentSpanID: server.SpanContext().SpanID().String(),
			Name: "INSERT tracker.events_by_id", Kind: "client", Service: "harness-test", StatusCode: "unset",
			Attributes: map[string]string{"db.idempotent": "true", "ratio": "0.5"},
			Links: []SpanLink{{
				TraceID: "b00102030405060708090a0b0c0d0e0f", SpanID: "c001020304050607",
				Attributes: map[string]string{"why": "batch"},
			}},
		},
		{
			TraceID: traceID.String(), SpanID: failed.SpanContext().SpanID().String(), ParentSpanID: server.SpanContext().SpanID().String(),
			Name: "claim", Kind: "internal", Service: "harness-test", StatusCode: "error", StatusMessage: "timed out",
		},
	}
	ignoreTimes := cmpopts.IgnoreFields(Span{}, "Start", "Duration")
	byName := cmpopts.SortSlices(func(a, b Span) bool { return a.Name < b.Name })
	if diff := cmp.Diff(want, spans, ignoreTimes, byName); diff != "" {
		t.Errorf("trace %s (-want +got):\n%s", traceID, diff)
	}

	if spans, err := j.Trace(ctx, "00000000000000000000000000000abc"); err != nil || spans != nil {
		t.Errorf("a trace Jaeger never saw: got %v, %v; want nil, nil", spans, err)
	}
}
