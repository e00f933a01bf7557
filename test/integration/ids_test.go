package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"tracker/test/internal/harness"
)

// One id, one event: these tests send events that share an id, within a
// request and across requests, and read every table back.

// problemOf reads a problem+json answer of the given status: its errors
// as "index:field:reason" ("-" for no index) and, for a 409, its ids.
// Another answer is an error, not the end of the test, so that the test
// goes on to say what was stored.
func problemOf(t *testing.T, r response, status int) (errs, ids []string) {
	t.Helper()
	if r.Status != status || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("got %d %s %s, want %d problem+json", r.Status, r.Header.Get("Content-Type"), r.Body, status)
	}
	var p struct {
		Errors []struct {
			Index   *int
			Field   string
			Reason  string
			Message string
		}
		IDs []string
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	for _, e := range p.Errors {
		index := "-"
		if e.Index != nil {
			index = fmt.Sprint(*e.Index)
		}
		errs = append(errs, index+":"+e.Field+":"+e.Reason)
	}
	return errs, p.IDs
}

// idEvent is a plain event object; ts is its timestamp, none when empty.
func idEvent(id, user, target, description, ts string) string {
	s := `{"id":"` + id + `","username":"` + user + `","target":"` + target + `","description":"` + description + `"`
	if ts != "" {
		s += `,"timestamp":"` + ts + `"`
	}
	return s + "}"
}

// assertNothingStored checks that no table holds a row of ids: not
// events_by_id, not the partitions of users nor those of targets, on the
// days around now and on day. The partitions of users must hold no row
// at all.
func assertNothingStored(t *testing.T, ids, users, targets []string, day time.Time) {
	t.Helper()
	days := append(recentDays(), day)
	for _, id := range ids {
		if r, ok := byID(t, id); ok {
			t.Errorf("events_by_id holds %q: %+v", id, r)
		}
	}
	for _, u := range users {
		if rows := userRows(t, u, days...); len(rows) != 0 {
			t.Errorf("events_by_user of %q holds %d rows: %+v", u, len(rows), rows)
		}
	}
	for _, target := range targets {
		for _, d := range days {
			for _, id := range ids {
				if rows := targetRows(t, target, d, id); len(rows) != 0 {
					t.Errorf("events_by_target of %q holds %d rows of %q: %+v", target, len(rows), id, rows)
				}
			}
		}
	}
}

