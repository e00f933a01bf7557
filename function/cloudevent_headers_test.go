package function

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Binary-mode CloudEvents carry their attributes in headers, which may hold
// any byte. FuzzBinaryCloudEvent found both cases below.

// TestUnknownSpecversionIsRejected: a request that says it is a binary-mode
// CloudEvent of a version sdk-go cannot read must not be stored as plain
// JSON, where it would get a new id and be stored again on every retry.
func TestUnknownSpecversionIsRejected(t *testing.T) {
	t.Parallel()
	data := `{"username":"J","target":"https://a.b/","description":"VIEW"}`
	for _, version := range []string{"9.9", "", "1.0 "} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			rec := post(t, newTestHandler(store), "application/json", data,
				"ce-specversion", version, "ce-id", "x1", "ce-source", "/web", "ce-type", "impression")
			p := readProblem(t, rec, http.StatusBadRequest)
			if diff := cmp.Diff([]string{"-:specversion:unsupported_specversion"}, fieldsOf(p)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if store.called != 0 {
				t.Errorf("store called %d times, want 0", store.called)
			}
		})
	}
}

// TestCloudEventKeyMustBeUTF8: a ce-id or ce-source header that is not
// UTF-8 is the client's fault (400). Accepted, it reached Cassandra, which
// refuses such text, and the client got a 500. sdk-go percent-encodes odd
// bytes in a hierarchical source, which is then valid, but keeps those of
// an opaque URI ("a:\xff") as they came.
func TestCloudEventKeyMustBeUTF8(t *testing.T) {
	t.Parallel()
	data := `{"username":"J","target":"https://a.b/","description":"VIEW"}`
	for _, tc := range []struct {
		name, id, source string
		want             []string
	}{
		{"id", "a\x81", "/web", []string{"-:id:invalid_utf8"}},
		{"opaque source", "0", "a:\xff", []string{"-:source:invalid_utf8"}},
		{"both", "\xc3", "urn:\xfe", []string{"-:source:invalid_utf8", "-:id:invalid_utf8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			rec := post(t, newTestHandler(store), "application/json", data,
				"ce-specversion", "1.0", "ce-id", tc.id, "ce-source", tc.source, "ce-type", "impression")
			p := readProblem(t, rec, http.StatusBadRequest)
			if diff := cmp.Diff(tc.want, fieldsOf(p)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if store.called != 0 {
				t.Errorf("store called %d times, want 0", store.called)
			}
		})
	}

	ids := readIDs(t, post(t, newTestHandler(&fakeStore{}), "application/json", data,
		"ce-specversion", "1.0", "ce-id", "x1", "ce-source", "/w\xffeb", "ce-type", "impression"))
	if diff := cmp.Diff([]string{"/w%FFeb x1"}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}
