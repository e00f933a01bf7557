package function

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"tracker/function/event"
	"tracker/function/store"
	"tracker/function/telemetry"
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
	// Reason is the snake_case reason that metrics and the log give the
	// answer: the first problem's reason for a 400, else the status's
	// (too_large, unsupported_media_type, timeout, internal, ...).
	Reason string
	// Err is the error behind a 5xx, for the log; never shown.
	Err error
	// IDs are, for a 409, the ids of every event of the request in its
	// order, as a 201 gives them; Stored is how many of those events
	// were stored: all but those Errors name.
	IDs    []string
	Stored int
}

func (e *apiError) Error() string { return e.Detail }

func unavailable(detail, reason string, retryAfter int) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Detail: detail, Reason: reason, RetryAfter: retryAfter}
}

// problemOf turns an error of a request into what the client is told. A
// store error becomes a 503 when a retry may cure it, its reason the kind
// of failure; any other error is an internal fault, a 500. The error
// itself stays in Err, for the log.
func problemOf(err error) *apiError {
	var (
		apiErr  *apiError
		invalid *event.InvalidError
		tooMany *event.TooManyError
	)
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &invalid):
		reason := "invalid"
		if len(invalid.Errors) > 0 {
			reason = invalid.Errors[0].Reason
		}
		return &apiError{Status: http.StatusBadRequest, Detail: invalid.Detail, Errors: invalid.Errors, Reason: reason}
	case errors.As(err, &tooMany):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Detail: tooMany.Error(), Reason: "too_large"}
	case errors.Is(err, store.ErrUnavailable):
		reason := store.ErrorKind(err)
		if !slices.Contains(telemetry.FailedReasons, reason) {
			reason = "unavailable"
		}
		e := unavailable("the events were not stored; retry later with the same ids", reason, 1)
		e.Err = err
		return e
	}
	return &apiError{Status: http.StatusInternalServerError, Detail: "the events were not stored because of an internal error; retry later with the same ids",
		Reason: "internal", Err: err}
}

// conflictProblem answers a request whose events at the indexes conflicts
// were not stored because their id is stored already with other content:
// 409 id_conflict, naming each by its index in a batch. The other events
// were stored, and ids, every event's id in request order, tells the
// client the ids of those too.
func conflictProblem(ids []string, conflicts []int, batch bool) *apiError {
	e := &apiError{Status: http.StatusConflict, Reason: "id_conflict", IDs: ids, Stored: len(ids) - len(conflicts)}
	for _, i := range conflicts {
		fe := event.FieldError{Field: "id", Reason: "id_conflict",
			Message: fmt.Sprintf("%q is the id of another event stored already (another username, target, description or source); one id is one event", ids[i])}
		if batch {
			fe.Index = &i
		}
		e.Errors = append(e.Errors, fe)
	}
	if batch {
		e.Detail = fmt.Sprintf("%d of %d events have an id that is stored already with other content; they were not stored, the others were", len(conflicts), len(ids))
	} else {
		e.Detail = "the event's id is stored already with other content; it was not stored"
	}
	return e
}

// problem is an RFC 9457 problem details body with an errors extension.
type problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail,omitempty"`
	Errors []event.FieldError `json:"errors,omitempty"`
	// IDs are a 409's ids of the request's events (apiError.IDs).
	IDs []string `json:"ids,omitempty"`
}

// writeProblem writes e as application/problem+json, and tells the
// request's telemetry its reason.
func writeProblem(w http.ResponseWriter, r *http.Request, e *apiError) {
	telemetry.RequestFrom(r.Context()).Problem(e.Reason, e.Err)
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
		IDs:    e.IDs,
	})
}

// writeJSON writes v as application/json with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
