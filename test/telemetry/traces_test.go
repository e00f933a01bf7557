package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"tracker/test/internal/harness"
)

// traceparent makes a W3C traceparent of a new trace, sampled.
func traceparent(t *testing.T) (header, traceID, spanID string) {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	traceID, spanID = hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])
	return "00-" + traceID + "-" + spanID + "-01", traceID, spanID
}

// TestTracesReachJaeger sends three requests that each carry a trace
// context in a different way, and reads each trace back from a real
// Jaeger: the server span with the right parent, one client span per
// Cassandra write under it, and the CloudEvents' links.
func TestTracesReachJaeger(t *testing.T) {
	t.Parallel()
	fn, ks := startFunction(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const target = "https://shop.example/traced"
	run := time.Now().UnixNano()

	t.Run("traceparent header", func(t *testing.T) {
		header, traceID, parentID := traceparent(t)
		body := fmt.Sprintf(`{"id":"tr-%d","timestamp":%q,"username":"traced","target":%q,"description":"VIEW"}`,
			run, time.Now().UTC().Format(time.RFC3339), target)
		req := plainRequest(t, fn.URL, "application/json", body)
		req.Header.Set("traceparent", header)
		mustStore(t, req)
		// The server span and the three INSERTs.
		spans := waitTrace(ctx, t, traceID, 4)
		server := checkServer(t, spans, parentID)
		checkWrites(t, spans, server, ks, map[string]string{
			"INSERT events_by_id": "insert", "INSERT events_by_user": "insert", "INSERT events_by_target": "insert",
		})
		if got := server.Attributes["tracker.events.format"]; got != "plain" {
			t.Errorf("tracker.events.format: got %q, want plain", got)
		}
	})

	t.Run("ce-traceparent only", func(t *testing.T) {
		header, traceID, parentID := traceparent(t)
		e := cloudEvent(t, fmt.Sprintf("ce-tr-%d", run), target)
		e.SetTime(time.Time{}) // no time: the id is claimed with a lightweight transaction
		e.SetExtension("traceparent", header)
		req := ceRequest(t, fn.URL, "binary", e)
		if req.Header.Get("ce-traceparent") != header || req.Header.Get("traceparent") != "" {
			t.Fatalf("the request must carry the trace context in ce-traceparent only: %v", req.Header)
		}
		mustStore(t, req)
		spans := waitTrace(ctx, t, traceID, 4)
		server := checkServer(t, spans, parentID)
		checkWrites(t, spans, server, ks, map[string]string{
			"INSERT IF NOT EXISTS events_by_id": "claim", "INSERT events_by_user": "insert", "INSERT events_by_target": "insert",
		})
		for k, v := range map[string]string{
			"cloudevents.event_id": e.ID(), "cloudevents.event_source": e.Source(), "cloudevents.event_type": e.Type(),
		} {
			if server.Attributes[k] != v {
				t.Errorf("server span %s: got %q, want %q", k, server.Attributes[k], v)
			}
		}
		if !slices.ContainsFunc(server.Events, func(ev harness.SpanEvent) bool {
			return ev.Name == "event id claimed" && ev.Attributes["tracker.claim.outcome"] == "new"
		}) {
			t.Errorf("server span events %v: want the new claim", server.Events)
		}
	})

	t.Run("CloudEvents batch", func(t *testing.T) {
		header, traceID, parentID := traceparent(t)
		var events []cloudevents.Event
		var links []string
		for i := range 3 {
			tp, linkTrace, linkSpan := traceparent(t)
			// One user, a target each: the events_by_user rows go in one
			// batch statement, the others one statement a row.
			e := cloudEvent(t, fmt.Sprintf("batch-tr-%d-%d", run, i), fmt.Sprintf("%s/%d", target, i))
			e.SetExtension("traceparent", tp)
			events = append(events, e)
			links = append(links, linkTrace+"/"+linkSpan)
		}
		req := ceRequest(t, fn.URL, "batch", events...)
		req.Header.Set("traceparent", header)
		mustStore(t, req)
		spans := waitTrace(ctx, t, traceID, 1+3+1+3)
		server := checkServer(t, spans, parentID)
		var got []string
		for _, l := range server.Links {
			got = append(got, l.TraceID+"/"+l.SpanID)
		}
		slices.Sort(got)
		slices.Sort(links)
		if !slices.Equal(got, links) {
			t.Errorf("server span links: got %v, want the events' traceparents %v", got, links)
		}
		writes := map[string]int{}
		for _, s := range spans {
			if s.Kind == "client" {
				writes[s.Name]++
				if s.ParentSpanID != server.SpanID {
					t.Errorf("client span %s is not a child of the server span", s.Name)
				}
				if s.Name == "BATCH INSERT events_by_user" && s.Attributes["db.operation.batch.size"] != "3" {
					t.Errorf("span %s: db.operation.batch.size %q, want 3", s.Name, s.Attributes["db.operation.batch.size"])
				}
			}
		}
		want := map[string]int{"INSERT events_by_id": 3, "BATCH INSERT events_by_user": 1, "INSERT events_by_target": 3}
		if !maps.Equal(writes, want) {
			t.Errorf("client spans by name: got %v, want %v (three events: a statement a row, but one batch for the user's)", writes, want)
		}
	})
}

func mustStore(t *testing.T, req *http.Request) {
	t.Helper()
	s := newSent()
	s.post(t, req, "any", http.StatusCreated, "", 0)
}

// waitTrace polls Jaeger until the trace has n spans.
func waitTrace(ctx context.Context, t *testing.T, traceID string, n int) []harness.Span {
	t.Helper()
	spans, err := jaeger.WaitTrace(ctx, traceID, n)
	if err != nil {
		t.Fatalf("trace %s: %v\n%s", traceID, err, jaeger.LogTail(20))
	}
	if len(spans) != n {
		t.Fatalf("trace %s: got %d spans, want %d: %v", traceID, len(spans), n, names(spans))
	}
	return spans
}

func names(spans []harness.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Kind+" "+s.Name)
	}
	return out
}

