package function

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// ceData is the data of a tracking CloudEvent: the plain form without id
// and timestamp, whose roles the CloudEvent's source+id and time play.
type ceData struct {
	Username, Target, Description *string
}

// slot names the fields of CloudEvent data for decodeFlatObject.
func (d *ceData) slot(name string) **string {
	switch name {
	case "username":
		return &d.Username
	case "target":
		return &d.Target
	case "description":
		return &d.Description
	}
	return nil
}

// ceEncoding tells which CloudEvents mode a request uses, by sdk-go's own
// reading of its headers; binding.EncodingUnknown means it is no CloudEvent.
func ceEncoding(header http.Header) binding.Encoding {
	return cehttp.NewMessage(header, nil).ReadEncoding()
}

// decodeCloudEvent reads a binary or structured mode CloudEvent.
func decodeCloudEvent(ctx context.Context, header http.Header, body []byte, now time.Time) ([]Event, error) {
	// An empty body is a binary-mode event without data; fromCloudEvent
	// names that field.
	if !utf8.Valid(body) {
		return nil, errInvalidUTF8
	}
	msg := cehttp.NewMessage(header, io.NopCloser(bytes.NewReader(body)))
	ce, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return nil, invalid("the CloudEvent cannot be read", []FieldError{ceReadError(nil, err)})
	}
	var fe fieldErrors
	var ev Event
	if !fromCloudEvent(&fe, nil, ce, now, &ev) {
		return nil, invalid("the CloudEvent is invalid", fe)
	}
	return []Event{ev}, nil
}

// decodeCloudEventBatch reads application/cloudevents-batch+json: a JSON
// array of structured CloudEvents, each decoded by sdk-go and checked alone
// so that every bad index is named.
func decodeCloudEventBatch(body []byte, now time.Time, maxEvents int) ([]Event, error) {
	if err := checkBody(body); err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, invalid("the body is not a JSON array of CloudEvents", []FieldError{jsonFieldError(nil, err)})
	}
	if err := checkBatchSize(len(raws), maxEvents); err != nil {
		return nil, err
	}
	var fe fieldErrors
	events := make([]Event, len(raws))
	for i, raw := range raws {
		// raw is one valid JSON value of the array read above, so sdk-go's
		// decoder runs directly; json.Unmarshal would first scan the
		// value again to validate it.
		var ce event.Event
		if err := ce.UnmarshalJSON(raw); err != nil {
			fe = append(fe, ceReadError(&i, err))
			continue
		}
		fromCloudEvent(&fe, &i, &ce, now, &events[i])
	}
	if len(fe) > 0 {
		return nil, invalid(fmt.Sprintf("%d of %d CloudEvents are invalid; nothing was stored", countIndexes(fe), len(raws)), fe)
	}
	return events, nil
}

// fromCloudEvent validates a decoded CloudEvent and its data into ev,
// adding every problem to fe. It reports whether the event is valid.
func fromCloudEvent(fe *fieldErrors, index *int, ce *event.Event, now time.Time, ev *Event) bool {
	before := len(*fe)
	if err := ce.Validate(); err != nil {
		var verr event.ValidationError
		if errors.As(err, &verr) {
			names := make([]string, 0, len(verr))
			for name := range verr {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				fe.add(index, name, "invalid_cloudevent", "%v", verr[name])
			}
		} else {
			fe.add(index, "", "invalid_cloudevent", "%v", err)
		}
		return false
	}

	// HTTP drops the spaces around a header's value, so a binary-mode
	// ce-id cannot keep them; dropping them in every mode gives an event
	// the same key however it is sent. (Validate refuses an id of spaces.)
	source, id := ce.Source(), strings.Trim(ce.ID(), " ")
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
	if t := ce.Time(); !t.IsZero() {
		if why := checkOccurredAt(t, now); why != "" {
			fe.add(index, "time", "invalid_time", "%s", why)
		}
		ev.OccurredAt = t.UTC()
	}

	if mt := ce.DataMediaType(); mt != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") && mt != "text/json" {
		fe.add(index, "datacontenttype", "unsupported_data_content_type", "must be application/json, got %q", ce.DataContentType())
		return false
	}
	data := ce.Data()
	if len(bytes.TrimSpace(data)) == 0 {
		fe.add(index, "data", "missing_field", "is required: a JSON object with username, target and description")
		return false
	}
	var d ceData
	if err := decodeFlatObject(data, ceDataFields, d.slot); err != nil {
		e := jsonFieldError(index, err)
		e.Field = prefixData(e.Field)
		*fe = append(*fe, e)
		return false
	}
	start := len(*fe)
	present := func(field string) bool {
		switch field {
		case "username":
			return d.Username != nil
		case "target":
			return d.Target != nil
		default:
			return d.Description != nil
		}
	}
	validateImpression(fe, index, deref(d.Username), deref(d.Target), deref(d.Description), present)
	for i := start; i < len(*fe); i++ {
		(*fe)[i].Field = prefixData((*fe)[i].Field)
	}
	ev.Username, ev.Target, ev.Description = deref(d.Username), deref(d.Target), deref(d.Description)
	return len(*fe) == before
}

func prefixData(field string) string {
	if field == "" {
		return "data"
	}
	return "data." + field
}

// ceReadError explains why sdk-go could not read a CloudEvent. Its text
// describes the client's input, never our storage, so it is safe to return.
func ceReadError(index *int, err error) FieldError {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return jsonFieldError(index, err)
	}
	return FieldError{Index: index, Reason: "invalid_cloudevent", Message: err.Error()}
}

// mediaType returns the request's media type in lower case, "" when absent.
func mediaType(header http.Header) (string, error) {
	ct := header.Get("Content-Type")
	if strings.TrimSpace(ct) == "" {
		return "", nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	return mt, err
}
