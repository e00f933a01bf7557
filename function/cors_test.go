package function

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tracker/function/store"

	"github.com/google/go-cmp/cmp"
)

// corsHandler is the API with TRACK_CORS_ORIGINS set to origins.
func corsHandler(store Store, origins ...string) http.Handler {
	api := newTestAPI(store)
	api.cfg.TrackCORSOrigins = origins
	return api.routes()
}

func corsRequest(method, path, body string, header ...string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// corsHeaders are the response headers that CORS is about.
func corsHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for _, name := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Allow-Methods",
		"Access-Control-Allow-Headers", "Access-Control-Max-Age", "Vary", "Allow"} {
		if v := strings.Join(h.Values(name), ", "); v != "" {
			out[name] = v
		}
	}
	return out
}

// preflightVary is the Vary of every preflight answer: it depends on the
// Origin and on the method and headers the browser asks for.
const preflightVary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"

func TestCORS(t *testing.T) {
	t.Parallel()
	const shop, other = "https://shop.example", "https://evil.example"
	preflightHeaders := []string{"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,ce-id"}
	tests := []struct {
		name    string
		origins []string
		req     *http.Request
		status  int
		want    map[string]string
		stored  bool
	}{
		{"any origin: POST", []string{"*"}, corsRequest("POST", "/track", validJSON, "Origin", other, "Content-Type", "application/json"),
			http.StatusCreated, map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"}, true},
		{"any origin: preflight", []string{"*"}, corsRequest("OPTIONS", "/track", "", append([]string{"Origin", other}, preflightHeaders...)...),
			http.StatusNoContent, map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After",
				"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "content-type,ce-id", "Access-Control-Max-Age": "7200",
				"Allow": "OPTIONS, POST", "Vary": preflightVary}, false},
		{"OPTIONS that is no preflight", []string{"*"}, corsRequest("OPTIONS", "/track", ""),
			http.StatusNoContent, map[string]string{"Allow": "OPTIONS, POST", "Vary": preflightVary}, false},
		{"listed origin: POST", []string{shop}, corsRequest("POST", "/track", validJSON, "Origin", shop),
			http.StatusCreated, map[string]string{"Access-Control-Allow-Origin": shop, "Access-Control-Expose-Headers": "Retry-After", "Vary": "Origin"}, true},
		{"listed origin: preflight", []string{"http://localhost:3000", shop}, corsRequest("OPTIONS", "/track", "", append([]string{"Origin", shop}, preflightHeaders...)...),
			http.StatusNoContent, map[string]string{"Access-Control-Allow-Origin": shop, "Access-Control-Expose-Headers": "Retry-After", "Vary": preflightVary,
				"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "content-type,ce-id", "Access-Control-Max-Age": "7200",
				"Allow": "OPTIONS, POST"}, false},
		{"no Origin (not a browser): POST", []string{shop}, corsRequest("POST", "/track", validJSON),
			http.StatusCreated, map[string]string{"Vary": "Origin"}, true},
		{"health from an unlisted origin", []string{shop}, corsRequest("GET", "/", "", "Origin", other),
			http.StatusOK, map[string]string{"Vary": "Origin"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			rec := serve(corsHandler(store, tt.origins...), tt.req)
			if rec.Code != tt.status {
				t.Fatalf("status: got %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if diff := cmp.Diff(tt.want, corsHeaders(rec.Header())); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if got := len(store.saved) > 0; got != tt.stored {
				t.Errorf("stored: got %t, want %t", got, tt.stored)
			}
		})
	}
}

// TestCORSRefusesUnlistedOrigins: with a list, a page of another origin
// gets 403 for its preflight and its POST, and nothing is stored. (A
// browser sends Origin with every cross-origin POST, sendBeacon's too.)
func TestCORSRefusesUnlistedOrigins(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"POST", "OPTIONS"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			rec := serve(corsHandler(store, "https://shop.example"),
				corsRequest(method, "/track", validJSON, "Origin", "https://shop.example.evil", "Access-Control-Request-Method", "POST"))
			p := readProblem(t, rec, http.StatusForbidden)
			if diff := cmp.Diff([]string{"-:Origin:origin_not_allowed"}, fieldsOf(p)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("Access-Control-Allow-Origin: got %q, want none", got)
			}
			if store.called != 0 {
				t.Errorf("store called %d times, want 0", store.called)
			}
		})
	}
}

// TestCORSOnErrors: a page can read a refusal and its Retry-After.
func TestCORSOnErrors(t *testing.T) {
	t.Parallel()
	store := &fakeStore{err: fmt.Errorf("%w: timeout", store.ErrUnavailable)}
	rec := serve(corsHandler(store, "*"), corsRequest("POST", "/track", validJSON, "Origin", "https://shop.example"))
	readProblem(t, rec, http.StatusServiceUnavailable)
	want := map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"}
	if diff := cmp.Diff(want, corsHeaders(rec.Header())); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Errorf("no Retry-After")
	}
}

func TestValidOrigin(t *testing.T) {
	t.Parallel()
	for o, want := range map[string]bool{
		"https://shop.example": true, "http://localhost:3000": true, "https://[::1]:8443": true,
		"https://shop.example/": false, "shop.example": false, "https://": false, "https://u@shop.example": false,
		"https://shop.example?x": false, "https://shop.example#x": false, "ftp://shop.example": false, "null": false,
		"https://shop.example:": false,
	} {
		if got := validOrigin(o); got != want {
			t.Errorf("validOrigin(%q): got %t, want %t", o, got, want)
		}
	}
}
