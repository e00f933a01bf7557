package function

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tracker/function/event"
	"tracker/function/store"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
)

// fakeStore records what it is asked to save.
type fakeStore struct {
	block  chan struct{} // when set, Save waits for it to close
	mu     sync.Mutex
	saved  []event.Event
	err    error
	notUp  bool
	called int
}

func (s *fakeStore) Save(ctx context.Context, events []event.Event) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return errors.Join(store.ErrUnavailable, ctx.Err())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called++
	if s.err != nil {
		return s.err
	}
	s.saved = append(s.saved, events...)
	return nil
}

func (s *fakeStore) Ready() bool { return !s.notUp }

var testNow = time.Date(2026, 5, 4, 12, 30, 0, 0, time.UTC)

func testConfig() Config {
	return Config{TrackMaxBodyBytes: 4096, TrackMaxBatchEvents: 5, TrackMaxInflight: 8, CassandraTimeout: time.Second}
}

func newTestHandler(store Store) http.Handler {
	return newTestAPI(store).routes()
}

func newTestAPI(store Store) *handler {
	return &handler{cfg: testConfig(), store: store, now: func() time.Time { return testNow }}
}

const validJSON = `{"username":"John Doe","target":"https://www.google.com/","description":"VIEW"}`

func post(t *testing.T, h http.Handler, contentType, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/track", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// readProblem checks that rec is problem+json with the given status and
// returns its body.
func readProblem(t *testing.T, rec *httptest.ResponseRecorder, status int) problem {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status: got %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
		t.Fatalf("Content-Type: got %q, want application/problem+json", got)
	}
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %q: %v", rec.Body, err)
	}
	if p.Status != status || p.Title != http.StatusText(status) || p.Type != "about:blank" {
		t.Errorf("problem: got status %d title %q type %q, want %d %q about:blank", p.Status, p.Title, p.Type, status, http.StatusText(status))
	}
	return p
}

// fieldsOf lists "index:field:reason" for each entry of p.Errors.
func fieldsOf(p problem) []string {
	var out []string
	for _, e := range p.Errors {
		idx := "-"
		if e.Index != nil {
			idx = strconv.Itoa(*e.Index)
		}
		out = append(out, idx+":"+e.Field+":"+e.Reason)
	}
	return out
}

func readIDs(t *testing.T, rec *httptest.ResponseRecorder) []string {
	t.Helper()
	if rec.Code != http.StatusCreated {
		t.Fatalf("status: got %d, want 201; body %s", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", got)
	}
	var resp trackResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("201 body %q: %v", rec.Body, err)
	}
	return resp.IDs
}

func TestTrackAcceptsPlainJSONInEveryContentType(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"} {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			ids := readIDs(t, post(t, newTestHandler(store), ct, validJSON))
			if len(ids) != 1 || len(store.saved) != 1 {
				t.Fatalf("got %d ids and %d saved events, want 1 and 1", len(ids), len(store.saved))
			}
			want := event.Event{ID: ids[0], Username: "John Doe", Target: "https://www.google.com/", Description: "VIEW", ReceivedAt: testNow}
			if diff := cmp.Diff(want, store.saved[0]); diff != "" {
				t.Errorf("saved event (-want +got):\n%s", diff)
			}
			if len(ids[0]) != 36 || ids[0][14] != '7' {
				t.Errorf("server id: got %q, want a UUIDv7", ids[0])
			}
		})
	}
}

