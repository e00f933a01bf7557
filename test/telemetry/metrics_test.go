package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"tracker/test/internal/harness"
)

// sent tallies what a test sent and what the function answered.
type sent struct {
	stored   map[string]int // acknowledged events by format
	ids      []string       // the ids of the acknowledged events
	rejected map[string]int // rejected events by reason
}

func newSent() *sent { return &sent{stored: map[string]int{}, rejected: map[string]int{}} }

// post sends req and records its answer: a 201's ids under format, or
// the rejection of n events under reason. Any other answer fails the test.
func (s *sent) post(t *testing.T, req *http.Request, format string, wantStatus int, reason string, n int) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s request: got %d %s, want %d", format, resp.StatusCode, body, wantStatus)
	}
	if wantStatus != http.StatusCreated {
		s.rejected[reason] += n
		return
	}
	var out struct{ IDs []string }
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	s.stored[format] += len(out.IDs)
	s.ids = append(s.ids, out.IDs...)
}

func plainRequest(t *testing.T, url, contentType, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/track", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return req
}

// plainEvent is an event object of the plain form with an id and a time.
func plainEvent(id, target string) string {
	return fmt.Sprintf(`{"id":%q,"timestamp":%q,"username":"metrics","target":%q,"description":"VIEW"}`,
		id, time.Now().UTC().Format(time.RFC3339), target)
}

