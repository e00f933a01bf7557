package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	zlog "github.com/rs/zerolog/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"tracker/function/internal/metricstest"
	"tracker/function/store"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// serve returns telemetry that serves /metrics on a free loopback port,
// with tracing off.
func serve(t *testing.T, log *slog.Logger, src Sources) *Telemetry {
	t.Helper()
	tel, err := New(Config{MetricsAddress: "127.0.0.1:0", MetricsExporters: []string{"prometheus"}, TracesExporter: "none"}, log, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := tel.ServeMetrics(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return tel
}

// withSpans records the spans of tel in memory, as an exporter would get
// them.
func withSpans(tel *Telemetry, sampler sdktrace.Sampler) *tracetest.InMemoryExporter {
	exp := tracetest.NewInMemoryExporter()
	tel.tracers = sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sampler))
	tel.tracer, tel.tracing = tel.tracers.Tracer(scopeName), true
	return exp
}

// TestExposedIsTheExposition holds Exposed, which the manifests' PromQL is
// checked against, to what Prometheus really scrapes: every family, its
// type and its labels.
func TestExposedIsTheExposition(t *testing.T) {
	t.Parallel()
	tel := serve(t, discard, Sources{HostsUp: func() int { return 2 }, Ready: func() bool { return true },
		EventsInFlight: func() int64 { return 7 }, EventsInFlightLimit: 2000})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /track", func(w http.ResponseWriter, r *http.Request) {
		rec := RequestFrom(r.Context())
		rec.SetFormat("plain_batch")
		rec.Stored(2)
		rec.Rejected("invalid_target", 1)
		rec.Failed("timeout", 1, errors.New("timed out"))
		w.WriteHeader(http.StatusCreated)
	})
	tel.Handler(routed(mux)).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/track", strings.NewReader("[]")))
	obs := tel.Observer()
	now := time.Now()
	obs.Statement(context.Background(), store.Statement{Table: "events_by_id", Operation: "insert", Outcome: "ok", Attempt: 1, Start: now, End: now.Add(time.Millisecond)})
	obs.Connect("127.0.0.1:9042", nil)
	obs.WriterWait(time.Microsecond)
	obs.Claim(context.Background(), false)

	fams := metricstest.Scrape(t, tel.MetricsAddr())
	var got, want []string
	for name, fam := range fams {
		if !strings.HasPrefix(name, "tracker_") {
			continue
		}
		labels := map[string]bool{}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		got = append(got, name+" "+strings.ToLower(fam.GetType().String())+" "+strings.Join(sortedKeys(labels), ","))
	}
	for _, m := range Exposed {
		labels := slices.Clone(m.Labels)
		slices.Sort(labels)
		want = append(want, m.Name+" "+m.Type+" "+strings.Join(labels, ","))
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exposition (-Exposed +scraped):\n%s", diff)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing from the exposition", name)
		}
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"tracker_events_received_total", []string{"format", "plain_batch"}, 4},
		{"tracker_events_stored_total", []string{"format", "plain_batch"}, 2},
		{"tracker_events_rejected_total", []string{"format", "plain_batch", "reason", "invalid_target"}, 1},
		{"tracker_events_failed_total", []string{"format", "plain_batch", "reason", "timeout"}, 1},
		{"tracker_http_requests_total", []string{"route", "/track", "method", "POST", "code", "201"}, 1},
		{"tracker_cassandra_hosts_up", nil, 2},
		{"tracker_store_ready", nil, 1},
		{"tracker_events_in_flight", nil, 7},
		{"tracker_events_in_flight_limit", nil, 2000},
		{"tracker_cassandra_retries_total", []string{"table", "events_by_id", "operation", "insert"}, 1},
		{"tracker_cassandra_claims_total", []string{"outcome", "new"}, 1},
		{"tracker_build_info", nil, 1},
	} {
		if got := fams.Value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// routed names each request's route by mux's pattern, as the function's
// routes do.
func routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			_, path, _ := strings.Cut(pattern, " ")
			RequestFrom(r.Context()).SetRoute(path)
		}
		mux.ServeHTTP(w, r)
	})
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestMetricsArePushed: with OTEL_METRICS_EXPORTER=otlp the same metrics
// reach an OTLP/HTTP receiver, with the resource that says whose they are,
// at the last push when telemetry shuts down.
func TestMetricsArePushed(t *testing.T) {
	t.Parallel()
	got := make(chan *colmetricpb.ExportMetricsServiceRequest, 10)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req colmetricpb.ExportMetricsServiceRequest
		if r.URL.Path != "/v1/metrics" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP metrics export", http.StatusBadRequest)
			return
		}
		got <- &req
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	tel, err := New(Config{MetricsExporters: []string{"otlp"}, OTLPEndpoint: sink.URL, MetricsPushInterval: time.Hour, TracesExporter: "none",
		ServiceName: "tracker-push", KnativeRevision: "tracker-00001"}, discard, Sources{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /track", func(w http.ResponseWriter, r *http.Request) {
		RequestFrom(r.Context()).Stored(3)
		w.WriteHeader(http.StatusCreated)
	})
	tel.Handler(routed(mux)).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/track", nil))
	if tel.MetricsAddr() != "" || tel.server != nil {
		t.Errorf("OTEL_METRICS_EXPORTER=otlp alone serves /metrics too")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var req *colmetricpb.ExportMetricsServiceRequest
	select {
	case req = <-got:
	default:
		t.Fatal("nothing was pushed at shutdown")
	}
	resource := map[string]string{}
	stored := -1.0
	names := map[string]bool{}
	for _, rm := range req.GetResourceMetrics() {
		for _, kv := range rm.GetResource().GetAttributes() {
			resource[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				names[m.GetName()] = true
				if m.GetName() == "tracker_events_stored_total" {
					for _, dp := range m.GetSum().GetDataPoints() {
						stored = dp.GetAsDouble()
					}
				}
			}
		}
	}
	if stored != 3 {
		t.Errorf("tracker_events_stored_total pushed: got %v, want 3", stored)
	}
	// Those with a series: the request's counters and histograms, every
	// gauge, and the runtime's.
	for _, name := range []string{"tracker_http_requests_total", "tracker_http_request_duration_seconds", "tracker_http_request_body_bytes",
		"tracker_events_received_total", "tracker_events_stored_total", "tracker_http_requests_in_flight", "tracker_events_in_flight_limit",
		"tracker_store_ready", "tracker_build_info", "go_goroutines", "process_resident_memory_bytes"} {
		if !names[name] {
			t.Errorf("%s was not pushed", name)
		}
	}
	for k, v := range map[string]string{"service.name": "tracker-push", "kn.revision.name": "tracker-00001"} {
		if resource[k] != v {
			t.Errorf("resource %s: got %q, want %q", k, resource[k], v)
		}
	}
}

