package function

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/go-cmp/cmp"

	"tracker/function/event"
	"tracker/function/internal/metricstest"
	"tracker/function/store"
	"tracker/function/telemetry"
)

// meteredAPI is the API behind its telemetry middleware, as Start wires
// it, with /metrics served on a free loopback port.
func meteredAPI(t *testing.T, st Store, cfg Config) (http.Handler, *telemetry.Telemetry) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &handler{cfg: cfg, store: st, now: func() time.Time { return testNow }}
	tel, err := telemetry.New(telemetry.Config{MetricsAddress: "127.0.0.1:0", MetricsExporters: []string{"prometheus"}, TracesExporter: "none"},
		log, telemetry.Sources{EventsInFlight: h.inflight.Load, EventsInFlightLimit: cfg.TrackMaxInflight})
	if err != nil {
		t.Fatal(err)
	}
	if err := tel.ServeMetrics(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel.Handler(h.routes()), tel
}

const ceBatchTwoBad = `[
 {"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"username":"u","target":"https://e.com/","description":"VIEW"}},
 {"specversion":"1.0","id":"2","source":"/s","type":"t","data":{"username":"u","target":"nope","description":"VIEW"}},
 {"specversion":"1.0","id":"3","source":"/s","type":"t","data":{"username":"u","target":"https://e.com/","description":"HOVER"}}]`

// TestEventsAreCountedByOutcome sends each kind of request through the
// metered API and reads the counters back from /metrics: every event is
// received once and ends stored, rejected (by reason) or failed (by
// reason), in its format.
func TestEventsAreCountedByOutcome(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.TrackCORSOrigins = []string{"https://shop.example"}
	st := &fakeStore{}
	api, tel := meteredAPI(t, st, cfg)
	send := func(contentType, body string, header ...string) {
		t.Helper()
		post(t, api, contentType, body, header...)
	}

	send("application/json", validJSON)                                                            // plain: 1 stored
	send("application/json", "["+validJSON+","+validJSON+"]")                                      // plain_batch: 2 stored
	send("application/json", `[`+validJSON+`,{"username":"u","target":"x","description":"VIEW"}]`) // plain_batch: 1 invalid_target, 1 in_invalid_batch
	send("application/json", `{"username":"u"`)                                                    // plain: invalid_json
	send("application/json", batchOf(6))                                                           // plain_batch: 6 too_large (TRACK_MAX_BATCH_EVENTS is 5)
	send("application/xml", "<event/>")                                                            // unknown: unsupported_media_type
	send("application/json", validJSON, "Origin", "https://evil.example")                          // unknown: origin_not_allowed
	send("application/json", strings.Repeat(" ", 5000))                                            // unknown: too_large
	send("application/cloudevents-batch+json", ceBatchTwoBad)                                      // ce_batch: 1 invalid_target, 1 invalid_description, 1 in_invalid_batch
	send("application/json", `{"username":"u","target":"https://e.com/","description":"VIEW"}`,    // ce_binary: 1 stored
		"ce-specversion", "1.0", "ce-id", "b1", "ce-source", "/s", "ce-type", "t")
	st.err = fmt.Errorf("%w: %w", store.ErrUnavailable, context.DeadlineExceeded)
	send("application/json", validJSON) // plain: failed timeout
	st.err = fmt.Errorf("%w: %w", store.ErrUnavailable, gocql.ErrNoConnections)
	send("application/cloudevents+json", `{"specversion":"1.0","id":"s1","source":"/s","type":"t","data":{"username":"u","target":"https://e.com/","description":"VIEW"}}`) // ce_structured: failed unavailable
	st.err = fmt.Errorf("refused: %w", gocql.ErrNotFound)
	send("application/json", validJSON) // plain: failed internal

	fams := metricstest.Scrape(t, tel.MetricsAddr())
	for _, c := range []struct {
		metric string
		labels []string
		want   float64
	}{
		{"tracker_events_stored_total", []string{"format", "plain"}, 1},
		{"tracker_events_stored_total", []string{"format", "plain_batch"}, 2},
		{"tracker_events_stored_total", []string{"format", "ce_binary"}, 1},
		{"tracker_events_rejected_total", []string{"format", "plain_batch", "reason", "invalid_target"}, 1},
		{"tracker_events_rejected_total", []string{"format", "plain_batch", "reason", "in_invalid_batch"}, 1},
		{"tracker_events_rejected_total", []string{"format", "plain_batch", "reason", "too_large"}, 6},
		{"tracker_events_rejected_total", []string{"format", "plain", "reason", "invalid_json"}, 1},
		{"tracker_events_rejected_total", []string{"format", "unknown", "reason", "unsupported_media_type"}, 1},
		{"tracker_events_rejected_total", []string{"format", "unknown", "reason", "origin_not_allowed"}, 1},
		{"tracker_events_rejected_total", []string{"format", "unknown", "reason", "too_large"}, 1},
		{"tracker_events_rejected_total", []string{"format", "ce_batch", "reason", "invalid_target"}, 1},
		{"tracker_events_rejected_total", []string{"format", "ce_batch", "reason", "invalid_description"}, 1},
		{"tracker_events_rejected_total", []string{"format", "ce_batch", "reason", "in_invalid_batch"}, 1},
		{"tracker_events_failed_total", []string{"format", "plain", "reason", "timeout"}, 1},
		{"tracker_events_failed_total", []string{"format", "ce_structured", "reason", "unavailable"}, 1},
		{"tracker_events_failed_total", []string{"format", "plain", "reason", "internal"}, 1},
		{"tracker_http_requests_total", []string{"route", "/track", "code", "201"}, 3},
		{"tracker_http_requests_total", []string{"route", "/track", "code", "400"}, 3},
		{"tracker_http_requests_total", []string{"route", "/track", "code", "413"}, 2},
		{"tracker_http_requests_total", []string{"route", "/track", "code", "503"}, 2},
		{"tracker_http_requests_total", []string{"route", "/track", "code", "500"}, 1},
		{"tracker_events_in_flight", nil, 0},
		{"tracker_events_in_flight_limit", nil, float64(cfg.TrackMaxInflight)},
	} {
		if got := fams.Value(c.metric, c.labels...); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.metric, c.labels, got, c.want)
		}
	}
	for _, format := range telemetry.Formats {
		received := fams.Value("tracker_events_received_total", "format", format)
		outcomes := fams.Value("tracker_events_stored_total", "format", format) +
			fams.Value("tracker_events_rejected_total", "format", format) +
			fams.Value("tracker_events_failed_total", "format", format)
		if received != outcomes {
			t.Errorf("format %s: received %v, stored + rejected + failed %v", format, received, outcomes)
		}
	}
	if got := fams.Value("tracker_events_received_total"); got != 22 {
		t.Errorf("received in all: got %v, want 22", got)
	}
}

