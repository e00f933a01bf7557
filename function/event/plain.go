package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// DecodePlain reads the plain JSON form: one object or an array of at
// most maxEvents of them. Every event is checked before any is returned,
// so a batch with one bad event is rejected whole and names each bad index
// and field; so is a batch in which two events share an id but not their
// content (DuplicateIDs). now is when the request was read.
func DecodePlain(body []byte, now time.Time, maxEvents int) ([]Event, error) {
	if err := CheckBody(body); err != nil {
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
			return nil, invalid("the body is not valid JSON", []FieldError{JSONError(nil, err)})
		}
		n = len(raws)
	}
	if err := CheckBatchSize(n, maxEvents); err != nil {
		return nil, err
	}
	var (
		fe      fieldErrors
		src     string
		vals    [][maxFlatFields]string
		indexes = make([]int, n)
		events  = make([]Event, n)
		valid   = make([]bool, n)
	)
	if fast {
		src, vals = string(body), make([][maxFlatFields]string, n)
	}
	for i := range events {
		indexes[i] = i
		var f fields
		if fast {
			objs[i].store(src, &vals[i], plainFields, &f)
		} else if err := decodeFlatObject(raws[i], plainFields, &f); err != nil {
			fe = append(fe, JSONError(&indexes[i], err))
			continue
		}
		valid[i] = buildPlainEvent(&fe, &indexes[i], &f, now, &events[i])
	}
	fe = append(fe, DuplicateIDs(events, valid, "id")...)
	if len(fe) > 0 {
		return nil, InvalidBatch("events", n, fe)
	}
	return events, nil
}

// decodePlainEvent decodes and validates one object into ev, adding every
// problem to fe. It reports whether the event is valid.
func decodePlainEvent(fe *fieldErrors, index *int, raw []byte, now time.Time, ev *Event) bool {
	var f fields
	if err := decodeFlatObject(raw, plainFields, &f); err != nil {
		*fe = append(*fe, JSONError(index, err))
		return false
	}
	return buildPlainEvent(fe, index, &f, now, ev)
}

// buildPlainEvent validates the decoded fields f into ev, adding every
// problem to fe. It reports whether the event is valid.
func buildPlainEvent(fe *fieldErrors, index *int, f *fields, now time.Time, ev *Event) bool {
	before := len(*fe)
	validateImpression(fe, index, f)
	*ev = Event{
		Username:    deref(f.Username),
		Target:      deref(f.Target),
		Description: deref(f.Description),
		ReceivedAt:  now,
	}
	if f.ID != nil {
		if why := checkID(*f.ID); why != "" {
			fe.add(index, "id", "invalid_id", "%s", why)
		}
		ev.ID, ev.Retryable = *f.ID, true
	} else {
		ev.ID = newID()
	}
	if f.Timestamp != nil {
		t, err := time.Parse(time.RFC3339Nano, *f.Timestamp)
		switch {
		case err != nil:
			fe.add(index, "timestamp", "invalid_timestamp", "must be an RFC 3339 time such as 2006-01-02T15:04:05Z, got %q", *f.Timestamp)
		case checkOccurredAt(t, now) != "":
			fe.add(index, "timestamp", "invalid_timestamp", "%s", checkOccurredAt(t, now))
		default:
			ev.OccurredAt = t.UTC()
		}
	} else if ev.Retryable {
		timeFromID(fe, index, "id", ev.ID, now, ev)
	}
	return len(*fe) == before
}

// CheckBody rejects bodies that no decoder should see: empty, or not
// UTF-8.
func CheckBody(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("the body is empty", []FieldError{{Reason: "empty_body", Message: "send a JSON object or array"}})
	}
	if !utf8.Valid(body) {
		return ErrInvalidUTF8
	}
	return nil
}

// ErrInvalidUTF8 rejects a body that is not UTF-8.
var ErrInvalidUTF8 = invalid("the body is not valid UTF-8", []FieldError{{Reason: "invalid_utf8", Message: "the body must be UTF-8 encoded JSON"}})

// CheckBatchSize rejects a batch of no events, or of more than maxEvents.
func CheckBatchSize(n, maxEvents int) error {
	switch {
	case n == 0:
		return invalid("the batch is empty", []FieldError{{Reason: "empty_batch", Message: "send at least one event"}})
	case n > maxEvents:
		return &TooManyError{Events: n, Max: maxEvents}
	}
	return nil
}

// decodeFlatObject reads one JSON object whose values are all strings, in
// a single pass, into f: names are the fields its form knows. Unknown and
// repeated fields, values of another type and anything after the object
// are errors that name the field. The common shape takes the fast path of
// flatjson.go; the rest takes decodeFlatObjectGeneral.
func decodeFlatObject(data []byte, names []string, f *fields) error {
	if fastFlatObject(data, names, f) {
		return nil
	}
	return decodeFlatObjectGeneral(data, names, f)
}

// decodeFlatObjectGeneral is decodeFlatObject by encoding/json's tokens.
func decodeFlatObjectGeneral(data []byte, names []string, f *fields) error {
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
		if !slices.Contains(names, name) {
			return &decodeError{Field: name, Reason: "unknown_field", Message: "is not a known field"}
		}
		p := f.slot(name)
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

// JSONError turns an encoding/json error, or a decoding error of this
// package, into a client-safe FieldError.
func JSONError(index *int, err error) FieldError {
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