// TestMethodsAreAFixedSet: a made-up method must not become a label value,
// or a client could grow the series without bound.
func TestMethodsAreAFixedSet(t *testing.T) {
	t.Parallel()
	tel := serve(t, discard, Sources{})
	h := tel.Handler(http.NotFoundHandler())
	for _, m := range []string{"GET", "BREW", "PROPFIND"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/x", nil))
	}
	fams := metricstest.Scrape(t, tel.MetricsAddr())
	want := []string{"code=404,method=GET,route=other", "code=404,method=other,route=other"}
	got := fams.Series("tracker_http_requests_total")
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	if v := fams.Value("tracker_http_requests_total", "method", "other"); v != 2 {
		t.Errorf("method=other: got %v, want 2", v)
	}
}

// TestRefusedBeforeReadingCountsOne: a POST /track that the handler
// refuses before reading its events (a CORS 403) counts as one event
// rejected, so that received = stored + rejected + failed holds.
func TestRefusedBeforeReadingCountsOne(t *testing.T) {
	t.Parallel()
	tel := serve(t, discard, Sources{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /track", func(w http.ResponseWriter, r *http.Request) {
		RequestFrom(r.Context()).Problem("origin_not_allowed", nil)
		w.WriteHeader(http.StatusForbidden)
	})
	tel.Handler(routed(mux)).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/track", nil))
	fams := metricstest.Scrape(t, tel.MetricsAddr())
	if got := fams.Value("tracker_events_received_total", "format", "unknown"); got != 1 {
		t.Errorf("received: got %v, want 1", got)
	}
	if got := fams.Value("tracker_events_rejected_total", "format", "unknown", "reason", "origin_not_allowed"); got != 1 {
		t.Errorf("rejected origin_not_allowed: got %v, want 1", got)
	}
}

