package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tracker/test/internal/harness"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// row is one event as read back from one of the three tables.
type row = harness.Row

var userSeq atomic.Int64

// uniqueUser gives each test its own partition, so tests can run in
// parallel and count rows exactly.
func uniqueUser(t *testing.T) string {
	return fmt.Sprintf("%s-%d-%d", t.Name(), time.Now().UnixNano(), userSeq.Add(1))
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func postTrack(t *testing.T, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, baseURL+"/track", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

func idsOf(t *testing.T, r response) []string {
	t.Helper()
	if r.Status != http.StatusCreated {
		t.Fatalf("status: got %d, want 201; body %s", r.Status, r.Body)
	}
	var out struct{ IDs []string }
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	return out.IDs
}

// tables reads back what the function wrote.
func tables() harness.Tables { return harness.Tables{Session: session, Keyspace: keyspace} }

func readContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// byID reads an event's row from events_by_id; ok is false when absent.
func byID(t *testing.T, id string) (row, bool) {
	t.Helper()
	rows, err := tables().ByID(readContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := rows[id]
	return r, ok
}

// userRows reads every row of a user on the given UTC days.
func userRows(t *testing.T, username string, days ...time.Time) []row {
	t.Helper()
	rows, err := tables().ByUser(readContext(t), username, days...)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// targetRows reads every row of an event id from a target's day, all buckets.
func targetRows(t *testing.T, target string, day time.Time, eventID string) []row {
	t.Helper()
	rows, err := tables().ByTarget(readContext(t), target, day)
	if err != nil {
		t.Fatal(err)
	}
	var out []row
	for _, r := range rows {
		if r.EventID == eventID {
			out = append(out, r)
		}
	}
	return out
}

func dayOf(t time.Time) time.Time { return harness.DayOf(t) }

// recentDays cover a test that runs across midnight UTC.
func recentDays() []time.Time { return harness.DaysAround(time.Now()) }

// assertStoredOnce checks that id is in every table exactly once with want's values.
func assertStoredOnce(t *testing.T, id string, want row) {
	t.Helper()
	got, ok := byID(t, id)
	if !ok {
		t.Fatalf("events_by_id has no row for %q", id)
	}
	want.EventID = id
	if want.OccurredAt.IsZero() {
		want.OccurredAt = got.OccurredAt
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events_by_id row (-want +got):\n%s", diff)
	}
	var users []row
	for _, r := range userRows(t, want.Username, dayOf(got.OccurredAt)) {
		if r.EventID == id {
			users = append(users, r)
		}
	}
	if diff := cmp.Diff([]row{want}, users); diff != "" {
		t.Errorf("events_by_user rows of %q (-want +got):\n%s", id, diff)
	}
	wantTarget := want
	wantTarget.Source = ""
	if diff := cmp.Diff([]row{wantTarget}, targetRows(t, want.Target, dayOf(got.OccurredAt), id)); diff != "" {
		t.Errorf("events_by_target rows of %q (-want +got):\n%s", id, diff)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/", "/health/readiness", "/health/liveness"} {
		req, _ := http.NewRequest(http.MethodGet, baseURL+path, nil)
		if r := do(t, req); r.Status != http.StatusOK {
			t.Errorf("GET %s: got %d %s, want 200", path, r.Status, r.Body)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, baseURL+"/", nil)
	if r := do(t, req); strings.TrimSpace(string(r.Body)) != `{"status":"ok"}` {
		t.Errorf(`GET /: got %s, want {"status":"ok"}`, r.Body)
	}
}

// TestSeedExample is the README's first curl, in each content type a
// browser or curl sends.
func TestSeedExample(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/x-www-form-urlencoded", "application/json", "text/plain;charset=UTF-8", ""} {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			user := uniqueUser(t)
			before := time.Now().Add(-time.Second)
			ids := idsOf(t, postTrack(t, ct, `{"username": "`+user+`", "target": "https://www.google.com/", "description": "VIEW"}`))
			if len(ids) != 1 {
				t.Fatalf("ids: got %q, want one", ids)
			}
			assertStoredOnce(t, ids[0], row{Username: user, Target: "https://www.google.com/", Description: "VIEW"})
			got, _ := byID(t, ids[0])
			if got.OccurredAt.Before(before) || got.OccurredAt.After(time.Now().Add(time.Second)) {
				t.Errorf("occurred_at: got %s, want the receive time (about %s)", got.OccurredAt, before)
			}
		})
	}
}

func TestRejectedRequestsStoreNothing(t *testing.T) {
	t.Parallel()
	user := uniqueUser(t)
	tests := []struct {
		name, contentType, body string
		status                  int
	}{
		{"HOVER", "", `{"username":"` + user + `","target":"https://www.google.com/","description":"HOVER"}`, 400},
		{"batch with one bad event", "application/json", `[{"username":"` + user + `","target":"https://a.b/","description":"VIEW"},{"username":"` + user + `","target":"nope","description":"VIEW"}]`, 400},
		{"unsupported type", "application/xml", `{"username":"` + user + `","target":"https://a.b/","description":"VIEW"}`, 415},
	}
	for _, tt := range tests {
		r := postTrack(t, tt.contentType, tt.body)
		if r.Status != tt.status || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: got %d %s %s, want %d problem+json", tt.name, r.Status, r.Header.Get("Content-Type"), r.Body, tt.status)
		}
	}
	if rows := userRows(t, user, recentDays()...); len(rows) != 0 {
		t.Errorf("rejected requests stored %d rows: %+v", len(rows), rows)
	}
	r := postTrack(t, "", `{"username":"John Doe","target":"https://www.google.com/","description":"HOVER"}`)
	if !bytes.Contains(r.Body, []byte(`"field":"description"`)) {
		t.Errorf("HOVER: got %s, want an error naming the description field", r.Body)
	}
}

func TestBatchStoresEveryEvent(t *testing.T) {
	t.Parallel()
	user := uniqueUser(t)
	var events []string
	for i := range 50 {
		events = append(events, fmt.Sprintf(`{"id":"%s-%d","timestamp":"2026-03-01T10:%02d:00Z","username":"%s","target":"https://a.example/%d","description":"CLICK"}`, user, i, i, user, i%3))
	}
	ids := idsOf(t, postTrack(t, "application/json", "["+strings.Join(events, ",")+"]"))
	if len(ids) != 50 {
		t.Fatalf("ids: got %d, want 50", len(ids))
	}
	for i, id := range ids {
		if want := fmt.Sprintf("%s-%d", user, i); id != want {
			t.Fatalf("ids[%d]: got %q, want %q", i, id, want)
		}
	}
	rows := userRows(t, user, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	if len(rows) != 50 {
		t.Fatalf("events_by_user: got %d rows, want 50", len(rows))
	}
	// Newest first within the day.
	for i := 1; i < len(rows); i++ {
		if rows[i].OccurredAt.After(rows[i-1].OccurredAt) {
			t.Fatalf("events_by_user is not newest first at row %d: %s after %s", i, rows[i].OccurredAt, rows[i-1].OccurredAt)
		}
	}
	assertStoredOnce(t, ids[7], row{Username: user, Target: "https://a.example/1", Description: "CLICK", OccurredAt: time.Date(2026, 3, 1, 10, 7, 0, 0, time.UTC)})
}

func TestRetryWithSameIDStoresOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		first, retry      string // timestamp fields, may be empty
		wantOccurredAtSet bool
	}{
		{"no timestamp either time", "", "", false},
		{"timestamp both times", `"timestamp":"2026-02-03T04:05:06Z",`, `"timestamp":"2026-02-03T04:05:06Z",`, true},
		{"timestamp first, none on retry", `"timestamp":"2026-02-03T04:05:06Z",`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := uniqueUser(t)
			id := "retry-" + user
			body := func(ts string) string {
				return `{"id":"` + id + `",` + ts + `"username":"` + user + `","target":"https://a.b/x","description":"VIEW"}`
			}
			first := idsOf(t, postTrack(t, "application/json", body(tt.first)))
			stored, _ := byID(t, id)
			retry := idsOf(t, postTrack(t, "application/json", body(tt.retry)))
			if diff := cmp.Diff(first, retry); diff != "" {
				t.Errorf("ids of the retry (-first +retry):\n%s", diff)
			}
			want := row{Username: user, Target: "https://a.b/x", Description: "VIEW", OccurredAt: stored.OccurredAt}
			assertStoredOnce(t, id, want)
			if tt.wantOccurredAtSet && !stored.OccurredAt.Equal(time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)) {
				t.Errorf("occurred_at: got %s, want the client's 2026-02-03T04:05:06Z", stored.OccurredAt)
			}
		})
	}
}