func TestBatchWithAnEventTwiceStoresItOnce(t *testing.T) {
	t.Parallel()
	for _, ts := range []string{"", "2026-06-07T08:09:10Z"} {
		t.Run("timestamp "+ts, func(t *testing.T) {
			t.Parallel()
			user := uniqueUser(t)
			a, b := "twice-a-"+user, "twice-b-"+user
			target := "https://a.b/twice"
			ids := idsOf(t, postTrack(t, "application/json", "["+
				idEvent(a, user, target, "VIEW", ts)+","+idEvent(b, user, target, "CLICK", ts)+","+idEvent(a, user, target, "VIEW", ts)+"]"))
			if diff := cmp.Diff([]string{a, b, a}, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			var at time.Time
			days := recentDays()
			if ts != "" {
				at, _ = time.Parse(time.RFC3339, ts)
				days = []time.Time{dayOf(at)}
			}
			assertStoredOnce(t, a, row{Username: user, Target: target, Description: "VIEW", OccurredAt: at})
			assertStoredOnce(t, b, row{Username: user, Target: target, Description: "CLICK", OccurredAt: at})
			if rows := userRows(t, user, days...); len(rows) != 2 {
				t.Errorf("events_by_user: got %d rows, want 2: %+v", len(rows), rows)
			}
		})
	}
}

func TestCloudEventsBatchWithAnEventTwiceStoresItOnce(t *testing.T) {
	t.Parallel()
	user := uniqueUser(t)
	e := newCloudEvent(t, "twice", user, false)
	again := e.Clone()
	again.SetID(" twice") // the spaces around an id are dropped: the same key
	req, err := harness.CloudEventRequest(baseURL, "batch", e, again)
	if err != nil {
		t.Fatal(err)
	}
	source := "https://shop.example/" + user
	ids := idsOf(t, do(t, req))
	if diff := cmp.Diff([]string{source + " twice", source + " twice"}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	assertStoredOnce(t, source+" twice", row{Username: user, Target: "https://shop.example/p/twice", Description: "CLICK", Source: source})
}

func TestBatchWithOneIDForTwoEventsStoresNothing(t *testing.T) {
	t.Parallel()
	const ts = "2026-06-07T08:09:10Z"
	day := time.Date(2026, 6, 7, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name             string
		tsA, tsB         string
		otherUser, other bool // the second event's user; its target and description
	}{
		{"other user, no timestamp", "", "", true, false},
		{"other target and description, with timestamps", ts, ts, false, true},
		{"a timestamp and none", ts, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := uniqueUser(t)
			id, good := "dup-"+user, "good-"+user
			userB, targetB, descB := user, "https://a.b/dup", "VIEW"
			if tt.otherUser {
				userB = user + "-b"
			}
			if tt.other {
				targetB, descB = "https://a.b/dup-other-"+user, "CLICK"
			}
			body := "[" + idEvent(good, user, "https://a.b/good-"+user, "VIEW", ts) + "," +
				idEvent(id, user, "https://a.b/dup", "VIEW", tt.tsA) + "," + idEvent(id, userB, targetB, descB, tt.tsB) + "]"
			errs, _ := problemOf(t, postTrack(t, "application/json", body), http.StatusBadRequest)
			if diff := cmp.Diff([]string{"1:id:duplicate_id", "2:id:duplicate_id"}, errs); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			assertNothingStored(t, []string{id, good}, []string{user, userB}, []string{"https://a.b/good-" + user, targetB}, day)
		})
	}
	t.Run("CloudEvents", func(t *testing.T) {
		t.Parallel()
		user := uniqueUser(t)
		e := newCloudEvent(t, "dup", user, false)
		other, err := harness.NewCloudEvent("dup", e.Source(), user, "https://shop.example/p/dup", "VIEW", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		req, err := harness.CloudEventRequest(baseURL, "batch", newCloudEvent(t, "good", user, false), e, other)
		if err != nil {
			t.Fatal(err)
		}
		errs, _ := problemOf(t, do(t, req), http.StatusBadRequest)
		if diff := cmp.Diff([]string{"1:id:duplicate_id", "2:id:duplicate_id"}, errs); diff != "" {
			t.Errorf("errors (-want +got):\n%s", diff)
		}
		source := "https://shop.example/" + user
		assertNothingStored(t, []string{source + " dup", source + " good"}, []string{user},
			[]string{"https://shop.example/p/dup", "https://shop.example/p/good"}, day)
	})
}

// TestIDStoredWithOtherContentIsAConflict stores an event with an id and
// no timestamp, then sends other events under its id, which the claim's
// transaction finds: each is a 409, and the stored rows stay as they were.
func TestIDStoredWithOtherContentIsAConflict(t *testing.T) {
	t.Parallel()
	user := uniqueUser(t)
	id, target := "conflict-"+user, "https://a.b/conflict-"+user
	idsOf(t, postTrack(t, "application/json", idEvent(id, user, target, "VIEW", "")))
	stored, ok := byID(t, id)
	if !ok {
		t.Fatalf("events_by_id has no row for %q", id)
	}
	want := row{Username: user, Target: target, Description: "VIEW", OccurredAt: stored.OccurredAt}

	otherTarget := target + "/other"
	for _, other := range []struct{ name, body string }{
		{"other user", idEvent(id, user+"-x", target, "VIEW", "")},
		{"other target", idEvent(id, user, otherTarget, "VIEW", "")},
		{"other description", idEvent(id, user, target, "CLICK", "")},
	} {
		errs, _ := problemOf(t, postTrack(t, "application/json", other.body), http.StatusConflict)
		if diff := cmp.Diff([]string{"-:id:id_conflict"}, errs); diff != "" {
			t.Errorf("%s: errors (-want +got):\n%s", other.name, diff)
		}
	}
	assertStoredOnce(t, id, want)
	if rows := userRows(t, user+"-x", recentDays()...); len(rows) != 0 {
		t.Errorf("events_by_user of the other user holds %d rows: %+v", len(rows), rows)
	}
	if rows := targetRows(t, otherTarget, dayOf(stored.OccurredAt), id); len(rows) != 0 {
		t.Errorf("events_by_target of the other target holds %d rows: %+v", len(rows), rows)
	}
	if rows := userRows(t, user, recentDays()...); len(rows) != 1 {
		t.Errorf("events_by_user of %q: got %d rows, want 1: %+v", user, len(rows), rows)
	}
	// The same content is a retry, as before.
	if diff := cmp.Diff([]string{id}, idsOf(t, postTrack(t, "application/json", idEvent(id, user, target, "VIEW", "")))); diff != "" {
		t.Errorf("retry ids (-want +got):\n%s", diff)
	}
	assertStoredOnce(t, id, want)
}

// TestConflictInABatchStoresTheOthers: the events of a batch around one
// whose id is stored with other content are stored, and the 409 says
// which was not and every event's id.
func TestConflictInABatchStoresTheOthers(t *testing.T) {
	t.Parallel()
	user := uniqueUser(t)
	id, target := "conflict-"+user, "https://a.b/conflict-"+user
	idsOf(t, postTrack(t, "application/json", idEvent(id, user, target, "VIEW", "")))
	stored, _ := byID(t, id)

	const ts = "2026-06-07T08:09:10Z"
	before, after := "before-"+user, "after-"+user
	body := "[" + idEvent(before, user, target, "CLICK", "") + "," + idEvent(id, user, target, "CLICK", "") + "," +
		`{"username":"` + user + `","target":"` + target + `","description":"CLICK"},` + idEvent(after, user, target, "CLICK", ts) + "]"
	errs, ids := problemOf(t, postTrack(t, "application/json", body), http.StatusConflict)
	if diff := cmp.Diff([]string{"1:id:id_conflict"}, errs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if len(ids) != 4 || ids[0] != before || ids[1] != id || ids[3] != after || len(ids[2]) != 36 {
		t.Fatalf("ids of the 409: got %q, want [%s %s <uuid> %s]", ids, before, id, after)
	}
	assertStoredOnce(t, id, row{Username: user, Target: target, Description: "VIEW", OccurredAt: stored.OccurredAt})
	assertStoredOnce(t, before, row{Username: user, Target: target, Description: "CLICK"})
	assertStoredOnce(t, ids[2], row{Username: user, Target: target, Description: "CLICK"})
	assertStoredOnce(t, after, row{Username: user, Target: target, Description: "CLICK", OccurredAt: time.Date(2026, 6, 7, 8, 9, 10, 0, time.UTC)})
}

// TestCloudEventStoredWithOtherDataIsAConflict is a producer that reuses
// a source and id for another event.
func TestCloudEventStoredWithOtherDataIsAConflict(t *testing.T) {
	t.Parallel()
	user := uniqueUser(t)
	send := func(e cloudevents.Event) response {
		req, err := harness.CloudEventRequest(baseURL, "binary", e)
		if err != nil {
			t.Fatal(err)
		}
		return do(t, req)
	}
	e := newCloudEvent(t, "reused", user, false)
	idsOf(t, send(e))
	source := "https://shop.example/" + user
	stored, _ := byID(t, source+" reused")
	other, err := harness.NewCloudEvent("reused", source, user, "https://shop.example/p/reused", "VIEW", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	errs, _ := problemOf(t, send(other), http.StatusConflict)
	if diff := cmp.Diff([]string{"-:id:id_conflict"}, errs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	assertStoredOnce(t, source+" reused", row{Username: user, Target: "https://shop.example/p/reused", Description: "CLICK", Source: source, OccurredAt: stored.OccurredAt})
}

// TestIDWithTimestampIsWrittenWithoutARead holds what the README says of
// events with an id and a timestamp: they are plain INSERTs, so another
// event under a stored id is answered 201; events_by_id then holds the
// later one, while events_by_user and events_by_target keep the rows of
// both wherever their keys differ.
func TestIDWithTimestampIsWrittenWithoutARead(t *testing.T) {
	t.Parallel()
	user := uniqueUser(t)
	id, target := "timed-"+user, "https://a.b/timed-"+user
	first := time.Date(2026, 6, 7, 8, 9, 10, 0, time.UTC)
	second := first.Add(time.Hour)
	idsOf(t, postTrack(t, "application/json", idEvent(id, user, target, "VIEW", first.Format(time.RFC3339))))
	idsOf(t, postTrack(t, "application/json", idEvent(id, user+"-b", target, "CLICK", second.Format(time.RFC3339))))

	got, _ := byID(t, id)
	if diff := cmp.Diff(row{EventID: id, Username: user + "-b", Target: target, Description: "CLICK", OccurredAt: second}, got); diff != "" {
		t.Errorf("events_by_id (-want +got):\n%s", diff)
	}
	if n := len(userRows(t, user, dayOf(first))); n != 1 {
		t.Errorf("events_by_user of the first user: got %d rows, want 1", n)
	}
	if n := len(userRows(t, user+"-b", dayOf(first))); n != 1 {
		t.Errorf("events_by_user of the second user: got %d rows, want 1", n)
	}
	if n := len(targetRows(t, target, dayOf(first), id)); n != 2 {
		t.Errorf("events_by_target: got %d rows of %q, want 2", n, id)
	}
	// A retry without a timestamp reads events_by_id, which holds the
	// second event: the first one, sent again, is a conflict now.
	errs, _ := problemOf(t, postTrack(t, "application/json", idEvent(id, user, target, "VIEW", "")), http.StatusConflict)
	if diff := cmp.Diff([]string{"-:id:id_conflict"}, errs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}
