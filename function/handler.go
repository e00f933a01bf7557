package function

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
)

// handler serves the tracking API. It holds no per-request state.
type handler struct {
	cfg   Config
	store Store
	log   *slog.Logger
	now   func() time.Time

	// inflight counts the events being written now, for TRACK_MAX_INFLIGHT.
	inflight atomic.Int64
}

// newHandler returns the API with its dependencies; tests pass a fake store.
func newHandler(cfg Config, store Store, log *slog.Logger) http.Handler {
	h := &handler{cfg: cfg, store: store, log: log, now: time.Now}
	return h.routes()
}

// routes lists the whole API.
func (h *handler) routes() http.Handler {
	cors := newCORSPolicy(h.cfg.TrackCORSOrigins)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			cors.headers(w.Header(), r.Header.Get("Origin"))
			h.only(w, r, h.handleHealth, http.MethodGet, http.MethodHead)
		case "/track":
			origin := r.Header.Get("Origin")
			cors.headers(w.Header(), origin)
			switch {
			case r.Method != http.MethodPost && r.Method != http.MethodOptions:
				writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Detail: "method " + r.Method + " is not allowed here", Allow: "POST, OPTIONS"})
			case origin != "" && !cors.allows(origin):
				writeError(w, errOriginNotAllowed(origin))
			case r.Method == http.MethodOptions:
				preflight(w, r)
			default:
				h.handleTrack(w, r)
			}
		default:
			writeError(w, &apiError{Status: http.StatusNotFound, Detail: "no such path; events go to POST /track"})
		}
	})
}

// only runs next for the allowed methods and answers 405 otherwise.
func (h *handler) only(w http.ResponseWriter, r *http.Request, next http.HandlerFunc, methods ...string) {
	for _, m := range methods {
		if r.Method == m {
			next(w, r)
			return
		}
	}
	allow := methods[0]
	for _, m := range methods[1:] {
		allow += ", " + m
	}
	writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Detail: "method " + r.Method + " is not allowed here", Allow: allow})
}

// handleHealth answers 200 while the store takes writes, else 503.
func (h *handler) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !h.store.Ready() {
		writeError(w, unavailable("the event store is not reachable yet", 1))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// trackResponse is the body of a 201.
type trackResponse struct {
	IDs []string `json:"ids"`
}

// handleTrack decodes, validates and stores events, and answers 201 only
// after every one of them is stored.
func (h *handler) handleTrack(w http.ResponseWriter, r *http.Request) {
	events, err := h.decode(w, r)
	if err != nil {
		h.fail(w, r, err, 0)
		return
	}
	n := int64(len(events))
	if h.inflight.Add(n) > int64(h.cfg.TrackMaxInflight) {
		h.inflight.Add(-n)
		h.fail(w, r, errOverloaded, len(events))
		return
	}
	// One deadline for the whole write, so that a request never waits much
	// longer than CASSANDRA_TIMEOUT, however many queries it needs.
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.CassandraTimeout)
	err = h.store.Save(ctx, events)
	cancel()
	h.inflight.Add(-n)
	if err != nil {
		h.fail(w, r, err, len(events))
		return
	}
	ids := make([]string, len(events))
	for i := range events {
		ids[i] = events[i].ID
	}
	writeJSON(w, http.StatusCreated, trackResponse{IDs: ids})
}

// decode reads the body once, within the size limit, and hands it to the
// decoder of its form.
func (h *handler) decode(w http.ResponseWriter, r *http.Request) ([]Event, error) {
	encoding := ceEncoding(r.Header)
	if encoding == binding.EncodingUnknown && len(r.Header.Values("ce-specversion")) > 0 {
		// A binary-mode CloudEvent of a version sdk-go does not know. Read
		// as plain JSON it would lose its source+id key, and every retry
		// would store it again.
		return nil, invalid("the CloudEvent cannot be read", []FieldError{{Field: "specversion", Reason: "unsupported_specversion",
			Message: "must be 1.0 or 0.3, got " + strconv.Quote(r.Header.Get("ce-specversion"))}})
	}
	mt, err := mediaType(r.Header)
	if err != nil && encoding == binding.EncodingUnknown {
		return nil, &apiError{Status: http.StatusUnsupportedMediaType, Detail: "the Content-Type header cannot be parsed"}
	}
	if encoding == binding.EncodingUnknown {
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
	switch encoding {
	case binding.EncodingBinary, binding.EncodingStructured:
		return decodeCloudEvent(r.Context(), r.Header, body, now)
	case binding.EncodingBatch:
		return decodeCloudEventBatch(body, now, h.cfg.TrackMaxBatchEvents)
	default:
		return decodePlain(body, now, h.cfg.TrackMaxBatchEvents)
	}
}

// errOverloaded answers a request that would pass TRACK_MAX_INFLIGHT.
var errOverloaded = unavailable("too many events are being stored right now; retry later with the same ids", 1)

// fail is the one place that turns an error into a response. Client faults
// carry their own status; store failures are logged here, once, and the
// client sees only a generic sentence.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error, events int) {
	var apiErr *apiError
	switch {
	case errors.As(err, &apiErr):
		h.log.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "status", apiErr.Status, "detail", apiErr.Detail)
		writeError(w, apiErr)
	case errors.Is(err, ErrUnavailable):
		h.log.Warn("events not stored", "events", events, "error", err)
		writeError(w, unavailable("the events were not stored; retry later with the same ids", 1))
	default:
		h.log.Error("events not stored", "events", events, "error", err)
		writeError(w, &apiError{Status: http.StatusInternalServerError, Detail: "the events were not stored because of an internal error; retry later with the same ids"})
	}
}

func formatBytes(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
