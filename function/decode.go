package function

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// plainEvent is the JSON form of one impression. Pointers tell a missing
// field from an empty one.
type plainEvent struct {
	ID          *string `json:"id"`
	Timestamp   *string `json:"timestamp"`
	Username    *string `json:"username"`
	Target      *string `json:"target"`
	Description *string `json:"description"`
}

// decodePlain reads the plain JSON form: one object or an array of them.
// Every event is checked before any is returned, so a batch with one bad
// event is rejected whole and names each bad index and field.
func decodePlain(body []byte, now time.Time, maxEvents int) ([]Event, error) {
	if err := checkBody(body); err != nil {
		return nil, err
	}
	var fe fieldErrors
	switch firstByte(body) {
	case '{':
		var ev Event
		if decodePlainEvent(&fe, nil, body, now, &ev) {
			return []Event{ev}, nil
		}
		return nil, invalid("the event is invalid", fe)
	case '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, invalid("the body is not valid JSON", []FieldError{jsonFieldError(nil, err)})
		}
		if err := checkBatchSize(len(raws), maxEvents); err != nil {
			return nil, err
		}
		events := make([]Event, len(raws))
		for i, raw := range raws {
			decodePlainEvent(&fe, &i, raw, now, &events[i])
		}
		if len(fe) > 0 {
			return nil, invalid(fmt.Sprintf("%d of %d events are invalid; nothing was stored", countIndexes(fe), len(raws)), fe)
		}
		return events, nil
	default:
		return nil, invalid("the body must be a JSON object or an array of objects", []FieldError{{
			Field: "", Reason: "invalid_json", Message: "expected { or [ as the first character",
		}})
	}
}

// decodePlainEvent decodes and validates one object into ev, adding every
// problem to fe. It reports whether the event is valid.
func decodePlainEvent(fe *fieldErrors, index *int, raw []byte, now time.Time, ev *Event) bool {
	before := len(*fe)
	var p plainEvent
	if err := decodeStrict(raw, &p); err != nil {
		*fe = append(*fe, jsonFieldError(index, err))
		return false
	}
	present := func(field string) bool {
		switch field {
		case "username":
			return p.Username != nil
		case "target":
			return p.Target != nil
		default:
			return p.Description != nil
		}
	}
	validateImpression(fe, index, deref(p.Username), deref(p.Target), deref(p.Description), present)

	*ev = Event{
		Username:    deref(p.Username),
		Target:      deref(p.Target),
		Description: deref(p.Description),
		ReceivedAt:  now,
	}
	if p.ID != nil {
		if why := checkID(*p.ID); why != "" {
			fe.add(index, "id", "invalid_id", "%s", why)
		}
		ev.ID, ev.Retryable = *p.ID, true
	} else {
		ev.ID = newID(now)
	}
	if p.Timestamp != nil {
		t, err := time.Parse(time.RFC3339Nano, *p.Timestamp)
		switch {
		case err != nil:
			fe.add(index, "timestamp", "invalid_timestamp", "must be an RFC 3339 time such as 2006-01-02T15:04:05Z, got %q", *p.Timestamp)
		case checkOccurredAt(t, now) != "":
			fe.add(index, "timestamp", "invalid_timestamp", "%s", checkOccurredAt(t, now))
		default:
			ev.OccurredAt = t.UTC()
		}
	}
	return len(*fe) == before
}

// newID makes a server-side event id: a UUIDv7, ordered by time.
func newID(now time.Time) string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does; a v4 from
		// the same source would fail too, so fall back to the clock.
		return fmt.Sprintf("t%d", now.UnixNano())
	}
	return id.String()
}

// checkBody rejects bodies that no decoder should see.
func checkBody(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("the body is empty", []FieldError{{Reason: "empty_body", Message: "send a JSON object or array"}})
	}
	if !utf8.Valid(body) {
		return errInvalidUTF8
	}
	return nil
}

var errInvalidUTF8 = invalid("the body is not valid UTF-8", []FieldError{{Reason: "invalid_utf8", Message: "the body must be UTF-8 encoded JSON"}})

func checkBatchSize(n, maxEvents int) error {
	switch {
	case n == 0:
		return invalid("the batch is empty", []FieldError{{Reason: "empty_batch", Message: "send at least one event"}})
	case n > maxEvents:
		return &apiError{Status: 413, Detail: fmt.Sprintf("the batch has %d events; at most %d are accepted in one request", n, maxEvents)}
	}
	return nil
}

// decodeStrict decodes one JSON value into v, rejecting unknown fields and
// anything after the value.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errTrailingData
	}
	if _, err := dec.Token(); err == nil {
		return errTrailingData
	}
	return nil
}

var errTrailingData = errors.New("trailing data after the JSON value")

// jsonFieldError turns an encoding/json error into a client-safe FieldError.
func jsonFieldError(index *int, err error) FieldError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return FieldError{Index: index, Reason: "invalid_type", Message: fmt.Sprintf("must be a JSON object, got %s", typeErr.Value)}
		}
		return FieldError{Index: index, Field: typeErr.Field, Reason: "invalid_type",
			Message: fmt.Sprintf("must be a %s, got %s", jsonTypeName(typeErr.Type.String()), typeErr.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return FieldError{Index: index, Field: name, Reason: "unknown_field", Message: "is not a known field"}
	case errors.As(err, &syntaxErr):
		return FieldError{Index: index, Reason: "invalid_json", Message: fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(syntaxErr.Error(), "json: "), syntaxErr.Offset)}
	case errors.Is(err, errTrailingData):
		return FieldError{Index: index, Reason: "trailing_data", Message: "only one JSON value is allowed"}
	default:
		return FieldError{Index: index, Reason: "invalid_json", Message: "the JSON value is incomplete or malformed"}
	}
}

func jsonTypeName(goType string) string {
	if strings.HasSuffix(goType, "string") {
		return "string"
	}
	return "JSON " + goType
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func countIndexes(fe fieldErrors) int {
	seen := map[int]bool{}
	for _, e := range fe {
		if e.Index != nil {
			seen[*e.Index] = true
		}
	}
	return len(seen)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