// TestPanicIsAnInternalFailure: a handler that panics gets a 500 answer,
// one error line, and its request counted.
func TestPanicIsAnInternalFailure(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	tel := serve(t, slog.New(slog.NewJSONHandler(&logs, nil)), Sources{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /track", func(http.ResponseWriter, *http.Request) { panic("bug") })
	rec := httptest.NewRecorder()
	tel.Handler(routed(mux)).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/track", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status: got %d, want 500", rec.Code)
	}
	fams := metricstest.Scrape(t, tel.MetricsAddr())
	if got := fams.Value("tracker_events_failed_total", "reason", "internal"); got != 1 {
		t.Errorf("failed internal: got %v, want 1", got)
	}
	if !strings.Contains(logs.String(), `"panic":"bug"`) {
		t.Errorf("no log line about the panic:\n%s", logs.String())
	}
}

func TestCloudEventAttributesAreBounded(t *testing.T) {
	t.Parallel()
	var rec Request
	long := strings.Repeat("é", 300) // 600 bytes
	rec.SetCloudEvent(CloudEvent{ID: long, Source: "/s", Type: strings.Repeat("t", 1000)})
	if len(rec.ce.ID) > maxAttributeBytes || len(rec.ce.Type) != maxAttributeBytes || rec.ce.Source != "/s" {
		t.Errorf("got id of %d bytes, type of %d, source %q; want each at most %d bytes", len(rec.ce.ID), len(rec.ce.Type), rec.ce.Source, maxAttributeBytes)
	}
	if !utf8.ValidString(rec.ce.ID) {
		t.Errorf("the cut id is not valid UTF-8")
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := newLimiter(time.Second)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		key        string
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{"503 timeout", 0, true, 0},
		{"503 timeout", 100 * time.Millisecond, false, 0},
		{"503 timeout", 900 * time.Millisecond, false, 0},
		{"500 internal", 900 * time.Millisecond, true, 0}, // another key has its own second
		{"503 timeout", time.Second, true, 2},
		{"503 timeout", 1500 * time.Millisecond, false, 0},
		{"503 timeout", 5 * time.Second, true, 1},
		{"503 timeout", 7 * time.Second, true, 0},
	}
	for i, s := range steps {
		ok, suppressed := l.allow(s.key, t0.Add(s.at))
		if ok != s.ok || suppressed != s.suppressed {
			t.Errorf("step %d (%s at %s): got %v, %d; want %v, %d", i, s.key, s.at, ok, suppressed, s.ok, s.suppressed)
		}
	}
}

