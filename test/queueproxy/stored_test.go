package queueproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"tracker/test/internal/harness"
)

// TestStoredThroughQueueProxy sends every input form through the
// queue-proxy and reads each event back: the proxy hop passes bodies,
// CloudEvents headers and the function's answers through unchanged.
func TestStoredThroughQueueProxy(t *testing.T) {
	ks := harness.Keyspace(t, suite.Session, "qp")
	qp := startPod(t, suite.Hosts, ks)
	client := newClient(4)
	run := fmt.Sprint(time.Now().UnixNano())
	user, target := "qp-user-"+run, "https://qp.example/"+run
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

	type sent struct {
		name string
		req  func() (*http.Request, error)
		ids  []string
	}
	plain := func(body any) func() (*http.Request, error) {
		return func() (*http.Request, error) {
			b, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			req, err := http.NewRequest(http.MethodPost, qp.URL+"/track", bytes.NewReader(b))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		}
	}
	ce := func(mode string, ids ...string) func() (*http.Request, error) {
		return func() (*http.Request, error) {
			var events []cloudevents.Event
			for _, id := range ids {
				e, err := harness.NewCloudEvent(id, "https://qp.example/source", user, target, "CLICK", at)
				if err != nil {
					return nil, err
				}
				events = append(events, e)
			}
			return harness.CloudEventRequest(qp.URL, mode, events...)
		}
	}
	withTime := func(id string) map[string]string {
		e := event(id, user, target)
		e["timestamp"] = at.Format(time.RFC3339)
		return e
	}
	cases := []sent{
		{"plain", plain(withTime(run + "-p")), []string{run + "-p"}},
		{"plain batch", plain([]map[string]string{withTime(run + "-b1"), withTime(run + "-b2")}), []string{run + "-b1", run + "-b2"}},
		{"binary CloudEvent", ce("binary", run+"-cb"), []string{"https://qp.example/source " + run + "-cb"}},
		{"structured CloudEvent", ce("structured", run+"-cs"), []string{"https://qp.example/source " + run + "-cs"}},
		{"CloudEvents batch", ce("batch", run+"-cx1", run+"-cx2"), []string{"https://qp.example/source " + run + "-cx1", "https://qp.example/source " + run + "-cx2"}},
	}
	var all []string
	for _, c := range cases {
		req, err := c.req()
		if err != nil {
			t.Fatal(err)
		}
		r := do(client, req, result{})
		if r.Status != http.StatusCreated {
			t.Errorf("%s: got %d %q (%v), want 201", c.name, r.Status, r.Body, r.Err)
			continue
		}
		var answer struct{ IDs []string }
		if err := json.Unmarshal([]byte(r.Body), &answer); err != nil {
			t.Errorf("%s: answer %q: %v", c.name, r.Body, err)
		} else if diff := cmp.Diff(c.ids, answer.IDs); diff != "" {
			t.Errorf("%s: ids (-want +got):\n%s", c.name, diff)
		}
		all = append(all, c.ids...)
	}

	// An invalid event gets the function's own problem, not the proxy's.
	r := post(client, qp.URL, map[string]string{"id": run + "-bad", "username": user, "target": target, "description": "HOVER"})
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "invalid_description") {
		t.Errorf("an invalid event: got %d %q (%v), want 400 naming invalid_description", r.Status, r.Body, r.Err)
	}

	found, err := harness.Tables{Session: suite.Session, Keyspace: ks}.ByID(readContext(t), append(all, run+"-bad")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range all {
		row, ok := found[id]
		if !ok {
			t.Errorf("%s: answered 201 through the queue-proxy, not in events_by_id", id)
			continue
		}
		if row.Username != user || row.Target != target || !row.OccurredAt.Equal(at) {
			t.Errorf("%s: stored %+v, want user %q, target %q, occurred at %s", id, row, user, target, at)
		}
	}
	if _, ok := found[run+"-bad"]; ok {
		t.Errorf("the invalid event was stored")
	}
}