// TestOverloadIsCounted: a request refused for TRACK_MAX_INFLIGHT fails as
// overloaded.
func TestOverloadIsCounted(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.TrackMaxInflight = cfg.TrackMaxBatchEvents
	st := &fakeStore{block: make(chan struct{})}
	api, tel := meteredAPI(t, st, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		post(t, api, "application/json", batchOf(cfg.TrackMaxBatchEvents))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for metricstest.Scrape(t, tel.MetricsAddr()).Value("tracker_events_in_flight") != float64(cfg.TrackMaxBatchEvents) {
		if time.Now().After(deadline) {
			t.Fatal("the first batch is not in flight after 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	readProblem(t, post(t, api, "application/json", validJSON), http.StatusServiceUnavailable)
	close(st.block)
	<-done
	fams := metricstest.Scrape(t, tel.MetricsAddr())
	if got := fams.Value("tracker_events_failed_total", "format", "plain", "reason", "overloaded"); got != 1 {
		t.Errorf("failed overloaded: got %v, want 1", got)
	}
	if got := fams.Value("tracker_events_stored_total", "format", "plain_batch"); got != float64(cfg.TrackMaxBatchEvents) {
		t.Errorf("stored: got %v, want %d", got, cfg.TrackMaxBatchEvents)
	}
}

// batchOf is a plain batch of n valid events.
func batchOf(n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat(validJSON+",", n), ",") + "]"
}

func TestRejectedReasons(t *testing.T) {
	t.Parallel()
	at := func(i int, reason string) event.FieldError { return event.FieldError{Index: &i, Reason: reason} }
	whole := func(reason string) event.FieldError { return event.FieldError{Reason: reason} }
	for _, c := range []struct {
		name string
		err  *event.InvalidError
		want map[string]int
	}{
		{"a single event, two problems", &event.InvalidError{Errors: []event.FieldError{whole("missing_field"), whole("invalid_description")}},
			map[string]int{"missing_field": 1}},
		{"a batch, one bad of three", &event.InvalidError{Events: 3, Errors: []event.FieldError{at(1, "invalid_target"), at(1, "invalid_description")}},
			map[string]int{"invalid_target": 1, "in_invalid_batch": 2}},
		{"a batch, all bad", &event.InvalidError{Events: 2, Errors: []event.FieldError{at(0, "invalid_id"), at(1, "invalid_id")}},
			map[string]int{"invalid_id": 2}},
		{"an empty batch", &event.InvalidError{Errors: []event.FieldError{whole("empty_batch")}}, map[string]int{"empty_batch": 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, rejectedReasons(c.err)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