// TestRequestLogLines: a rejection is logged at debug, a 503 at warn and a
// 500 at error, with the fields an operator searches by, each status and
// reason at most once a second, the next line counting those held back.
func TestRequestLogLines(t *testing.T) {
	t.Parallel()
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			tel := serve(t, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: level})), Sources{})
			clock := time.Unix(1000, 0)
			tel.now = func() time.Time { return clock }
			status := 0
			mux := http.NewServeMux()
			mux.HandleFunc("POST /track", func(w http.ResponseWriter, r *http.Request) {
				rec := RequestFrom(r.Context())
				rec.SetFormat("ce_binary")
				rec.SetCloudEvent(CloudEvent{ID: "42", Source: "https://shop.example/web", Type: "dev.tracker.impression"})
				switch status {
				case http.StatusServiceUnavailable:
					rec.Failed("timeout", 1, errors.New("gocql: no response received from cassandra within timeout period"))
				case http.StatusInternalServerError:
					rec.Failed("internal", 1, errors.New("unconfigured table events_by_id"))
				case http.StatusBadRequest:
					rec.Rejected("invalid_target", 1)
				}
				w.WriteHeader(status)
			})
			h := tel.Handler(routed(mux))
			post := func(s, n int) {
				status = s
				for range n {
					req := httptest.NewRequest(http.MethodPost, "/track", nil)
					req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
					h.ServeHTTP(httptest.NewRecorder(), req)
				}
			}
			post(http.StatusServiceUnavailable, 100)
			post(http.StatusBadRequest, 100)
			post(http.StatusInternalServerError, 3)
			clock = clock.Add(time.Second)
			post(http.StatusServiceUnavailable, 1)

			lines := requestLines(t, &logs)
			want := []map[string]any{
				{"level": "WARN", "msg": "request failed", "status": 503.0, "reason": "timeout", "suppressed": nil,
					"error": "gocql: no response received from cassandra within timeout period"},
				{"level": "DEBUG", "msg": "request rejected", "status": 400.0, "reason": "invalid_target", "error": nil},
				{"level": "ERROR", "msg": "request failed", "status": 500.0, "reason": "internal", "error": "unconfigured table events_by_id"},
				{"level": "WARN", "msg": "request failed", "status": 503.0, "reason": "timeout", "suppressed": 99.0},
			}
			if level > slog.LevelDebug {
				want = slices.Delete(want, 1, 2)
			}
			if len(lines) != len(want) {
				t.Fatalf("got %d request lines, want %d:\n%s", len(lines), len(want), logs.String())
			}
			for i, w := range want {
				for k, v := range w {
					if lines[i][k] != v {
						t.Errorf("line %d: %s = %v, want %v", i, k, lines[i][k], v)
					}
				}
				for k, v := range map[string]any{"route": "/track", "method": "POST", "format": "ce_binary", "events": 1.0, "ce.id": "42",
					"ce.source": "https://shop.example/web", "ce.type": "dev.tracker.impression", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"} {
					if lines[i][k] != v {
						t.Errorf("line %d: %s = %v, want %v", i, k, lines[i][k], v)
					}
				}
				if _, ok := lines[i]["duration_ms"].(float64); !ok {
					t.Errorf("line %d: duration_ms %v, want a number", i, lines[i]["duration_ms"])
				}
				if _, ok := lines[i]["span_id"]; ok {
					t.Errorf("line %d: span_id %v logged while tracing is off: the caller's span is not this request's", i, lines[i]["span_id"])
				}
			}
		})
	}
}

// requestLines are the log lines about requests, decoded.
func requestLines(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(l, `"msg":"request`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestRouteRuntimeLogs: func-go's zerolog lines come out as lines of the
// function's own logger, at its level.
func TestRouteRuntimeLogs(t *testing.T) {
	// zerolog's logger and level are the process's: not parallel.
	var logs bytes.Buffer
	RouteRuntimeLogs(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})), slog.LevelInfo)
	t.Cleanup(func() { RouteRuntimeLogs(discard, slog.LevelInfo) })
	zlog.Debug().Msg("function not yet ready")
	zlog.Info().Str("address", "[::]:8080").Msg("Function implements Start")
	zlog.Error().Err(errors.New("boom")).Msg("function error")
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (no debug):\n%s", len(lines), logs.String())
	}
	var info, failure map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &info); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &failure); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"level": "INFO", "msg": "Function implements Start", "address": "[::]:8080", "component": "func-go"} {
		if info[k] != v {
			t.Errorf("info line %s: got %v, want %v", k, info[k], v)
		}
	}
	for k, v := range map[string]any{"level": "ERROR", "msg": "function error", "error": "boom"} {
		if failure[k] != v {
			t.Errorf("error line %s: got %v, want %v", k, failure[k], v)
		}
	}
	if _, ok := info["time"].(string); !ok {
		t.Errorf("time: got %v, want slog's time", info["time"])
	}
}

// TestHeldRuntimeLogs: func-go's lines written before Start has read
// LOG_FORMAT come out in that format once it has, and its debug lines not
// at all.
func TestHeldRuntimeLogs(t *testing.T) {
	// zerolog's logger and level are the process's: not parallel.
	t.Cleanup(func() { RouteRuntimeLogs(discard, slog.LevelInfo) })
	HoldRuntimeLogs()
	runtimeLog.Store(nil) // as in a process where nothing was routed yet
	zlog.Info().Msg("Function implements Start")
	zlog.Debug().Msg("function starting")
	var logs bytes.Buffer
	RouteRuntimeLogs(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), slog.LevelDebug)
	zlog.Debug().Msg("function not yet ready")
	got := logs.String()
	for _, want := range []string{`level=INFO msg="Function implements Start" component=func-go`, `level=DEBUG msg="function not yet ready" component=func-go`} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "function starting") {
		t.Errorf("a debug line written while held came out:\n%s", got)
	}
}