// TestOneUserBatchStored: a batch of one user's events on one day is one
// events_by_user partition, which the store writes as single-partition
// batches of at most 50 rows; 100 events take two, and every row is
// there, in every table.
func TestOneUserBatchStored(t *testing.T) {
	t.Parallel()
	user := uniqueUser(t)
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	events := make([]string, 100)
	for i := range events {
		events[i] = fmt.Sprintf(`{"id":"%s-%d","timestamp":%q,"username":%q,"target":"https://a.example/%d","description":"VIEW"}`,
			user, i, at.Add(time.Duration(i)*time.Second).Format(time.RFC3339), user, i%3)
	}
	ids := idsOf(t, postTrack(t, "application/json", "["+strings.Join(events, ",")+"]"))
	if len(ids) != len(events) {
		t.Fatalf("%d ids for %d events", len(ids), len(events))
	}
	if got := len(userRows(t, user, dayOf(at))); got != len(events) {
		t.Errorf("events_by_user holds %d rows of the user, want %d", got, len(events))
	}
	for i := range ids {
		assertStoredOnce(t, ids[i], row{Username: user, Target: fmt.Sprintf("https://a.example/%d", i%3), Description: "VIEW",
			OccurredAt: at.Add(time.Duration(i) * time.Second)})
	}
}

