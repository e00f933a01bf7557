package function

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tracker/function/event"
	"tracker/function/internal/metricstest"
	"tracker/function/store"
)

// conflictStore is a fakeStore that holds the ids in stored already with
// other content: as the Cassandra store does, it writes every other event
// of a Save and names those in a *store.ConflictError.
type conflictStore struct {
	fakeStore
	stored map[string]bool
}

func (s *conflictStore) Save(ctx context.Context, events []event.Event) error {
	var (
		ok        []event.Event
		conflicts []int
	)
	for i, ev := range events {
		if s.stored[ev.ID] {
			conflicts = append(conflicts, i)
			continue
		}
		ok = append(ok, ev)
	}
	if err := s.fakeStore.Save(ctx, ok); err != nil {
		return err
	}
	if conflicts != nil {
		return &store.ConflictError{Indexes: conflicts}
	}
	return nil
}

// plainEvent is a plain event object of id; more are extra fields.
func plainEvent(id, user, description string, more ...string) string {
	fields := []string{`"id":"` + id + `"`, `"username":"` + user + `"`, `"target":"https://a.b/"`, `"description":"` + description + `"`}
	return "{" + strings.Join(append(fields, more...), ",") + "}"
}

func ceEvent(id, user, description string) string {
	return `{"specversion":"1.0","id":"` + id + `","source":"/s","type":"t","data":{"username":"` + user + `","target":"https://a.b/","description":"` + description + `"}}`
}

