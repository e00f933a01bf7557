package function

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// apiError is a failure the client is told about. It is the one type that
// carries an HTTP status; writeError turns it into problem+json.
type apiError struct {
	// Status is the HTTP status code.
	Status int
	// Detail is a client-safe sentence; never a driver's error text.
	Detail string
	// Errors lists per-field problems, for 400.
	Errors []FieldError
	// Allow is the Allow header of a 405.
	Allow string
	// RetryAfter, in seconds, is sent with 503.
	RetryAfter int
}

func (e *apiError) Error() string { return e.Detail }

func invalid(detail string, errs []FieldError) *apiError {
	return &apiError{Status: http.StatusBadRequest, Detail: detail, Errors: errs}
}

func unavailable(detail string, retryAfter int) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Detail: detail, RetryAfter: retryAfter}
}

// problem is an RFC 9457 problem details body with an errors extension.
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// writeError writes e as application/problem+json.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	if e.Allow != "" {
		h.Set("Allow", e.Allow)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(problem{
		Type:   "about:blank",
		Title:  http.StatusText(e.Status),
		Status: e.Status,
		Detail: e.Detail,
		Errors: e.Errors,
	})
}

// writeJSON writes v as application/json with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