func cloudEvent(t *testing.T, id, target string) cloudevents.Event {
	t.Helper()
	e, err := harness.NewCloudEvent(id, "https://shop.example/metrics", "metrics", target, "CLICK", time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ceRequest(t *testing.T, url, mode string, events ...cloudevents.Event) *http.Request {
	t.Helper()
	req, err := harness.CloudEventRequest(url, mode, events...)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestPrometheusSeesWhatWasStored sends every input form, valid and not,
// and then asks a real Prometheus, which scrapes the function every
// second, what the function counted: the events stored must be the
// events acknowledged (and found in Cassandra), the rejections by reason
// what the test caused, and received the sum of the outcomes.
func TestPrometheusSeesWhatWasStored(t *testing.T) {
	t.Parallel()
	fn, ks := startFunction(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prom, err := harness.StartPrometheus(ctx, t.TempDir(), time.Second, fn.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()
	if err := prom.WaitScraped(ctx, fn.MetricsAddr); err != nil {
		t.Fatalf("%v\n%s", err, prom.LogTail(20))
	}

	s := newSent()
	run := time.Now().UnixNano()
	id := func(i int) string { return fmt.Sprintf("m-%d-%d", run, i) }
	const target = "https://shop.example/metrics"
	for i := range 5 {
		s.post(t, plainRequest(t, fn.URL, "application/json", plainEvent(id(i), target)), "plain", 201, "", 0)
	}
	// The batches' events share their user, so their events_by_user rows
	// are one partition, written as one batch statement per request; each
	// has a target of its own, so their events_by_target rows are not.
	var batch []string
	for i := range 10 {
		batch = append(batch, plainEvent(id(100+i), target+"/"+strconv.Itoa(i)))
	}
	s.post(t, plainRequest(t, fn.URL, "application/json", "["+strings.Join(batch, ",")+"]"), "plain_batch", 201, "", 0)
	for i := range 3 {
		s.post(t, ceRequest(t, fn.URL, "binary", cloudEvent(t, id(200+i), target)), "ce_binary", 201, "", 0)
	}
	for i := range 2 {
		s.post(t, ceRequest(t, fn.URL, "structured", cloudEvent(t, id(300+i), target)), "ce_structured", 201, "", 0)
	}
	var ces []cloudevents.Event
	for i := range 4 {
		ces = append(ces, cloudEvent(t, id(400+i), target+"/"+strconv.Itoa(i)))
	}
	s.post(t, ceRequest(t, fn.URL, "batch", ces...), "ce_batch", 201, "", 0)
	// An id without a timestamp takes the claim; sent twice, it is
	// stored once and acknowledged twice.
	untimed := fmt.Sprintf(`{"id":%q,"username":"metrics","target":%q,"description":"VIEW"}`, id(500), target)
	s.post(t, plainRequest(t, fn.URL, "text/plain", untimed), "plain", 201, "", 0)
	s.post(t, plainRequest(t, fn.URL, "text/plain", untimed), "plain", 201, "", 0)

	for range 3 {
		s.post(t, plainRequest(t, fn.URL, "application/json", `{"username":"m","target":"not a url","description":"VIEW"}`), "plain", 400, "invalid_target", 1)
	}
	bad := []string{plainEvent(id(600), target), `{"username":"m","target":"https://e.com/","description":"HOVER"}`, plainEvent(id(601), target)}
	s.post(t, plainRequest(t, fn.URL, "application/json", "["+strings.Join(bad, ",")+"]"), "plain_batch", 400, "invalid_description", 1)
	s.rejected["in_invalid_batch"] += 2
	for range 2 {
		s.post(t, plainRequest(t, fn.URL, "application/xml", "<event/>"), "unknown", 415, "unsupported_media_type", 1)
	}
	noData := ceRequest(t, fn.URL, "binary", cloudEvent(t, id(700), target))
	noData.Body, noData.ContentLength = http.NoBody, 0
	s.post(t, noData, "ce_binary", 400, "missing_field", 1)

	// Every acknowledged event is in Cassandra.
	rows, err := harness.Tables{Session: suite.Session, Keyspace: ks}.ByID(ctx, s.ids...)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range s.ids {
		if _, ok := rows[id]; !ok {
			t.Errorf("event %s was acknowledged but is not in events_by_id", id)
		}
	}

	storedTotal := 0
	for _, n := range s.stored {
		storedTotal += n
	}
	// Every stored event wrote three rows, but the untimed one's first
	// delivery wrote its events_by_id row with the claim (its second
	// found the row and wrote it again, the same), and the events_by_user
	// rows of the two batches (10 and 4 events of one user) went in one
	// batch statement each.
	wantInserts := 3*storedTotal - 1 - 10 - 4
	want := map[string]map[string]float64{
		`sum by (format) (tracker_events_stored_total)`:                                                     floats(s.stored),
		`sum by (reason) (tracker_events_rejected_total)`:                                                   floats(s.rejected),
		`sum by (outcome) (tracker_cassandra_claims_total)`:                                                 {"new": 1, "existing": 1},
		`sum(tracker_cassandra_request_duration_seconds_count{operation="insert",outcome="ok"})`:            {"": float64(wantInserts)},
		`sum by (table) (tracker_cassandra_request_duration_seconds_count{operation="batch",outcome="ok"})`: {"events_by_user": 2},
		`sum(tracker_events_failed_total)`:                                                                  {},
		`tracker_store_ready`:                                                                               {"": 1},
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var diffs []string
		for expr, w := range want {
			got, err := queryByLabel(ctx, prom, expr)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(w, got); d != "" {
				diffs = append(diffs, fmt.Sprintf("%s (-want +got):\n%s", expr, d))
			}
		}
		if len(diffs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus does not see what the function did after 60s:\n%s", strings.Join(diffs, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}

	// received = stored + rejected + failed, per format, as Prometheus
	// computes it.
	mismatch, err := queryByLabel(ctx, prom, `sum by (format) (tracker_events_received_total)
		!= (sum by (format) (tracker_events_stored_total or tracker_events_received_total * 0)
		  + sum by (format) (tracker_events_rejected_total or tracker_events_received_total * 0)
		  + sum by (format) (tracker_events_failed_total or tracker_events_received_total * 0))`)
	if err != nil {
		t.Fatal(err)
	}
	if len(mismatch) > 0 {
		t.Errorf("received != stored + rejected + failed for formats %v", mismatch)
	}
	received, err := queryByLabel(ctx, prom, `sum(tracker_events_received_total)`)
	if err != nil {
		t.Fatal(err)
	}
	rejectedTotal := 0
	for _, n := range s.rejected {
		rejectedTotal += n
	}
	if got := received[""]; got != float64(storedTotal+rejectedTotal) {
		t.Errorf("received: got %v, want %d stored + %d rejected", got, storedTotal, rejectedTotal)
	}
}

// queryByLabel runs an instant query and returns its samples by the value
// of their one label (empty for none).
func queryByLabel(ctx context.Context, prom *harness.Prometheus, expr string) (map[string]float64, error) {
	v, err := prom.Query(ctx, expr)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, s := range v {
		labels := maps.Clone(s.Labels)
		delete(labels, "__name__")
		delete(labels, "instance")
		delete(labels, "job")
		keys := slices.Sorted(maps.Keys(labels))
		var parts []string
		for _, k := range keys {
			parts = append(parts, labels[k])
		}
		out[strings.Join(parts, ",")] = s.Value
	}
	return out, nil
}

func floats(m map[string]int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

// TestExpositionPassesPromtool lints the function's real exposition, after
// traffic, with promtool check metrics.
func TestExpositionPassesPromtool(t *testing.T) {
	t.Parallel()
	fn, _ := startFunction(t)
	s := newSent()
	s.post(t, plainRequest(t, fn.URL, "application/json", plainEvent(fmt.Sprintf("lint-%d", time.Now().UnixNano()), "https://e.com/")), "plain", 201, "", 0)
	s.post(t, plainRequest(t, fn.URL, "application/json", "{"), "plain", 400, "invalid_json", 1)
	resp, err := http.Get("http://" + fn.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "tracker_events_stored_total") {
		t.Fatalf("the exposition has no tracker_events_stored_total:\n%s", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := harness.PromtoolInput(ctx, string(body), "check", "metrics"); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	// The serving port does not serve the metrics: its route is public.
	resp2, err := http.Get(fn.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the serving port: got %d, want 404", resp2.StatusCode)
	}
}