func TestTrackKeepsClientIDAndTimestamp(t *testing.T) {
	t.Parallel()
	store := &fakeStore{}
	body := `{"id":"evt-1","timestamp":"2026-05-04T10:00:00.5+02:00","username":"u","target":"http://example.com/a?b=c","description":"CLICK"}`
	ids := readIDs(t, post(t, newTestHandler(store), "application/json", body))
	if diff := cmp.Diff([]string{"evt-1"}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	want := event.Event{ID: "evt-1", Retryable: true, Username: "u", Target: "http://example.com/a?b=c", Description: "CLICK",
		OccurredAt: time.Date(2026, 5, 4, 8, 0, 0, 5e8, time.UTC), ReceivedAt: testNow}
	if diff := cmp.Diff(want, store.saved[0]); diff != "" {
		t.Errorf("saved event (-want +got):\n%s", diff)
	}
}

func TestTrackRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 257)
	tests := []struct {
		name string
		body string
		want []string // index:field:reason
	}{
		{"bad description", `{"username":"a","target":"https://a.b/","description":"HOVER"}`, []string{"-:description:invalid_description"}},
		{"lower-case description", `{"username":"a","target":"https://a.b/","description":"view"}`, []string{"-:description:invalid_description"}},
		{"missing everything", `{}`, []string{"-:username:missing_field", "-:target:missing_field", "-:description:missing_field"}},
		{"empty username", `{"username":"","target":"https://a.b/","description":"VIEW"}`, []string{"-:username:empty_username"}},
		{"long username", `{"username":"` + long + `","target":"https://a.b/","description":"VIEW"}`, []string{"-:username:username_too_long"}},
		{"NUL in username", `{"username":"a\u0000b","target":"https://a.b/","description":"VIEW"}`, []string{"-:username:control_character"}},
		{"relative target", `{"username":"a","target":"/page","description":"VIEW"}`, []string{"-:target:invalid_target"}},
		{"ftp target", `{"username":"a","target":"ftp://a.b/","description":"VIEW"}`, []string{"-:target:invalid_target"}},
		{"hostless target", `{"username":"a","target":"https:///x","description":"VIEW"}`, []string{"-:target:invalid_target"}},
		{"long target", `{"username":"a","target":"https://a.b/` + strings.Repeat("p", 2040) + `","description":"VIEW"}`, []string{"-:target:target_too_long"}},
		{"unknown field", `{"username":"a","target":"https://a.b/","description":"VIEW","color":"red"}`, []string{"-:color:unknown_field"}},
		{"number for username", `{"username":7,"target":"https://a.b/","description":"VIEW"}`, []string{"-:username:invalid_type"}},
		{"future timestamp", `{"timestamp":"2026-05-05T13:00:00Z","username":"a","target":"https://a.b/","description":"VIEW"}`, []string{"-:timestamp:invalid_timestamp"}},
		{"unparsable timestamp", `{"timestamp":"yesterday","username":"a","target":"https://a.b/","description":"VIEW"}`, []string{"-:timestamp:invalid_timestamp"}},
		{"id with space", `{"id":"a b","username":"a","target":"https://a.b/","description":"VIEW"}`, []string{"-:id:invalid_id"}},
		{"empty id", `{"id":"","username":"a","target":"https://a.b/","description":"VIEW"}`, []string{"-:id:invalid_id"}},
		{"trailing data", validJSON + `{}`, []string{"-::trailing_data"}},
		{"duplicate field", `{"username":"a","username":"b","target":"https://a.b/","description":"VIEW"}`, []string{"-:username:duplicate_field"}},
		{"null field", `{"username":null,"target":"https://a.b/","description":"VIEW"}`, []string{"-:username:invalid_type"}},
		{"object for target", `{"username":"a","target":{"href":"https://a.b/"},"description":"VIEW"}`, []string{"-:target:invalid_type"}},
		{"deeply nested value", `{"username":` + strings.Repeat("[", 1500) + strings.Repeat("]", 1500) + `}`, []string{"-:username:invalid_type"}},
		{"syntax error", `{"username":`, []string{"-::invalid_json"}},
		{"not an object", `"VIEW"`, []string{"-::invalid_json"}},
		{"empty body", ``, []string{"-::empty_body"}},
		{"invalid UTF-8", "{\"username\":\"a\xff\",\"target\":\"https://a.b/\",\"description\":\"VIEW\"}", []string{"-::invalid_utf8"}},
		{"empty batch", `[]`, []string{"-::empty_batch"}},
		{"batch with bad events", `[` + validJSON + `,{"username":"a","target":"x","description":"VIEW"},` + validJSON + `,{"username":"a","target":"https://a.b/","description":"SEE"}]`,
			[]string{"1:target:invalid_target", "3:description:invalid_description"}},
		{"batch with a non-object", `[` + validJSON + `,42]`, []string{"1::invalid_type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			p := readProblem(t, post(t, newTestHandler(store), "application/json", tt.body), http.StatusBadRequest)
			if diff := cmp.Diff(tt.want, fieldsOf(p)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nbody: %+v", diff, p)
			}
			for _, e := range p.Errors {
				if e.Message == "" {
					t.Errorf("error %+v has no message", e)
				}
			}
			if store.called != 0 {
				t.Errorf("store called %d times for a rejected request, want 0", store.called)
			}
		})
	}
}

