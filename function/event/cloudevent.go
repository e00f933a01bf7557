package event

import (
	"bytes"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// CloudEvent is what the tracker reads of a CloudEvent that sdk-go has
// decoded and validated (package cloudevent does that): the attributes
// that make its key and time, and its data, the plain form's object
// without id and timestamp.
type CloudEvent struct {
	Source, ID string
	// Time is the time attribute; zero when absent.
	Time time.Time
	// DataMediaType is the media type of datacontenttype, DataContentType
	// the attribute as it came; both empty when absent.
	DataMediaType, DataContentType string
	Data                           []byte
}

// FromCloudEvent validates a CloudEvent that sdk-go has read and found
// valid, and its data, into ev. index is its position in a batch, nil for
// a single event; now is when the request was read. It returns every
// problem; ev is an Event only when there is none.
func FromCloudEvent(ce *CloudEvent, index *int, now time.Time, ev *Event) []FieldError {
	var fe fieldErrors
	// HTTP drops the spaces around a header's value, so a binary-mode
	// ce-id cannot keep them; dropping them in every mode gives an event
	// the same key however it is sent. (Validate refuses an id of spaces.)
	source, id := ce.Source, strings.Trim(ce.ID, " ")
	switch {
	case !utf8.ValidString(source):
		// sdk-go percent-encodes odd bytes in a hierarchical URI ("/w%FF")
		// but keeps an opaque one ("a:\xff") as it came.
		fe.add(index, "source", "invalid_utf8", "must be valid UTF-8")
	case len(source) > maxSourceBytes:
		fe.add(index, "source", "source_too_long", "must be at most %d bytes, got %d", maxSourceBytes, len(source))
	case strings.IndexFunc(source, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		fe.add(index, "source", "invalid_source", "must be a URI reference without white space or control characters")
	}
	switch {
	case !utf8.ValidString(id):
		// Binary mode takes the id from a header, which may carry any
		// byte; the key is stored as CQL text, which must be UTF-8.
		fe.add(index, "id", "invalid_utf8", "must be valid UTF-8")
	case len(id) > maxIDBytes:
		fe.add(index, "id", "invalid_id", "must be at most %d bytes, got %d", maxIDBytes, len(id))
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		fe.add(index, "id", "invalid_id", "must not contain control characters")
	}
	*ev = Event{ID: source + " " + id, Retryable: true, Source: source, ReceivedAt: now}
	if t := ce.Time; !t.IsZero() {
		if why := checkOccurredAt(t, now); why != "" {
			fe.add(index, "time", "invalid_time", "%s", why)
		}
		ev.OccurredAt = t.UTC()
	} else {
		timeFromID(&fe, index, "id", id, now, ev)
	}

	if mt := ce.DataMediaType; mt != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") && mt != "text/json" {
		fe.add(index, "datacontenttype", "unsupported_data_content_type", "must be application/json, got %q", ce.DataContentType)
		return fe
	}
	if len(bytes.TrimSpace(ce.Data)) == 0 {
		fe.add(index, "data", "missing_field", "is required: a JSON object with username, target and description")
		return fe
	}
	var d fields
	if err := decodeFlatObject(ce.Data, ceDataFields, &d); err != nil {
		e := JSONError(index, err)
		e.Field = prefixData(e.Field)
		return append(fe, e)
	}
	start := len(fe)
	validateImpression(&fe, index, &d)
	for i := start; i < len(fe); i++ {
		fe[i].Field = prefixData(fe[i].Field)
	}
	ev.Username, ev.Target, ev.Description = deref(d.Username), deref(d.Target), deref(d.Description)
	return fe
}

func prefixData(field string) string {
	if field == "" {
		return "data"
	}
	return "data." + field
}
