// Package cloudevent reads CloudEvents sent over HTTP, in binary,
// structured and batch mode, with the CloudEvents SDK, and turns each into
// an event.Event through event.FromCloudEvent. It is apart from package
// event so that what imports only the Event (the store) does not import
// the SDK.
package cloudevent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"

	"tracker/function/event"
)

// Mode is how a request carries CloudEvents, which picks its decoder.
type Mode int

// The modes: None (the plain JSON form, event.DecodePlain), Binary and
// Structured (Decode), and Batch (DecodeBatch).
const (
	None Mode = iota
	Binary
	Structured
	Batch
)

// ModeOf tells a request's mode from its headers, by the SDK's own
// reading of them. A binary-mode CloudEvent of a version the SDK does not
// know is an *event.InvalidError: read as plain JSON it would lose its
// source+id key, and every retry would store it again.
func ModeOf(header http.Header) (Mode, error) {
	switch cehttp.NewMessage(header, nil).ReadEncoding() {
	case binding.EncodingBinary:
		return Binary, nil
	case binding.EncodingStructured:
		return Structured, nil
	case binding.EncodingBatch:
		return Batch, nil
	}
	if len(header.Values("ce-specversion")) > 0 {
		return None, &event.InvalidError{Detail: "the CloudEvent cannot be read", Errors: []event.FieldError{{Field: "specversion", Reason: "unsupported_specversion",
			Message: "must be 1.0 or 0.3, got " + strconv.Quote(header.Get("ce-specversion"))}}}
	}
	return None, nil
}

// Attributes are what the tracker reads of a CloudEvent besides the
// event it stores, for its logs and traces.
type Attributes struct {
	ID, Source, Type string
	// TraceParent is the W3C traceparent of the CloudEvents
	// distributed-tracing extension; empty when the event has none.
	TraceParent string
}

func attributesOf(e *ce.Event) Attributes {
	a := Attributes{ID: e.ID(), Source: e.Source(), Type: e.Type()}
	if tp, ok := e.Extensions()["traceparent"]; ok {
		a.TraceParent, _ = types.ToString(tp)
	}
	return a
}

// HeaderAttributes reads the attributes of a binary-mode CloudEvent from
// its headers as they came, for the log and the trace of a request whose
// event cannot be decoded.
func HeaderAttributes(header http.Header) Attributes {
	return Attributes{
		ID: header.Get("ce-id"), Source: header.Get("ce-source"), Type: header.Get("ce-type"),
		TraceParent: header.Get("ce-traceparent"),
	}
}

// Decode reads a binary or structured mode CloudEvent: its headers and
// its whole body. now is when the request was read. It returns the event
// and its attributes, or an *event.InvalidError.
func Decode(ctx context.Context, header http.Header, body []byte, now time.Time) ([]event.Event, []Attributes, error) {
	// An empty body is a binary-mode event without data; FromCloudEvent
	// names that field.
	if !utf8.Valid(body) {
		return nil, nil, event.ErrInvalidUTF8
	}
	msg := cehttp.NewMessage(header, io.NopCloser(bytes.NewReader(body)))
	e, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return nil, nil, &event.InvalidError{Detail: "the CloudEvent cannot be read", Errors: []event.FieldError{readError(nil, err)}}
	}
	var ev event.Event
	if fe := fromSDK(e, nil, now, &ev); len(fe) > 0 {
		return nil, nil, &event.InvalidError{Detail: "the CloudEvent is invalid", Errors: fe}
	}
	return []event.Event{ev}, []Attributes{attributesOf(e)}, nil
}

// DecodeBatch reads application/cloudevents-batch+json: a JSON array of
// at most maxEvents structured CloudEvents, each decoded by the SDK and
// checked alone so that every bad index is named, and then together: two
// with the same source and id must carry the same event
// (event.DuplicateIDs). It returns the events
// and their attributes in the same order, or an error.
func DecodeBatch(body []byte, now time.Time, maxEvents int) ([]event.Event, []Attributes, error) {
	if err := event.CheckBody(body); err != nil {
		return nil, nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, nil, &event.InvalidError{Detail: "the body is not a JSON array of CloudEvents", Errors: []event.FieldError{event.JSONError(nil, err)}}
	}
	if err := event.CheckBatchSize(len(raws), maxEvents); err != nil {
		return nil, nil, err
	}
	var fe []event.FieldError
	events := make([]event.Event, len(raws))
	attrs := make([]Attributes, len(raws))
	valid := make([]bool, len(raws))
	for i, raw := range raws {
		// raw is one valid JSON value of the array read above, so the
		// SDK's decoder runs directly; json.Unmarshal would first scan the
		// value again to validate it.
		var e ce.Event
		if err := e.UnmarshalJSON(raw); err != nil {
			fe = append(fe, readError(&i, err))
			continue
		}
		bad := fromSDK(&e, &i, now, &events[i])
		fe = append(fe, bad...)
		valid[i] = len(bad) == 0
		attrs[i] = attributesOf(&e)
	}
	// A CloudEvent's key is its source and id: two with the same key are
	// one event, or the batch is rejected.
	fe = append(fe, event.DuplicateIDs(events, valid, "id")...)
	if len(fe) > 0 {
		return nil, nil, event.InvalidBatch("CloudEvents", len(raws), fe)
	}
	return events, attrs, nil
}

// fromSDK checks a CloudEvent by the specification (the SDK's Validate)
// and then by the tracker's rules (event.FromCloudEvent).
func fromSDK(e *ce.Event, index *int, now time.Time, ev *event.Event) []event.FieldError {
	if err := e.Validate(); err != nil {
		var verr ce.ValidationError
		if !errors.As(err, &verr) {
			return []event.FieldError{{Index: index, Reason: "invalid_cloudevent", Message: err.Error()}}
		}
		names := make([]string, 0, len(verr))
		for name := range verr {
			names = append(names, name)
		}
		sort.Strings(names)
		fe := make([]event.FieldError, 0, len(names))
		for _, name := range names {
			fe = append(fe, event.FieldError{Index: index, Field: name, Reason: "invalid_cloudevent", Message: verr[name].Error()})
		}
		return fe
	}
	return event.FromCloudEvent(&event.CloudEvent{
		Source: e.Source(), ID: e.ID(), Time: e.Time(),
		DataMediaType: e.DataMediaType(), DataContentType: e.DataContentType(), Data: e.Data(),
	}, index, now, ev)
}

// readError explains why the SDK could not read a CloudEvent. Its text
// describes the client's input, never our storage, so it is safe to return.
func readError(index *int, err error) event.FieldError {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return event.JSONError(index, err)
	}
	return event.FieldError{Index: index, Reason: "invalid_cloudevent", Message: err.Error()}
}
