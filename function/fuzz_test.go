package function

// Fuzz targets, one per input form. Each feeds the fuzzed request through
// the whole handler over a store that always works, and checks three
// properties: nothing panics; a rejection is a 4xx problem+json with a
// reason (never a 5xx, since the store cannot fail); and anything accepted
// is a valid Event that comes back unchanged when encoded again in the same
// form and sent once more. Seeds live in testdata/fuzz/<FuzzName>/.
//
//	go test -run '^$' -fuzz '^FuzzPlainObject$' -fuzztime 20s ./function/
//
// (make fuzz runs every target in turn.)

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"tracker/function/event"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
)

func FuzzPlainObject(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, "application/json", body, replayPlain)
	})
}

func FuzzPlainBatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, "application/json", body, replayPlain)
	})
}

func FuzzStructuredCloudEvent(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, "application/cloudevents+json", body, replayCloudEvents(binding.WithForceStructured(context.Background())))
	})
}

func FuzzCloudEventsBatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, "application/cloudevents-batch+json", body, replayCloudEvents(context.Background()))
	})
}

// FuzzBinaryCloudEvent fuzzes the ce-* headers and Content-Type together
// with the body. ce-specversion is always sent, so the request is always
// read as a binary-mode CloudEvent; an empty value for another header
// leaves it out.
func FuzzBinaryCloudEvent(f *testing.F) {
	f.Fuzz(func(t *testing.T, specversion, id, source, ceType, ceTime, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/track", strings.NewReader(string(body)))
		req.Header.Set("ce-specversion", specversion)
		for name, value := range map[string]string{"ce-id": id, "ce-source": source, "ce-type": ceType, "ce-time": ceTime, "Content-Type": contentType} {
			if value != "" {
				req.Header.Set(name, value)
			}
		}
		fuzzRequest(t, req, replayCloudEvents(context.Background()))
	})
}

// fuzzAPI is the handler under fuzzing: limits small enough to keep every
// input cheap, and an in-flight bound that a full batch never reaches, so
// that a 503 can only mean a bug.
func fuzzAPI() (http.Handler, *fakeStore) {
	store := &fakeStore{}
	api := newTestAPI(store)
	api.cfg.TrackMaxBodyBytes = 16 << 10
	api.cfg.TrackMaxBatchEvents = 20
	api.cfg.TrackMaxInflight = 20
	return api.routes(), store
}

// replay encodes accepted events again in the form they came in.
type replay func(t *testing.T, events []event.Event) *http.Request

