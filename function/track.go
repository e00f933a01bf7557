package function

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"tracker/function/event"
	"tracker/function/event/cloudevent"
	"tracker/function/store"
	"tracker/function/telemetry"
)

// trackResponse is the body of a 201.
type trackResponse struct {
	IDs []string `json:"ids"`
}

// handleTrack decodes, validates and stores events, and answers 201 only
// after every one of them is stored. Events of a request that share an id
// (and so their content; the decoders see to that) are stored once. An
// event whose id is stored already with other content gets a 409, and the
// others of its request are stored. It tells the request's telemetry the
// form of the events and what became of each.
func (h *handler) handleTrack(w http.ResponseWriter, r *http.Request) {
	rec := telemetry.RequestFrom(r.Context())
	in, err := h.decode(w, r)
	rec.SetFormat(in.format)
	if in.single() {
		a := in.ce[0]
		rec.SetCloudEvent(telemetry.CloudEvent{ID: a.ID, Source: a.Source, Type: a.Type})
	}
	ctx := rec.Trace(r.Context(), in.traceParent(), in.links())
	if err != nil {
		h.refuse(w, r, err, len(in.events))
		return
	}
	unique, at := uniqueEvents(in.events)
	n := int64(len(unique))
	if h.inflight.Add(n) > int64(h.cfg.TrackMaxInflight) {
		h.inflight.Add(-n)
		h.refuse(w, r, errOverloaded, len(in.events))
		return
	}
	// One deadline for the whole write, so that a request never waits much
	// longer than CASSANDRA_TIMEOUT, however many queries it needs.
	ctx, cancel := context.WithTimeout(ctx, h.cfg.CassandraTimeout)
	err = h.store.Save(ctx, unique)
	cancel()
	h.inflight.Add(-n)
	ids := make([]string, len(in.events))
	for i := range in.events {
		ids[i] = in.events[i].ID
	}
	var conflict *store.ConflictError
	if errors.As(err, &conflict) {
		err = conflictProblem(ids, requestIndexes(conflict.Indexes, at), in.batch())
	}
	if err != nil {
		h.refuse(w, r, err, len(in.events))
		return
	}
	writeJSON(w, http.StatusCreated, trackResponse{IDs: ids})
	rec.Stored(len(in.events))
}

// requestIndexes are the indexes in the request of the events at the
// positions unique among its unique events (uniqueEvents's at, nil when
// each event is its own).
func requestIndexes(unique []int, at []int) []int {
	if at == nil {
		return unique
	}
	var out []int
	for i, u := range at {
		if slices.Contains(unique, u) {
			out = append(out, i)
		}
	}
	return out
}

// refuse answers a request whose n events were not stored because of err.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, err error, n int) {
	e := problemOf(err)
	writeProblem(w, r, e)
	countRefused(telemetry.RequestFrom(r.Context()), e, err, n)
}

// errOverloaded answers a request that would pass TRACK_MAX_INFLIGHT.
var errOverloaded = unavailable("too many events are being stored right now; retry later with the same ids", "overloaded", 1)

// decoded is what decode read of a request: its events, their form (one
// of telemetry.Formats) and, for CloudEvents, their attributes.
type decoded struct {
	events []event.Event
	format string
	ce     []cloudevent.Attributes
}

// batch reports whether the request was a batch, whose problems name
// their indexes.
func (d *decoded) batch() bool {
	return d.format == "plain_batch" || d.format == "ce_batch"
}

// single reports whether the request was one CloudEvent.
func (d *decoded) single() bool {
	return len(d.ce) == 1 && d.format != "ce_batch"
}

// traceParent is the traceparent of a single CloudEvent, which parents the
// request's span when its HTTP headers carry none.
func (d *decoded) traceParent() string {
	if d.single() {
		return d.ce[0].TraceParent
	}
	return ""
}

// links are the traceparents of the request's CloudEvents.
func (d *decoded) links() []string {
	var out []string
	for _, a := range d.ce {
		if a.TraceParent != "" {
			out = append(out, a.TraceParent)
		}
	}
	return out
}

// decode reads the body once, within the size limit, and hands it to the
// decoder of its form: a CloudEvent by its headers, else plain JSON in
// the content types a browser or curl sends. What it could tell of the
// request (its form, a binary CloudEvent's attributes) is in the result
// even when err is set.
func (h *handler) decode(w http.ResponseWriter, r *http.Request) (decoded, error) {
	in := decoded{format: "unknown"}
	mode, err := cloudevent.ModeOf(r.Header)
	if err != nil {
		return in, err
	}
	switch mode {
	case cloudevent.None:
		mt, err := mediaType(r.Header)
		if err != nil {
			return in, &apiError{Status: http.StatusUnsupportedMediaType, Detail: "the Content-Type header cannot be parsed", Reason: "unsupported_media_type"}
		}
		switch mt {
		case "", "application/json", "text/plain", "application/x-www-form-urlencoded":
		default:
			return in, &apiError{Status: http.StatusUnsupportedMediaType, Reason: "unsupported_media_type",
				Detail: "Content-Type " + mt + " is not accepted; send application/json, text/plain, or a CloudEvent"}
		}
	case cloudevent.Binary:
		in.format = "ce_binary"
		// From the headers, for the log and the trace even when the
		// event cannot be decoded.
		in.ce = []cloudevent.Attributes{cloudevent.HeaderAttributes(r.Header)}
	case cloudevent.Structured:
		in.format = "ce_structured"
	case cloudevent.Batch:
		in.format = "ce_batch"
	}

	if r.Body == nil {
		r.Body = http.NoBody
	}
	// The server's own writer: only it can close the connection after a
	// body over the limit.
	body, err := io.ReadAll(http.MaxBytesReader(telemetry.Unwrap(w), r.Body, h.cfg.TrackMaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return in, &apiError{Status: http.StatusRequestEntityTooLarge, Detail: "the body is larger than the limit of " + formatBytes(h.cfg.TrackMaxBodyBytes), Reason: "too_large"}
		}
		return in, &apiError{Status: http.StatusBadRequest, Detail: "the body could not be read", Reason: "unreadable_body"}
	}

	now := h.now().UTC()
	switch mode {
	case cloudevent.Binary, cloudevent.Structured:
		var attrs []cloudevent.Attributes
		if in.events, attrs, err = cloudevent.Decode(r.Context(), r.Header, body, now); err == nil {
			in.ce = attrs
		}
	case cloudevent.Batch:
		in.events, in.ce, err = cloudevent.DecodeBatch(body, now, h.cfg.TrackMaxBatchEvents)
	default:
		in.format = plainFormat(body)
		in.events, err = event.DecodePlain(body, now, h.cfg.TrackMaxBatchEvents)
	}
	return in, err
}

// plainFormat tells a plain batch (a JSON array) from a single event.
func plainFormat(body []byte) string {
	if b := bytes.TrimLeft(body, " \t\n\r"); len(b) > 0 && b[0] == '[' {
		return "plain_batch"
	}
	return "plain"
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

func formatBytes(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