// TestUntimedV7IDTakesItsTime: an event whose id is a UUIDv7 and that has
// no timestamp happened when its id was made; that time, not the time of
// its first delivery (what the claim of other untimed ids gives), is in
// its rows, and a retry without a timestamp writes the same rows.
func TestUntimedV7IDTakesItsTime(t *testing.T) {
	t.Parallel()
	user := uniqueUser(t)
	made := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	id := v7At(made)
	body := `{"id":"` + id + `","username":"` + user + `","target":"https://a.b/v7","description":"CLICK"}`
	first := idsOf(t, postTrack(t, "application/json", body))
	retry := idsOf(t, postTrack(t, "application/json", body))
	if diff := cmp.Diff(first, retry); diff != "" {
		t.Errorf("ids of the retry (-first +retry):\n%s", diff)
	}
	assertStoredOnce(t, id, row{Username: user, Target: "https://a.b/v7", Description: "CLICK", OccurredAt: made})
}

// v7At is a UUIDv7 (RFC 9562) made at t.
func v7At(t time.Time) string {
	u := uuid.Must(uuid.NewV7())
	ms := t.UnixMilli()
	for i := range 6 {
		u[i] = byte(ms >> (40 - 8*i))
	}
	return u.String()
}

func newCloudEvent(t *testing.T, id, user string, withTime bool) cloudevents.Event {
	t.Helper()
	var at time.Time
	if withTime {
		at = time.Date(2026, 4, 5, 6, 7, 8, 0, time.UTC)
	}
	e, err := harness.NewCloudEvent(id, "https://shop.example/"+user, user, "https://shop.example/p/"+id, "CLICK", at)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCloudEvents(t *testing.T) {
	t.Parallel()
	for _, mode := range harness.CloudEventModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			user := uniqueUser(t)
			events := []cloudevents.Event{newCloudEvent(t, "a", user, true), newCloudEvent(t, "b", user, false)}
			if mode != "batch" {
				events = events[:1]
			}
			req, err := harness.CloudEventRequest(baseURL, mode, events...)
			if err != nil {
				t.Fatal(err)
			}
			ids := idsOf(t, do(t, req))
			source := "https://shop.example/" + user
			wantIDs := []string{source + " a", source + " b"}[:len(events)]
			if diff := cmp.Diff(wantIDs, ids); diff != "" {
				t.Fatalf("ids (-want +got):\n%s", diff)
			}
			assertStoredOnce(t, ids[0], row{Username: user, Target: "https://shop.example/p/a", Description: "CLICK", Source: source,
				OccurredAt: time.Date(2026, 4, 5, 6, 7, 8, 0, time.UTC)})
			if mode == "batch" {
				assertStoredOnce(t, ids[1], row{Username: user, Target: "https://shop.example/p/b", Description: "CLICK", Source: source})
			}
		})
	}
}

// TestCloudEventRedeliveryStoresOnce is a broker delivering the same event
// twice; the event has no time attribute, the common case.
func TestCloudEventRedeliveryStoresOnce(t *testing.T) {
	t.Parallel()
	user := uniqueUser(t)
	var ids [][]string
	for range 2 {
		req, err := harness.CloudEventRequest(baseURL, "binary", newCloudEvent(t, "once", user, false))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, idsOf(t, do(t, req)))
	}
	if diff := cmp.Diff(ids[0], ids[1]); diff != "" {
		t.Errorf("ids (-first +second):\n%s", diff)
	}
	source := "https://shop.example/" + user
	assertStoredOnce(t, source+" once", row{Username: user, Target: "https://shop.example/p/once", Description: "CLICK", Source: source})
}

// TestConcurrentDeliveriesStoreOnce sends the same event, with an id and
// no timestamp, several times at once, as a client does that retries
// while its first attempt is still being written. Each delivery may take
// its own receive time; exactly one must become the event's time.
func TestConcurrentDeliveriesStoreOnce(t *testing.T) {
	t.Parallel()
	const events, copies = 20, 8
	user := uniqueUser(t)
	target := "https://a.b/concurrent"
	ids := make([]string, events)
	answers := make(chan response, events*copies)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = fmt.Sprintf("concurrent-%d-%s", i, user)
		body := `{"id":"` + ids[i] + `","username":"` + user + `","target":"` + target + `","description":"CLICK"}`
		for range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, err := http.Post(baseURL+"/track", "application/json", strings.NewReader(body))
				if err != nil {
					answers <- response{Body: []byte(err.Error())}
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				answers <- response{Status: resp.StatusCode, Body: b}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.Status != http.StatusCreated {
			t.Fatalf("a delivery got %d, want 201: %s", a.Status, a.Body)
		}
	}
	perID := map[string]int{}
	for _, r := range userRows(t, user, recentDays()...) {
		perID[r.EventID]++
	}
	for _, id := range ids {
		stored, ok := byID(t, id)
		if !ok {
			t.Errorf("events_by_id has no row for %q", id)
			continue
		}
		if perID[id] != 1 {
			t.Errorf("events_by_user: %d rows for %q, want 1", perID[id], id)
		}
		if n := len(targetRows(t, target, dayOf(stored.OccurredAt), id)); n != 1 {
			t.Errorf("events_by_target: %d rows for %q, want 1", n, id)
		}
	}
}