func batch(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

// savedIDs lists the ids the store was asked to save, in order.
func savedIDs(s *fakeStore) []string {
	var out []string
	for _, ev := range s.saved {
		out = append(out, ev.ID)
	}
	return out
}

func TestBatchRepeatingAnEventStoresItOnce(t *testing.T) {
	t.Parallel()
	const ts = `"timestamp":"2026-05-04T10:00:00Z"`
	tests := []struct {
		name, contentType, body string
		wantIDs, wantSaved      []string
	}{
		{"plain", "application/json", batch(plainEvent("a", "u", "VIEW"), plainEvent("b", "u", "VIEW"), plainEvent("a", "u", "VIEW")),
			[]string{"a", "b", "a"}, []string{"a", "b"}},
		{"plain with a timestamp", "application/json", batch(plainEvent("a", "u", "VIEW", ts), plainEvent("a", "u", "VIEW", `"timestamp":"2026-05-04T12:00:00+02:00"`)),
			[]string{"a", "a"}, []string{"a"}},
		{"three times", "application/json", batch(plainEvent("a", "u", "VIEW"), plainEvent("a", "u", "VIEW"), plainEvent("a", "u", "VIEW")),
			[]string{"a", "a", "a"}, []string{"a"}},
		{"CloudEvents, the id with spaces", "application/cloudevents-batch+json", batch(ceEvent("1", "u", "CLICK"), ceEvent("2", "u", "CLICK"), ceEvent(" 1", "u", "CLICK")),
			[]string{"/s 1", "/s 2", "/s 1"}, []string{"/s 1", "/s 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &fakeStore{}
			ids := readIDs(t, post(t, newTestHandler(st), tt.contentType, tt.body))
			if diff := cmp.Diff(tt.wantIDs, ids); diff != "" {
				t.Errorf("answered ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSaved, savedIDs(st)); diff != "" {
				t.Errorf("saved ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBatchWithOneIDForTwoEventsIsRejected(t *testing.T) {
	t.Parallel()
	const ts = `"timestamp":"2026-05-04T10:00:00Z"`
	tests := []struct {
		name, contentType, body string
		want                    []string // index:field:reason
	}{
		{"other username", "application/json", batch(plainEvent("a", "u", "VIEW"), plainEvent("a", "v", "VIEW")),
			[]string{"0:id:duplicate_id", "1:id:duplicate_id"}},
		{"other description", "application/json", batch(plainEvent("a", "u", "VIEW"), plainEvent("b", "u", "VIEW"), plainEvent("a", "u", "CLICK")),
			[]string{"0:id:duplicate_id", "2:id:duplicate_id"}},
		{"other target", "application/json", batch(plainEvent("a", "u", "VIEW"), `{"id":"a","username":"u","target":"https://a.b/x","description":"VIEW"}`),
			[]string{"0:id:duplicate_id", "1:id:duplicate_id"}},
		{"a timestamp and none", "application/json", batch(plainEvent("a", "u", "VIEW", ts), plainEvent("a", "u", "VIEW")),
			[]string{"0:id:duplicate_id", "1:id:duplicate_id"}},
		{"two timestamps", "application/json", batch(plainEvent("a", "u", "VIEW", ts), plainEvent("a", "u", "VIEW", `"timestamp":"2026-05-04T10:00:01Z"`)),
			[]string{"0:id:duplicate_id", "1:id:duplicate_id"}},
		{"a pair that agrees and one that does not", "application/json", batch(plainEvent("a", "u", "VIEW"), plainEvent("a", "u", "VIEW"), plainEvent("a", "v", "VIEW")),
			[]string{"0:id:duplicate_id", "1:id:duplicate_id", "2:id:duplicate_id"}},
		{"with another bad event", "application/json", batch(plainEvent("a", "u", "VIEW"), plainEvent("b", "u", "HOVER"), plainEvent("a", "v", "VIEW")),
			[]string{"1:description:invalid_description", "0:id:duplicate_id", "2:id:duplicate_id"}},
		{"CloudEvents", "application/cloudevents-batch+json", batch(ceEvent("1", "u", "CLICK"), ceEvent("1", "u", "VIEW")),
			[]string{"0:id:duplicate_id", "1:id:duplicate_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &fakeStore{}
			p := readProblem(t, post(t, newTestHandler(st), tt.contentType, tt.body), http.StatusBadRequest)
			if diff := cmp.Diff(tt.want, fieldsOf(p)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nbody: %+v", diff, p)
			}
			if st.called != 0 {
				t.Errorf("store called %d times, want 0: nothing of the request may be stored", st.called)
			}
		})
	}
}

// TestDuplicateIDNamesTheOtherIndex: each index's error says which other
// index has its id.
func TestDuplicateIDNamesTheOtherIndex(t *testing.T) {
	t.Parallel()
	p := readProblem(t, post(t, newTestHandler(&fakeStore{}), "application/json",
		batch(plainEvent("a", "u", "VIEW"), plainEvent("b", "u", "VIEW"), plainEvent("a", "u", "CLICK"))), http.StatusBadRequest)
	if len(p.Errors) != 2 {
		t.Fatalf("errors: got %+v, want two", p.Errors)
	}
	for i, want := range []string{"index 2", "index 0"} {
		if !strings.Contains(p.Errors[i].Message, want) {
			t.Errorf("errors[%d].message: got %q, want it to name %s", i, p.Errors[i].Message, want)
		}
	}
	if want := "2 of 3 events are invalid; nothing was stored"; p.Detail != want {
		t.Errorf("detail: got %q, want %q", p.Detail, want)
	}
}

// conflictIDs reads the ids extension of a 409 problem.
func conflictIDs(t *testing.T, rec *httptest.ResponseRecorder) []string {
	t.Helper()
	var body struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	return body.IDs
}

func TestIDStoredWithOtherContentIsAConflict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, contentType, body string
		header                  []string
		want                    []string // index:field:reason
		wantIDs, wantSaved      []string
	}{
		{"one event", "application/json", plainEvent("x", "u", "VIEW"), nil,
			[]string{"-:id:id_conflict"}, []string{"x"}, nil},
		{"binary CloudEvent", "application/json", `{"username":"u","target":"https://a.b/","description":"VIEW"}`,
			[]string{"ce-specversion", "1.0", "ce-id", "9", "ce-source", "/s", "ce-type", "t"},
			[]string{"-:id:id_conflict"}, []string{"/s 9"}, nil},
		{"batch", "application/json", batch(plainEvent("a", "u", "VIEW"), plainEvent("x", "u", "VIEW"), plainEvent("b", "u", "VIEW")), nil,
			[]string{"1:id:id_conflict"}, []string{"a", "x", "b"}, []string{"a", "b"}},
		{"batch that repeats it", "application/json", batch(plainEvent("x", "u", "VIEW"), plainEvent("a", "u", "VIEW"), plainEvent("x", "u", "VIEW")), nil,
			[]string{"0:id:id_conflict", "2:id:id_conflict"}, []string{"x", "a", "x"}, []string{"a"}},
		{"CloudEvents batch", "application/cloudevents-batch+json", batch(ceEvent("1", "u", "CLICK"), ceEvent("9", "u", "CLICK")), nil,
			[]string{"1:id:id_conflict"}, []string{"/s 1", "/s 9"}, []string{"/s 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &conflictStore{stored: map[string]bool{"x": true, "/s 9": true}}
			rec := post(t, newTestHandler(st), tt.contentType, tt.body, tt.header...)
			p := readProblem(t, rec, http.StatusConflict)
			ids := conflictIDs(t, rec)
			if diff := cmp.Diff(tt.want, fieldsOf(p)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nbody: %+v", diff, p)
			}
			for _, e := range p.Errors {
				id := tt.wantIDs[0]
				if e.Index != nil {
					id = tt.wantIDs[*e.Index]
				}
				if !strings.Contains(e.Message, `"`+id+`"`) {
					t.Errorf("error %+v does not name the id %q", e, id)
				}
			}
			if diff := cmp.Diff(tt.wantIDs, ids); diff != "" {
				t.Errorf("ids of the 409 (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSaved, savedIDs(&st.fakeStore)); diff != "" {
				t.Errorf("saved (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIDsAreCountedByOutcome: a duplicate_id batch rejects each of its
// events; a 409 rejects the events of the conflict and counts the others
// of its request as stored.
func TestIDsAreCountedByOutcome(t *testing.T) {
	t.Parallel()
	st := &conflictStore{stored: map[string]bool{"x": true}}
	api, tel := meteredAPI(t, st, testConfig())
	post(t, api, "application/json", batch(plainEvent("a", "u", "VIEW"), plainEvent("a", "v", "VIEW"), plainEvent("b", "u", "VIEW")))
	post(t, api, "application/json", batch(plainEvent("x", "u", "VIEW"), plainEvent("c", "u", "VIEW"), plainEvent("c", "u", "VIEW")))
	post(t, api, "application/json", plainEvent("x", "u", "VIEW"))

	fams := metricstest.Scrape(t, tel.MetricsAddr())
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"format", "plain_batch", "reason", "duplicate_id"}, 2},
		{[]string{"format", "plain_batch", "reason", "in_invalid_batch"}, 1},
		{[]string{"format", "plain_batch", "reason", "id_conflict"}, 1},
		{[]string{"format", "plain", "reason", "id_conflict"}, 1},
	} {
		if got := fams.Value("tracker_events_rejected_total", c.labels...); got != c.want {
			t.Errorf("tracker_events_rejected_total%v: got %v, want %v", c.labels, got, c.want)
		}
	}
	if got := fams.Value("tracker_events_stored_total", "format", "plain_batch"); got != 2 {
		t.Errorf("stored plain_batch: got %v, want 2 (c, answered twice)", got)
	}
	if got := fams.Value("tracker_http_requests_total", "route", "/track", "code", "409"); got != 2 {
		t.Errorf("409s: got %v, want 2", got)
	}
	if got := fams.Value("tracker_events_received_total"); got != 7 {
		t.Errorf("received: got %v, want 7", got)
	}
}