func TestTrackErrorMessageNamesTheProblem(t *testing.T) {
	t.Parallel()
	p := readProblem(t, post(t, newTestHandler(&fakeStore{}), "", `{"username":"John Doe","target":"https://www.google.com/","description":"HOVER"}`), http.StatusBadRequest)
	want := []event.FieldError{{Field: "description", Reason: "invalid_description", Message: `must be CLICK or VIEW, got "HOVER"`}}
	if diff := cmp.Diff(want, p.Errors); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestTrackBatch(t *testing.T) {
	t.Parallel()
	store := &fakeStore{}
	body := `[{"id":"a","username":"u1","target":"https://a.b/1","description":"VIEW"},
	          {"username":"u2","target":"https://a.b/2","description":"CLICK"},
	          {"id":"c","username":"u3","target":"https://a.b/3","description":"VIEW"}]`
	ids := readIDs(t, post(t, newTestHandler(store), "application/json", body))
	if len(ids) != 3 || ids[0] != "a" || ids[2] != "c" || len(ids[1]) != 36 {
		t.Fatalf("ids: got %q, want [a <uuid> c]", ids)
	}
	var got []string
	for _, ev := range store.saved {
		got = append(got, ev.ID+"/"+ev.Username+"/"+ev.Description)
	}
	want := []string{"a/u1/VIEW", ids[1] + "/u2/CLICK", "c/u3/VIEW"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("saved (-want +got):\n%s", diff)
	}
}

func TestTrackLimits(t *testing.T) {
	t.Parallel()
	six := "[" + strings.TrimSuffix(strings.Repeat(validJSON+",", 6), ",") + "]"
	big := `{"username":"` + strings.Repeat("a", 5000) + `","target":"https://a.b/","description":"VIEW"}`
	tests := []struct {
		name, contentType, body string
		status                  int
	}{
		{"batch over TRACK_MAX_BATCH_EVENTS", "application/json", six, http.StatusRequestEntityTooLarge},
		{"body over TRACK_MAX_BODY_BYTES", "application/json", big, http.StatusRequestEntityTooLarge},
		{"unsupported media type", "application/xml", validJSON, http.StatusUnsupportedMediaType},
		{"unparsable media type", "application/json; =", validJSON, http.StatusUnsupportedMediaType},
		{"CloudEvents batch over the limit", "application/cloudevents-batch+json", "[" + strings.TrimSuffix(strings.Repeat(`{},`, 6), ",") + "]", http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			p := readProblem(t, post(t, newTestHandler(store), tt.contentType, tt.body), tt.status)
			if p.Detail == "" {
				t.Error("problem has no detail")
			}
			if store.called != 0 {
				t.Errorf("store called %d times, want 0", store.called)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, ""},
		{http.MethodGet, "/track", http.StatusMethodNotAllowed, "OPTIONS, POST"},
		{http.MethodPut, "/track", http.StatusMethodNotAllowed, "OPTIONS, POST"},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			rec := serve(newTestHandler(&fakeStore{}), httptest.NewRequest(tt.method, tt.path, nil))
			readProblem(t, rec, tt.status)
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow: got %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	rec := serve(newTestHandler(&fakeStore{}), httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"status":"ok"}` {
		t.Errorf("ready: got %d %q, want 200 {\"status\":\"ok\"}", rec.Code, rec.Body)
	}
	rec = serve(newTestHandler(&fakeStore{notUp: true}), httptest.NewRequest(http.MethodGet, "/", nil))
	readProblem(t, rec, http.StatusServiceUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestStoreFailuresDoNotLeak(t *testing.T) {
	t.Parallel()
	secret := "gocql: no response received from cassandra within timeout period 10.0.0.7"
	tests := []struct {
		name       string
		err        error
		status     int
		retryAfter bool
	}{
		{"unavailable", errors.Join(store.ErrUnavailable, errors.New(secret)), http.StatusServiceUnavailable, true},
		{"internal", errors.New(secret), http.StatusInternalServerError, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := post(t, newTestHandler(&fakeStore{err: tt.err}), "application/json", validJSON)
			readProblem(t, rec, tt.status)
			if got := rec.Header().Get("Retry-After") != ""; got != tt.retryAfter {
				t.Errorf("Retry-After present: got %v, want %v", got, tt.retryAfter)
			}
			if strings.Contains(rec.Body.String(), "gocql") || strings.Contains(rec.Body.String(), "10.0.0.7") {
				t.Errorf("driver error reached the client: %s", rec.Body)
			}
		})
	}
}

func TestHandleBeforeStart(t *testing.T) {
	t.Parallel()
	f := New()
	rec := httptest.NewRecorder()
	f.Handle(rec, httptest.NewRequest(http.MethodPost, "/track", strings.NewReader(validJSON)))
	readProblem(t, rec, http.StatusServiceUnavailable)
	if ready, _ := f.Ready(context.Background()); ready {
		t.Error("Ready before Start: got true, want false")
	}
}

func newCloudEvent(t *testing.T, id, data string) cloudevents.Event {
	t.Helper()
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource("https://shop.example/pages")
	e.SetType("dev.tracker.impression")
	e.SetTime(time.Date(2026, 5, 4, 11, 0, 0, 0, time.UTC))
	if err := e.SetData(cloudevents.ApplicationJSON, json.RawMessage(data)); err != nil {
		t.Fatal(err)
	}
	return e
}

// ceRequest encodes events with sdk-go's own writers: binary, structured
// or batch mode.
func ceRequest(t *testing.T, mode string, events ...cloudevents.Event) *http.Request {
	t.Helper()
	ctx := context.Background()
	var req *http.Request
	var err error
	switch mode {
	case "binary":
		req, err = cehttp.NewHTTPRequestFromEvent(ctx, "http://tracker/track", events[0])
	case "structured":
		req, err = cehttp.NewHTTPRequestFromEvent(binding.WithForceStructured(ctx), "http://tracker/track", events[0])
	case "batch":
		req, err = cehttp.NewHTTPRequestFromEvents(ctx, "http://tracker/track", events)
	}
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestTrackCloudEvents(t *testing.T) {
	t.Parallel()
	data := `{"username":"Jane","target":"https://shop.example/p/1","description":"CLICK"}`
	for _, mode := range []string{"binary", "structured", "batch"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			ids := readIDs(t, serve(newTestHandler(store), ceRequest(t, mode, newCloudEvent(t, "ce-1", data))))
			want := event.Event{ID: "https://shop.example/pages ce-1", Retryable: true, Source: "https://shop.example/pages",
				Username: "Jane", Target: "https://shop.example/p/1", Description: "CLICK",
				OccurredAt: time.Date(2026, 5, 4, 11, 0, 0, 0, time.UTC), ReceivedAt: testNow}
			if diff := cmp.Diff([]string{want.ID}, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if len(store.saved) != 1 {
				t.Fatalf("saved %d events, want 1", len(store.saved))
			}
			if diff := cmp.Diff(want, store.saved[0]); diff != "" {
				t.Errorf("saved (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCloudEventIDSpacesDropped: HTTP drops the spaces around a header
// value, so a binary-mode event cannot keep those of its id. Found by
// FuzzStructuredCloudEvent: a structured event with id " 0" was stored
// under a key that the same event sent in binary mode did not have.
func TestCloudEventIDSpacesDropped(t *testing.T) {
	t.Parallel()
	data := `{"username":"Jane","target":"https://shop.example/p/1","description":"CLICK"}`
	for _, mode := range []string{"binary", "structured", "batch"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ids := readIDs(t, serve(newTestHandler(&fakeStore{}), ceRequest(t, mode, newCloudEvent(t, "  ce-1 ", data))))
			if diff := cmp.Diff([]string{"https://shop.example/pages ce-1"}, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTrackRejectsInvalidCloudEvents(t *testing.T) {
	t.Parallel()
	good := `{"username":"Jane","target":"https://shop.example/p/1","description":"CLICK"}`
	tests := []struct {
		name string
		req  func(t *testing.T) *http.Request
		want []string
	}{
		{"binary with a bad description", func(t *testing.T) *http.Request {
			return ceRequest(t, "binary", newCloudEvent(t, "1", `{"username":"J","target":"https://a.b/","description":"HOVER"}`))
		}, []string{"-:data.description:invalid_description"}},
		{"structured with an unknown data field", func(t *testing.T) *http.Request {
			return ceRequest(t, "structured", newCloudEvent(t, "1", `{"username":"J","target":"https://a.b/","description":"VIEW","id":"x"}`))
		}, []string{"-:data.id:unknown_field"}},
		{"binary without data", func(t *testing.T) *http.Request {
			e := newCloudEvent(t, "1", good)
			e.DataEncoded = nil
			return ceRequest(t, "binary", e)
		}, []string{"-:data:missing_field"}},
		{"data content type that lies", func(t *testing.T) *http.Request {
			e := newCloudEvent(t, "1", good)
			e.SetDataContentType("application/xml")
			return ceRequest(t, "binary", e)
		}, []string{"-:datacontenttype:unsupported_data_content_type"}},
		{"binary with a future time", func(t *testing.T) *http.Request {
			e := newCloudEvent(t, "1", good)
			e.SetTime(testNow.Add(48 * time.Hour))
			return ceRequest(t, "binary", e)
		}, []string{"-:time:invalid_time"}},
		{"binary without ce-id", func(t *testing.T) *http.Request {
			r := ceRequest(t, "binary", newCloudEvent(t, "1", good))
			r.Header.Del("ce-id")
			return r
		}, []string{"-:id:invalid_cloudevent"}},
		{"structured with an id of spaces", func(t *testing.T) *http.Request {
			// sdk-go will not encode such an event; the body is written out.
			// sdk-go's Validate counts it as empty.
			r := httptest.NewRequest(http.MethodPost, "/track", strings.NewReader(
				`{"specversion":"1.0","id":"   ","source":"/web","type":"impression","data":`+good+`}`))
			r.Header.Set("Content-Type", "application/cloudevents+json")
			return r
		}, []string{"-:id:invalid_cloudevent"}},
		{"structured that is not JSON", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/track", strings.NewReader(`{"specversion":`))
			r.Header.Set("Content-Type", "application/cloudevents+json")
			return r
		}, []string{"-::invalid_json"}},
		{"batch with bad events", func(t *testing.T) *http.Request {
			return ceRequest(t, "batch", newCloudEvent(t, "1", good),
				newCloudEvent(t, "2", `{"username":"J","target":"nope","description":"VIEW"}`),
				newCloudEvent(t, "3", good))
		}, []string{"1:data.target:invalid_target"}},
		{"batch that is not an array", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/track", strings.NewReader(`{}`))
			r.Header.Set("Content-Type", "application/cloudevents-batch+json")
			return r
		}, []string{"-::invalid_type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			p := readProblem(t, serve(newTestHandler(store), tt.req(t)), http.StatusBadRequest)
			if diff := cmp.Diff(tt.want, fieldsOf(p)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nproblem: %+v", diff, p)
			}
			if store.called != 0 {
				t.Errorf("store called %d times, want 0", store.called)
			}
		})
	}
}

func TestBinaryCloudEventWinsOverContentType(t *testing.T) {
	t.Parallel()
	// A binary-mode CloudEvent is recognised by ce-specversion whatever its
	// Content-Type; its data must still be JSON.
	store := &fakeStore{}
	rec := post(t, newTestHandler(store), "text/plain", `{"username":"J","target":"https://a.b/","description":"VIEW"}`,
		"ce-specversion", "1.0", "ce-id", "x1", "ce-source", "/web", "ce-type", "impression")
	p := readProblem(t, rec, http.StatusBadRequest)
	if diff := cmp.Diff([]string{"-:datacontenttype:unsupported_data_content_type"}, fieldsOf(p)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	ids := readIDs(t, post(t, newTestHandler(store), "application/json", `{"username":"J","target":"https://a.b/","description":"VIEW"}`,
		"ce-specversion", "1.0", "ce-id", "x1", "ce-source", "/web", "ce-type", "impression"))
	if diff := cmp.Diff([]string{"/web x1"}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

// TestOverloadAnswers503AtOnce fills TRACK_MAX_INFLIGHT (8) with a batch
// the store holds, and expects the next batch to be refused at once.
func TestOverloadAnswers503AtOnce(t *testing.T) {
	t.Parallel()
	store := &fakeStore{block: make(chan struct{})}
	api := newTestAPI(store)
	h := api.routes()
	five := "[" + strings.TrimSuffix(strings.Repeat(validJSON+",", 5), ",") + "]"
	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- post(t, h, "application/json", five) }()
	// Poll until the first batch is inside Save.
	deadline := time.Now().Add(5 * time.Second)
	for api.inflight.Load() != 5 {
		if time.Now().After(deadline) {
			t.Fatal("the first batch never reached the store")
		}
		time.Sleep(time.Millisecond)
	}
	rec := post(t, h, "application/json", five)
	readProblem(t, rec, http.StatusServiceUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// A small request still fits.
	close(store.block)
	if ids := readIDs(t, <-first); len(ids) != 5 {
		t.Errorf("first batch: got %d ids, want 5", len(ids))
	}
	readIDs(t, post(t, h, "application/json", five))
	if got := api.inflight.Load(); got != 0 {
		t.Errorf("inflight after all requests: got %d, want 0", got)
	}
}

// TestSaveIsBoundedByTheTimeout holds the store forever and expects a 503
// once CASSANDRA_TIMEOUT passes, not a hang.
func TestSaveIsBoundedByTheTimeout(t *testing.T) {
	t.Parallel()
	store := &fakeStore{block: make(chan struct{})}
	hd := newTestAPI(store)
	hd.cfg.CassandraTimeout = 50 * time.Millisecond
	started := time.Now()
	rec := post(t, hd.routes(), "application/json", validJSON)
	readProblem(t, rec, http.StatusServiceUnavailable)
	if took := time.Since(started); took > 5*time.Second {
		t.Errorf("request took %s, want about CASSANDRA_TIMEOUT (50ms)", took)
	}
}
