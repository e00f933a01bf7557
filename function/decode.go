package function

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// plainEvent is the JSON form of one impression. Pointers tell a missing
// field from an empty one.
type plainEvent struct {
	ID, Timestamp                 *string
	Username, Target, Description *string
}

// slot names the fields of the plain form for decodeFlatObject.
func (p *plainEvent) slot(name string) **string {
	switch name {
	case "id":
		return &p.ID
	case "timestamp":
		return &p.Timestamp
	case "username":
		return &p.Username
	case "target":
		return &p.Target
	case "description":
		return &p.Description
	}
	return nil
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
		return decodePlainBatch(body, now, maxEvents)
	default:
		return nil, invalid("the body must be a JSON object or an array of objects", []FieldError{{
			Field: "", Reason: "invalid_json", Message: "expected { or [ as the first character",
		}})
	}
}

// decodePlainBatch reads an array of plain events. An array whose every
// element has the common shape is read in one pass (fastFlatArray); any
// other goes through encoding/json, which names what is wrong.
func decodePlainBatch(body []byte, now time.Time, maxEvents int) ([]Event, error) {
	objs, fast := fastFlatArray(body, plainFields)
	var raws []json.RawMessage
	n := len(objs)
	if !fast {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, invalid("the body is not valid JSON", []FieldError{jsonFieldError(nil, err)})
		}
		n = len(raws)
	}
	if err := checkBatchSize(n, maxEvents); err != nil {
		return nil, err
	}
	var (
		fe      fieldErrors
		src     string
		vals    [][maxFlatFields]string
		indexes = make([]int, n)
		events  = make([]Event, n)
	)
	if fast {
		src, vals = string(body), make([][maxFlatFields]string, n)
	}
	for i := range events {
		indexes[i] = i
		var p plainEvent
		if fast {
			objs[i].store(src, &vals[i], plainFields, p.slot)
		} else if err := decodeFlatObject(raws[i], plainFields, p.slot); err != nil {
			fe = append(fe, jsonFieldError(&indexes[i], err))
			continue
		}
		buildPlainEvent(&fe, &indexes[i], &p, now, &events[i])
	}
	if len(fe) > 0 {
		return nil, invalid(fmt.Sprintf("%d of %d events are invalid; nothing was stored", countIndexes(fe), n), fe)
	}
	return events, nil
}

// decodePlainEvent decodes and validates one object into ev, adding every
// problem to fe. It reports whether the event is valid.
func decodePlainEvent(fe *fieldErrors, index *int, raw []byte, now time.Time, ev *Event) bool {
	var p plainEvent
	if err := decodeFlatObject(raw, plainFields, p.slot); err != nil {
		*fe = append(*fe, jsonFieldError(index, err))
		return false
	}
	return buildPlainEvent(fe, index, &p, now, ev)
}

// buildPlainEvent validates the decoded fields p into ev, adding every
// problem to fe. It reports whether the event is valid.
func buildPlainEvent(fe *fieldErrors, index *int, p *plainEvent, now time.Time, ev *Event) bool {
	before := len(*fe)
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

// decodeFlatObject reads one JSON object whose values are all strings, in
// a single pass: slot returns where each of fields goes. Unknown and
// repeated fields, values of another type and anything after the object
// are errors that name the field. The common shape takes the fast path of
// flatjson.go; the rest takes decodeFlatObjectGeneral.
func decodeFlatObject(data []byte, fields []string, slot func(name string) **string) error {
	if fastFlatObject(data, fields, slot) {
		return nil
	}
	return decodeFlatObjectGeneral(data, slot)
}

// decodeFlatObjectGeneral is decodeFlatObject by encoding/json's tokens;
// slot returns nil for an unknown field.
func decodeFlatObjectGeneral(data []byte, slot func(name string) **string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &decodeError{Reason: "invalid_type", Message: "must be a JSON object, got " + describeToken(tok)}
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		p := slot(name)
		if p == nil {
			return &decodeError{Field: name, Reason: "unknown_field", Message: "is not a known field"}
		}
		if *p != nil {
			return &decodeError{Field: name, Reason: "duplicate_field", Message: "appears more than once"}
		}
		if tok, err = dec.Token(); err != nil {
			return err
		}
		v, ok := tok.(string)
		if !ok {
			return &decodeError{Field: name, Reason: "invalid_type", Message: "must be a string, got " + describeToken(tok)}
		}
		*p = &v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return &decodeError{Reason: "trailing_data", Message: "only one JSON value is allowed"}
	}
	return nil
}

// decodeError is a client fault found while decoding, with the field it
// concerns.
type decodeError struct {
	Field, Reason, Message string
}

func (e *decodeError) Error() string { return e.Field + ": " + e.Message }

// describeToken names the JSON type of a token for error messages.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "an unknown value"
}

// jsonFieldError turns an encoding/json error into a client-safe FieldError.
func jsonFieldError(index *int, err error) FieldError {
	var decErr *decodeError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &decErr):
		return FieldError{Index: index, Field: decErr.Field, Reason: decErr.Reason, Message: decErr.Message}
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return FieldError{Index: index, Reason: "invalid_type", Message: fmt.Sprintf("must be a JSON object, got %s", typeErr.Value)}
		}
		return FieldError{Index: index, Field: typeErr.Field, Reason: "invalid_type",
			Message: fmt.Sprintf("must be %s, got %s", typeErr.Type, typeErr.Value)}
	case errors.As(err, &syntaxErr):
		return FieldError{Index: index, Reason: "invalid_json", Message: fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(syntaxErr.Error(), "json: "), syntaxErr.Offset)}
	default:
		return FieldError{Index: index, Reason: "invalid_json", Message: "the JSON value is incomplete or malformed"}
	}
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