func fuzzBody(t *testing.T, contentType string, body []byte, again replay) {
	req := httptest.NewRequest(http.MethodPost, "/track", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", contentType)
	fuzzRequest(t, req, again)
}

var reasonPattern = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

func fuzzRequest(t *testing.T, req *http.Request, again replay) {
	h, store := fuzzAPI()
	rec := serve(h, req)
	switch rec.Code {
	case http.StatusCreated:
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		checkRejection(t, rec)
		if store.called != 0 {
			t.Fatalf("status %d, but the store was called %d times; a rejected request must store nothing", rec.Code, store.called)
		}
		return
	default:
		t.Fatalf("status: got %d, want 201, 400, 413 or 415 (the store always works); body %s", rec.Code, rec.Body)
	}

	ids := readIDs(t, rec)
	if len(store.saved) == 0 {
		t.Fatalf("201 with ids %q, but nothing was saved", ids)
	}
	saved := make([]string, len(store.saved))
	for i, ev := range store.saved {
		saved[i] = ev.ID
		checkAccepted(t, ev)
	}
	// An id sent twice is one event, stored once and answered twice.
	if diff := cmp.Diff(saved, firstOfEach(ids)); diff != "" {
		t.Fatalf("ids of the 201, each once (-saved +answered):\n%s", diff)
	}

	// Round trip: the same events, encoded again, decode to the same values.
	h2, store2 := fuzzAPI()
	rec2 := serve(h2, again(t, store.saved))
	if rec2.Code != http.StatusCreated {
		t.Fatalf("replaying accepted events: got %d, want 201; body %s\nevents %+v", rec2.Code, rec2.Body, store.saved)
	}
	want := store.saved
	got := store2.saved
	if len(got) == len(want) {
		got = append([]event.Event(nil), got...)
		for i := range want {
			if !want[i].Retryable {
				got[i].ID = want[i].ID // a fresh UUIDv7 each time, checked above
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events after a round trip (-first +replayed):\n%s", diff)
	}
}

// firstOfEach is ids without the repeats of an id.
func firstOfEach(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// checkRejection checks that a 4xx is problem+json that says why.
func checkRejection(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	p := readProblem(t, rec, rec.Code)
	if p.Detail == "" {
		t.Fatalf("%d without a detail: %s", rec.Code, rec.Body)
	}
	if rec.Code == http.StatusBadRequest && len(p.Errors) == 0 {
		t.Fatalf("400 without errors: %s", rec.Body)
	}
	for _, e := range p.Errors {
		if !reasonPattern.MatchString(e.Reason) || e.Message == "" {
			t.Fatalf("error entry %+v: want a snake_case reason and a message", e)
		}
		if e.Index != nil && *e.Index < 0 {
			t.Fatalf("error entry %+v: negative index", e)
		}
	}
}

// checkAccepted checks that an accepted event passes every rule again.
func checkAccepted(t *testing.T, ev event.Event) {
	t.Helper()
	if problems := ev.Check(testNow); len(problems) > 0 {
		t.Fatalf("accepted event %+v breaks the rules: %+v", ev, problems)
	}
	if !ev.ReceivedAt.Equal(testNow) {
		t.Fatalf("ReceivedAt: got %v, want %v", ev.ReceivedAt, testNow)
	}
}

// replayPlain encodes events as the plain form: one object, or a batch.
func replayPlain(t *testing.T, events []event.Event) *http.Request {
	objects := make([]map[string]string, len(events))
	for i, ev := range events {
		o := map[string]string{"username": ev.Username, "target": ev.Target, "description": ev.Description}
		if ev.Retryable {
			o["id"] = ev.ID
		}
		if !ev.OccurredAt.IsZero() {
			o["timestamp"] = ev.OccurredAt.Format("2006-01-02T15:04:05.999999999Z07:00")
		}
		objects[i] = o
	}
	var v any = objects
	if len(objects) == 1 {
		v = objects[0]
	}
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/track", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// replayCloudEvents encodes events with sdk-go: one event in the mode ctx
// asks for (binary unless forced structured), several as a batch.
func replayCloudEvents(ctx context.Context) replay {
	return func(t *testing.T, events []event.Event) *http.Request {
		ces := make([]cloudevents.Event, len(events))
		for i, ev := range events {
			if ev.Source == "" {
				t.Fatalf("a CloudEvents request was stored as plain events, without its source+id key: %+v", events)
			}
			ce := cloudevents.NewEvent()
			ce.SetSource(ev.Source)
			ce.SetID(strings.TrimPrefix(ev.ID, ev.Source+" "))
			ce.SetType("dev.tracker.impression")
			if !ev.OccurredAt.IsZero() {
				ce.SetTime(ev.OccurredAt)
			}
			if err := ce.SetData(cloudevents.ApplicationJSON, map[string]string{
				"username": ev.Username, "target": ev.Target, "description": ev.Description,
			}); err != nil {
				t.Fatal(err)
			}
			ces[i] = ce
		}
		var req *http.Request
		var err error
		if len(ces) == 1 {
			req, err = cehttp.NewHTTPRequestFromEvent(ctx, "http://tracker/track", ces[0])
		} else {
			req, err = cehttp.NewHTTPRequestFromEvents(ctx, "http://tracker/track", ces)
		}
		if err != nil {
			t.Fatalf("encoding accepted events %+v: %v", events, err)
		}
		return req
	}
}
