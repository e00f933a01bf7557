package contract

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestCheckerCatchesViolations feeds the checker answers that break the
// description, and some that keep it: a checker that passes everything
// would prove nothing.
func TestCheckerCatchesViolations(t *testing.T) {
	t.Parallel()
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	problem := http.Header{"Content-Type": {"application/problem+json"}}
	with := func(h http.Header, kv ...string) http.Header {
		h = h.Clone()
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name         string
		method, path string
		status       int
		header       http.Header
		body         string
		ok           bool
	}{
		{"201 with ids", "POST", "/track", 201, http.Header{"Content-Type": {"application/json"}}, `{"ids":["a"]}`, true},
		{"201 without ids", "POST", "/track", 201, http.Header{"Content-Type": {"application/json"}}, `{}`, false},
		{"201 with an extra field", "POST", "/track", 201, http.Header{"Content-Type": {"application/json"}}, `{"ids":["a"],"x":1}`, false},
		{"400 problem", "POST", "/track", 400, problem, `{"type":"about:blank","title":"Bad Request","status":400,"detail":"d","errors":[{"field":"description","reason":"invalid_description","message":"m"}]}`, true},
		{"400 with a reason not in snake_case", "POST", "/track", 400, problem, `{"type":"about:blank","title":"Bad Request","status":400,"errors":[{"field":"f","reason":"Bad Reason","message":"m"}]}`, false},
		{"400 as plain JSON", "POST", "/track", 400, http.Header{"Content-Type": {"application/json"}}, `{"error":"x"}`, false},
		{"503 with Retry-After", "POST", "/track", 503, with(problem, "Retry-After", "1"), `{"type":"about:blank","title":"Service Unavailable","status":503}`, true},
		{"503 without Retry-After", "POST", "/track", 503, problem, `{"type":"about:blank","title":"Service Unavailable","status":503}`, false},
		{"an undeclared status", "POST", "/track", 418, problem, `{"type":"about:blank","title":"I'm a teapot","status":418}`, false},
		{"GET / ok", "GET", "/", 200, http.Header{"Content-Type": {"application/json"}}, `{"status":"ok"}`, true},
		{"GET / not ok", "GET", "/", 200, http.Header{"Content-Type": {"application/json"}}, `{"status":"fine"}`, false},
		{"405 with Allow", "GET", "/track", 405, with(problem, "Allow", "OPTIONS, POST"), `{"type":"about:blank","title":"Method Not Allowed","status":405}`, true},
		{"405 with an Allow short of a method", "GET", "/track", 405, with(problem, "Allow", "POST"), `{"type":"about:blank","title":"Method Not Allowed","status":405}`, false},
		{"405 with a wrong Allow", "GET", "/track", 405, with(problem, "Allow", "POST, GET"), `{"type":"about:blank","title":"Method Not Allowed","status":405}`, false},
		{"200 to an undeclared method", "DELETE", "/track", 200, http.Header{"Content-Type": {"application/json"}}, `{}`, false},
		{"404 problem", "GET", "/nope", 404, problem, `{"type":"about:blank","title":"Not Found","status":404,"detail":"no such path"}`, true},
		{"404 as text", "GET", "/nope", 404, http.Header{"Content-Type": {"text/plain"}}, `404 page not found`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Check(httptest.NewRequest(tt.method, tt.path, nil), tt.status, tt.header, []byte(tt.body))
			if got := err == nil; got != tt.ok {
				t.Errorf("Check: got error %v, want ok %t", err, tt.ok)
			}
		})
	}
}
