package function

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"tracker/function/event"
)

// v7At is a UUIDv7 made at t, with fixed random bits.
func v7At(t time.Time) string {
	var u uuid.UUID
	ms := t.UnixMilli()
	for i := range 6 {
		u[i] = byte(ms >> (40 - 8*i))
	}
	u[6], u[7] = 0x70|0x0a, 0xbc           // version 7
	u[8], u[9] = 0x80|0x1d, 0xef           // variant 10
	copy(u[10:], []byte{1, 2, 3, 4, 5, 6}) // the rest
	return u.String()
}

// TestUntimedV7IDGivesTheTime: an event with a UUIDv7 id and no timestamp
// happened when its id was made, so every delivery of it writes the same
// rows without a claim; a timestamp, when given, wins; other ids keep no
// time (the store's claim settles it).
func TestUntimedV7IDGivesTheTime(t *testing.T) {
	t.Parallel()
	made := time.Date(2026, 5, 4, 12, 29, 58, 123e6, time.UTC)
	v7 := v7At(made)
	if u := uuid.MustParse(v7); u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("test id %s is not a UUIDv7", v7)
	}
	stamp := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	impression := `"username":"u","target":"https://shop.example/p/1","description":"VIEW"`
	for _, tc := range []struct {
		name, body string
		want       time.Time
	}{
		{"v7 without timestamp", fmt.Sprintf(`{"id":%q,%s}`, v7, impression), made},
		{"v7 with timestamp", fmt.Sprintf(`{"id":%q,"timestamp":%q,%s}`, v7, stamp.Format(time.RFC3339), impression), stamp},
		{"v4 without timestamp", fmt.Sprintf(`{"id":%q,%s}`, "0b6f2a58-2c1e-4b6e-9d3e-6a1f2b3c4d5e", impression), time.Time{}},
		{"v7 without hyphens", fmt.Sprintf(`{"id":%q,%s}`, strings.ReplaceAll(v7, "-", ""), impression), time.Time{}},
		{"version 7 with another variant", fmt.Sprintf(`{"id":%q,%s}`, v7[:19]+"c"+v7[20:], impression), time.Time{}},
		{"other id", fmt.Sprintf(`{"id":"evt-1",%s}`, impression), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			readIDs(t, post(t, newTestHandler(store), "application/json", tc.body))
			if len(store.saved) != 1 {
				t.Fatalf("saved %d events, want 1", len(store.saved))
			}
			if got := store.saved[0].OccurredAt; !got.Equal(tc.want) {
				t.Errorf("OccurredAt: got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestUpperCaseV7Time: hex digits of either case; the time is the id's
// first 48 bits, Unix milliseconds.
func TestUpperCaseV7Time(t *testing.T) {
	t.Parallel()
	id := "0195f3a2-ABCD-7ABC-9DEF-0A0B0C0D0E0F"
	store := &fakeStore{}
	readIDs(t, post(t, newTestHandler(store), "application/json", fmt.Sprintf(`{"id":%q,"username":"u","target":"https://shop.example/p/1","description":"VIEW"}`, id)))
	want := time.UnixMilli(0x0195f3a2abcd).UTC()
	if got := store.saved[0].OccurredAt; !got.Equal(want) {
		t.Errorf("OccurredAt: got %s, want %s", got, want)
	}
}

// TestV7IDTooFarAhead: a UUIDv7 id's time obeys a timestamp's rules; one
// made more than a day ahead of the function's clock is a 400 naming the
// id, and the good events of the batch are not lost to a 5xx.
func TestV7IDTooFarAhead(t *testing.T) {
	t.Parallel()
	ahead := v7At(testNow.Add(25 * time.Hour))
	body := fmt.Sprintf(`[{"id":"ok-1","username":"u","target":"https://shop.example/p/1","description":"VIEW"},{"id":%q,"username":"u","target":"https://shop.example/p/1","description":"VIEW"}]`, ahead)
	store := &fakeStore{}
	p := readProblem(t, post(t, newTestHandler(store), "application/json", body), http.StatusBadRequest)
	if diff := cmp.Diff([]string{"1:id:invalid_id"}, fieldsOf(p)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	// Within the skew it is accepted, and keeps its own time.
	near := testNow.Add(23 * time.Hour).Truncate(time.Millisecond)
	readIDs(t, post(t, newTestHandler(store), "application/json", fmt.Sprintf(`{"id":%q,"username":"u","target":"https://shop.example/p/1","description":"VIEW"}`, v7At(near))))
	if got := store.saved[len(store.saved)-1].OccurredAt; !got.Equal(near) {
		t.Errorf("OccurredAt: got %s, want %s", got, near)
	}
}

// TestUntimedV7CloudEvent: a CloudEvent without time whose id is a
// UUIDv7 takes the id's time, in every mode.
func TestUntimedV7CloudEvent(t *testing.T) {
	t.Parallel()
	made := time.Date(2026, 5, 4, 12, 0, 1, 5e6, time.UTC)
	data := `{"username":"Jane","target":"https://shop.example/p/1","description":"CLICK"}`
	for _, mode := range []string{"binary", "structured", "batch"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ce := newCloudEvent(t, v7At(made), data)
			ce.SetTime(time.Time{})
			store := &fakeStore{}
			readIDs(t, serve(newTestHandler(store), ceRequest(t, mode, ce)))
			if len(store.saved) != 1 {
				t.Fatalf("saved %d events, want 1", len(store.saved))
			}
			want := event.Event{ID: "https://shop.example/pages " + v7At(made), Retryable: true, Source: "https://shop.example/pages",
				Username: "Jane", Target: "https://shop.example/p/1", Description: "CLICK", OccurredAt: made, ReceivedAt: testNow}
			if diff := cmp.Diff(want, store.saved[0]); diff != "" {
				t.Errorf("saved (-want +got):\n%s", diff)
			}
		})
	}
}