// checkServer finds the one server span of spans and checks its parent
// and its HTTP attributes.
func checkServer(t *testing.T, spans []harness.Span, parentID string) harness.Span {
	t.Helper()
	var servers []harness.Span
	for _, s := range spans {
		if s.Kind == "server" {
			servers = append(servers, s)
		}
	}
	if len(servers) != 1 {
		t.Fatalf("got %d server spans, want 1: %v", len(servers), names(spans))
	}
	s := servers[0]
	if s.ParentSpanID != parentID {
		t.Errorf("server span parent: got %q, want %q", s.ParentSpanID, parentID)
	}
	for k, v := range map[string]string{
		"http.request.method": "POST", "http.route": "/track", "http.response.status_code": "201",
	} {
		if s.Attributes[k] != v {
			t.Errorf("server span %s: got %q, want %q", k, s.Attributes[k], v)
		}
	}
	if s.Name != "POST /track" || !strings.HasPrefix(s.Service, "tracker-") {
		t.Errorf("server span: name %q service %q, want POST /track of tracker-...", s.Name, s.Service)
	}
	return s
}

// checkWrites checks that spans hold exactly the client spans of want
// (name to operation), each a child of server with the database
// conventions, and within the server span's time.
func checkWrites(t *testing.T, spans []harness.Span, server harness.Span, keyspace string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, s := range spans {
		if s.Kind != "client" {
			continue
		}
		got[s.Name] = s.Attributes["db.operation.name"]
		if s.ParentSpanID != server.SpanID {
			t.Errorf("client span %s: parent %q, want the server span %q", s.Name, s.ParentSpanID, server.SpanID)
		}
		for k, v := range map[string]string{
			"db.system.name": "cassandra", "db.namespace": keyspace, "cassandra.consistency.level": "one", "server.address": "127.0.0.1",
		} {
			if s.Attributes[k] != v {
				t.Errorf("client span %s: %s = %q, want %q", s.Name, k, s.Attributes[k], v)
			}
		}
		if s.Start.Before(server.Start) || s.Start.Add(s.Duration).After(server.Start.Add(server.Duration)) {
			t.Errorf("client span %s (%s + %s) is not within the server span (%s + %s)", s.Name, s.Start, s.Duration, server.Start, server.Duration)
		}
		if want[s.Name] == "claim" && s.Attributes["tracker.cassandra.lwt"] != "true" {
			t.Errorf("claim span %s: tracker.cassandra.lwt %q, want true", s.Name, s.Attributes["tracker.cassandra.lwt"])
		}
	}
	if len(got) != len(want) {
		t.Errorf("client spans: got %v, want %v", got, want)
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("no client span %q; got %v", name, got)
		}
	}
}