// TestSpans: the server span's parent is the request's traceparent, else
// the CloudEvent's; links come from the CloudEvents; each statement of a
// traced request is a client span under it with the database conventions.
func TestSpans(t *testing.T) {
	t.Parallel()
	const (
		httpParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		ceParent   = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		ceOther    = "00-11111111111111111111111111111111-2222222222222222-01"
	)
	tel := serve(t, discard, Sources{})
	spans := withSpans(tel, sdktrace.ParentBased(sdktrace.AlwaysSample()))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /track", func(w http.ResponseWriter, r *http.Request) {
		rec := RequestFrom(r.Context())
		ctx := rec.Trace(r.Context(), r.Header.Get("test-ce-parent"), strings.Fields(r.Header.Get("test-links")))
		start := time.Now()
		tel.Observer().Statement(ctx, store.Statement{Keyspace: "tracking", Table: "events_by_id", Operation: "claim",
			CQL: "INSERT INTO tracking.events_by_id (event_id) VALUES (?) IF NOT EXISTS", Consistency: "local_quorum", Serial: "local_serial",
			Outcome: "ok", Start: start, End: start.Add(time.Millisecond)})
		tel.Observer().Claim(ctx, true)
		w.WriteHeader(http.StatusCreated)
	})
	h := tel.Handler(routed(mux))
	post := func(header map[string]string) {
		req := httptest.NewRequest(http.MethodPost, "/track", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	post(map[string]string{"traceparent": httpParent, "test-ce-parent": ceParent, "test-links": ceParent})
	post(map[string]string{"test-ce-parent": ceParent, "test-links": ceParent})
	post(map[string]string{"test-links": ceParent + " " + ceOther + " not-a-traceparent"})

	got := spans.GetSpans()
	var servers, clients []tracetest.SpanStub
	for _, s := range got {
		switch s.SpanKind {
		case trace.SpanKindServer:
			servers = append(servers, s)
		case trace.SpanKindClient:
			clients = append(clients, s)
		}
	}
	if len(servers) != 3 || len(clients) != 3 {
		t.Fatalf("got %d server and %d client spans, want 3 and 3", len(servers), len(clients))
	}
	want := []struct {
		parent string
		links  []string
	}{
		{"4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7", []string{"0af7651916cd43dd8448eb211c80319c/b7ad6b7169203331"}},
		{"0af7651916cd43dd8448eb211c80319c/b7ad6b7169203331", nil},
		{"", []string{"0af7651916cd43dd8448eb211c80319c/b7ad6b7169203331", "11111111111111111111111111111111/2222222222222222"}},
	}
	for i, s := range servers {
		parent := ""
		if s.Parent.IsValid() {
			parent = s.Parent.TraceID().String() + "/" + s.Parent.SpanID().String()
		}
		var links []string
		for _, l := range s.Links {
			links = append(links, l.SpanContext.TraceID().String()+"/"+l.SpanContext.SpanID().String())
		}
		if parent != want[i].parent || !slices.Equal(links, want[i].links) {
			t.Errorf("server span %d: parent %q links %v; want %q and %v", i, parent, links, want[i].parent, want[i].links)
		}
		if s.Name != "POST /track" {
			t.Errorf("server span %d: name %q, want POST /track", i, s.Name)
		}
		if len(s.Events) != 1 || s.Events[0].Name != "event id claimed" {
			t.Errorf("server span %d: events %v, want the claim", i, s.Events)
		}
		c := clients[i]
		if c.Parent.SpanID() != s.SpanContext.SpanID() || c.SpanContext.TraceID() != s.SpanContext.TraceID() {
			t.Errorf("client span %d is not the child of server span %d", i, i)
		}
		attrs := map[string]string{}
		for _, kv := range c.Attributes {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		for k, v := range map[string]string{
			"db.system.name": "cassandra", "db.namespace": "tracking", "db.collection.name": "events_by_id",
			"db.operation.name": "INSERT", "cassandra.consistency.level": "local_quorum", "tracker.cassandra.lwt": "true",
		} {
			if attrs[k] != v {
				t.Errorf("client span %d: %s = %q, want %q", i, k, attrs[k], v)
			}
		}
		if c.Name != "INSERT IF NOT EXISTS events_by_id" {
			t.Errorf("client span %d: name %q", i, c.Name)
		}
		if d := c.EndTime.Sub(c.StartTime); d != time.Millisecond {
			t.Errorf("client span %d lasts %s, want the statement's 1ms", i, d)
		}
	}
}

// TestNoTracingRecordsNoSpan: without an exporter, no span is made at
// all (TestRequestLogLines shows the log still carries the caller's
// trace id).
func TestNoTracingRecordsNoSpan(t *testing.T) {
	t.Parallel()
	tel := serve(t, discard, Sources{})
	if tel.tracing {
		t.Fatal("tracing is on without an endpoint")
	}
	var span trace.Span
	mux := http.NewServeMux()
	mux.HandleFunc("POST /track", func(w http.ResponseWriter, r *http.Request) {
		span = trace.SpanFromContext(RequestFrom(r.Context()).Trace(r.Context(), "", nil))
		w.WriteHeader(http.StatusCreated)
	})
	req := httptest.NewRequest(http.MethodPost, "/track", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	tel.Handler(routed(mux)).ServeHTTP(httptest.NewRecorder(), req)
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("got a span %v (recording %v), want none", span.SpanContext(), span.IsRecording())
	}
}

func TestNewSampler(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, arg string
		want      string // the sampler's description, or "error"
	}{
		{"always_on", "", "AlwaysOnSampler"},
		{"always_off", "", "AlwaysOffSampler"},
		{"traceidratio", "0.5", "TraceIDRatioBased{0.5}"},
		{"traceidratio", "", "TraceIDRatioBased{1}"},
		{"parentbased_always_on", "", "ParentBased{root:AlwaysOnSampler"},
		{"parentbased_traceidratio", "0.1", "ParentBased{root:TraceIDRatioBased{0.1}"},
		{"parentbased_traceidratio", "1.5", "error"},
		{"parentbased_traceidratio", "half", "error"},
		{"jaeger_remote", "", "error"},
	} {
		s, err := NewSampler(c.name, c.arg)
		switch {
		case c.want == "error":
			if err == nil {
				t.Errorf("NewSampler(%q, %q): got %s, want an error", c.name, c.arg, s.Description())
			}
		case err != nil:
			t.Errorf("NewSampler(%q, %q): %v", c.name, c.arg, err)
		case !strings.HasPrefix(s.Description(), c.want):
			t.Errorf("NewSampler(%q, %q): got %s, want %s", c.name, c.arg, s.Description(), c.want)
		}
	}
}

func TestParseResourceAttributes(t *testing.T) {
	t.Parallel()
	kv, err := ParseResourceAttributes("deployment.environment.name=prod, team=web%20analytics,,")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range kv {
		got = append(got, string(a.Key)+"="+a.Value.AsString())
	}
	if diff := cmp.Diff([]string{"deployment.environment.name=prod", "team=web analytics"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"team", "=x", "team=%zz"} {
		if _, err := ParseResourceAttributes(bad); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}

func TestSignalURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg          Config
		traces, push string
		pullsMetrics bool
	}{
		{Config{TracesExporter: "otlp", MetricsExporters: []string{"prometheus"}, MetricsAddress: ":9464"}, "", "", true},
		{Config{TracesExporter: "otlp", OTLPEndpoint: "http://c:4318", MetricsExporters: []string{"otlp"}}, "http://c:4318/v1/traces", "http://c:4318/v1/metrics", false},
		{Config{TracesExporter: "otlp", OTLPEndpoint: "http://c:4318/", OTLPTracesEndpoint: "http://j:4318/x"}, "http://j:4318/x", "", false},
		{Config{TracesExporter: "none", OTLPEndpoint: "http://c:4318", MetricsExporters: []string{"prometheus", "otlp"}}, "", "http://c:4318/v1/metrics", false},
	} {
		if got := c.cfg.TracesURL(); got != c.traces {
			t.Errorf("%+v: TracesURL %q, want %q", c.cfg, got, c.traces)
		}
		if got := c.cfg.MetricsURL(); got != c.push {
			t.Errorf("%+v: MetricsURL %q, want %q", c.cfg, got, c.push)
		}
		if got := c.cfg.PullMetrics(); got != c.pullsMetrics {
			t.Errorf("%+v: PullMetrics %v, want %v", c.cfg, got, c.pullsMetrics)
		}
	}
}
