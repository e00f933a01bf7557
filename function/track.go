package function

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"tracker/function/event"
	"tracker/function/event/cloudevent"
)

// trackResponse is the body of a 201.
type trackResponse struct {
	IDs []string `json:"ids"`
}

// handleTrack decodes, validates and stores events, and answers 201 only
// after every one of them is stored.
func (h *handler) handleTrack(w http.ResponseWriter, r *http.Request) {
	events, err := h.decode(w, r)
	if err != nil {
		writeProblem(w, problemOf(h.log, r, err, 0))
		return
	}
	n := int64(len(events))
	if h.inflight.Add(n) > int64(h.cfg.TrackMaxInflight) {
		h.inflight.Add(-n)
		writeProblem(w, problemOf(h.log, r, errOverloaded, len(events)))
		return
	}
	// One deadline for the whole write, so that a request never waits much
	// longer than CASSANDRA_TIMEOUT, however many queries it needs.
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.CassandraTimeout)
	err = h.store.Save(ctx, events)
	cancel()
	h.inflight.Add(-n)
	if err != nil {
		writeProblem(w, problemOf(h.log, r, err, len(events)))
		return
	}
	ids := make([]string, len(events))
	for i := range events {
		ids[i] = events[i].ID
	}
	writeJSON(w, http.StatusCreated, trackResponse{IDs: ids})
}

// errOverloaded answers a request that would pass TRACK_MAX_INFLIGHT.
var errOverloaded = unavailable("too many events are being stored right now; retry later with the same ids", 1)

// decode reads the body once, within the size limit, and hands it to the
// decoder of its form: a CloudEvent by its headers, else plain JSON in
// the content types a browser or curl sends.
func (h *handler) decode(w http.ResponseWriter, r *http.Request) ([]event.Event, error) {
	mode, err := cloudevent.ModeOf(r.Header)
	if err != nil {
		return nil, err
	}
	if mode == cloudevent.None {
		mt, err := mediaType(r.Header)
		if err != nil {
			return nil, &apiError{Status: http.StatusUnsupportedMediaType, Detail: "the Content-Type header cannot be parsed"}
		}
		switch mt {
		case "", "application/json", "text/plain", "application/x-www-form-urlencoded":
		default:
			return nil, &apiError{Status: http.StatusUnsupportedMediaType,
				Detail: "Content-Type " + mt + " is not accepted; send application/json, text/plain, or a CloudEvent"}
		}
	}

	if r.Body == nil {
		r.Body = http.NoBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.TrackMaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Detail: "the body is larger than the limit of " + formatBytes(h.cfg.TrackMaxBodyBytes)}
		}
		return nil, &apiError{Status: http.StatusBadRequest, Detail: "the body could not be read"}
	}

	now := h.now().UTC()
	switch mode {
	case cloudevent.Binary, cloudevent.Structured:
		return cloudevent.Decode(r.Context(), r.Header, body, now)
	case cloudevent.Batch:
		return cloudevent.DecodeBatch(body, now, h.cfg.TrackMaxBatchEvents)
	default:
		return event.DecodePlain(body, now, h.cfg.TrackMaxBatchEvents)
	}
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
