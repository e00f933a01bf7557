package function

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"tracker/function/event"
	"tracker/function/store"
)

// This file is the one place where errors become HTTP answers: the event
// decoders' and the store's typed errors, and the API's own refusals.

// apiError is a failure the client is told about. It is the one type that
// carries an HTTP status; writeProblem turns it into problem+json.
type apiError struct {
	// Status is the HTTP status code.
	Status int
	// Detail is a client-safe sentence; never a driver's error text.
	Detail string
	// Errors lists per-field problems, for 400 and 403.
	Errors []event.FieldError
	// Allow is the Allow header of a 405.
	Allow string
	// RetryAfter, in seconds, is sent with 503.
	RetryAfter int
}

func (e *apiError) Error() string { return e.Detail }

func unavailable(detail string, retryAfter int) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Detail: detail, RetryAfter: retryAfter}
}

// problemOf turns an error of a request into what the client is told,
// and logs what only the operator may see. events is how many events the
// request carried, for the log.
func problemOf(log *slog.Logger, r *http.Request, err error, events int) *apiError {
	var (
		apiErr   *apiError
		invalid  *event.InvalidError
		tooMany  *event.TooManyError
		answered *apiError
	)
	switch {
	case errors.As(err, &apiErr):
		answered = apiErr
	case errors.As(err, &invalid):
		answered = &apiError{Status: http.StatusBadRequest, Detail: invalid.Detail, Errors: invalid.Errors}
	case errors.As(err, &tooMany):
		answered = &apiError{Status: http.StatusRequestEntityTooLarge, Detail: tooMany.Error()}
	case errors.Is(err, store.ErrUnavailable):
		log.Warn("events not stored", "events", events, "error", err)
		return unavailable("the events were not stored; retry later with the same ids", 1)
	default:
		log.Error("events not stored", "events", events, "error", err)
		return &apiError{Status: http.StatusInternalServerError, Detail: "the events were not stored because of an internal error; retry later with the same ids"}
	}
	log.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "status", answered.Status, "detail", answered.Detail)
	return answered
}

// problem is an RFC 9457 problem details body with an errors extension.
type problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail,omitempty"`
	Errors []event.FieldError `json:"errors,omitempty"`
}

// writeProblem writes e as application/problem+json.
func writeProblem(w http.ResponseWriter, e *apiError) {
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
