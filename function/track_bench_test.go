package function

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"tracker/function/event"
	"tracker/function/store"
	"tracker/function/telemetry"
)

// discardStore accepts every event at once, so that the benchmarks
// measure the request path alone: routing, decoding and validation. (The
// rows of an event are the store's: store.BenchmarkRowsOf.)
type discardStore struct{}

func (discardStore) Save(context.Context, []event.Event) error { return nil }

func (discardStore) Ready() bool { return true }

func benchPlainEvent(i int) string {
	return fmt.Sprintf(`{"id":"bench-%d","timestamp":"2026-05-04T12:00:00.123Z","username":"user-%d","target":"https://example.com/page/%d","description":"VIEW"}`, i, i%1000, i%100)
}

func benchStructuredEvent(i int) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":"%d","source":"https://bench.example/web","type":"dev.tracker.impression","time":"2026-05-04T12:00:00.123Z","datacontenttype":"application/json","data":{"username":"user-%d","target":"https://example.com/page/%d","description":"VIEW"}}`, i, i%1000, i%100)
}

func benchArray(n int, one func(int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = one(i)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// benchCase is a request of one input form, and its events.
type benchCase struct {
	name   string
	header map[string]string
	body   string
	events int
}

var benchCases = []benchCase{
	{"plain", map[string]string{"Content-Type": "application/json"}, benchPlainEvent(1), 1},
	{"plain-batch-100", map[string]string{"Content-Type": "application/json"}, benchArray(100, benchPlainEvent), 100},
	{"ce-binary", map[string]string{
		"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "https://bench.example/web",
		"Ce-Type": "dev.tracker.impression", "Ce-Time": "2026-05-04T12:00:00.123Z",
	}, `{"username":"user-1","target":"https://example.com/page/1","description":"VIEW"}`, 1},
	{"ce-structured", map[string]string{"Content-Type": "application/cloudevents+json"}, benchStructuredEvent(1), 1},
	{"ce-batch-100", map[string]string{"Content-Type": "application/cloudevents-batch+json"}, benchArray(100, benchStructuredEvent), 100},
}

var benchConfig = Config{TrackMaxBodyBytes: 1 << 20, TrackMaxBatchEvents: 500, TrackMaxInflight: 2000, CassandraTimeout: time.Second}

func benchHandler(st Store) *handler {
	return &handler{cfg: benchConfig, store: st, now: func() time.Time { return time.Date(2026, 5, 4, 12, 30, 0, 0, time.UTC) }}
}

// serveLoop serves c's request to api in b's loop; every answer must be
// a 201.
func serveLoop(b *testing.B, api http.Handler, c benchCase) {
	body := []byte(c.body)
	req, err := http.NewRequest(http.MethodPost, "http://localhost/track", nil)
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range c.header {
		req.Header[k] = []string{v}
	}
	reader := bytes.NewReader(body)
	// A ResponseWriter that keeps only the status, so that the
	// benchmarks do not count a recorder's allocations.
	w := &capturedAnswer{header: http.Header{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		reader.Reset(body)
		req.Body = io.NopCloser(reader)
		clear(w.header)
		api.ServeHTTP(w, req)
		if w.status != http.StatusCreated {
			b.Fatalf("status %d, want 201", w.status)
		}
	}
}

// BenchmarkTrack serves POST /track for each input form with a store that
// accepts everything. Besides ns/op and allocs/op (per request) it reports
// ns/event and allocs/event, which compare across batch sizes.
func BenchmarkTrack(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			routes := benchHandler(discardStore{}).routes()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			serveLoop(b, routes, c)
			runtime.ReadMemStats(&after)
			events := float64(b.N * c.events)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/events, "allocs/event")
		})
	}
}

// observingStore accepts every event and tells its observer what the real
// store would: per event, three statements and their writers' waits.
type observingStore struct{ obs store.Observer }

func (s observingStore) Save(ctx context.Context, events []event.Event) error {
	for range events {
		for _, table := range benchTables {
			start := time.Now()
			s.obs.WriterWait(time.Microsecond)
			s.obs.Statement(ctx, store.Statement{Keyspace: "tracking", Table: table[0], Operation: "insert",
				CQL: table[1], Consistency: "local_quorum", Outcome: "ok", Start: start, End: start.Add(time.Millisecond)})
		}
	}
	return nil
}

// benchTables are the tables an event is written to, and their INSERTs.
var benchTables = [][2]string{
	{"events_by_id", "INSERT INTO tracking.events_by_id (event_id) VALUES (?)"},
	{"events_by_user", "INSERT INTO tracking.events_by_user (event_id) VALUES (?)"},
	{"events_by_target", "INSERT INTO tracking.events_by_target (event_id) VALUES (?)"},
}

func (observingStore) Ready() bool { return true }

// BenchmarkTrackTelemetry is BenchmarkTrack's plain and binary CloudEvent
// requests with telemetry off, with metrics (the default), and with every
// request traced to an OTLP receiver that accepts everything: what the
// telemetry costs per request, with the store's observer calls included.
func BenchmarkTrackTelemetry(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	variants := []struct {
		name string
		cfg  *telemetry.Config
	}{
		{"off", nil},
		{"metrics", &telemetry.Config{MetricsAddress: "127.0.0.1:0", MetricsExporters: []string{"prometheus"}, TracesExporter: "none"}},
		{"tracing", &telemetry.Config{MetricsAddress: "127.0.0.1:0", MetricsExporters: []string{"prometheus"}, TracesExporter: "otlp",
			OTLPTracesEndpoint: sink.URL + "/v1/traces", Sampler: "always_on"}},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range benchCases {
		if c.name != "plain" && c.name != "ce-binary" {
			continue
		}
		for _, v := range variants {
			b.Run(c.name+"/"+v.name, func(b *testing.B) {
				if v.cfg == nil {
					serveLoop(b, benchHandler(discardStore{}).routes(), c)
					return
				}
				tel, err := telemetry.New(*v.cfg, log, telemetry.Sources{})
				if err != nil {
					b.Fatal(err)
				}
				defer tel.Shutdown(context.Background())
				serveLoop(b, tel.Handler(benchHandler(observingStore{tel.Observer()}).routes()), c)
			})
		}
	}
}
