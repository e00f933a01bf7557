package function

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"tracker/function/event"
	"tracker/function/telemetry"
)

// Store is what the API needs of the event store: *store.Store, or a
// small fake in unit tests.
type Store interface {
	// Save stores every event and returns nil only once each is
	// acknowledged; see store.Store.Save.
	Save(ctx context.Context, events []event.Event) error
	// Ready reports whether the store can take writes now.
	Ready() bool
}

// handler serves the tracking API. It holds no per-request state; what a
// request tells the operator goes through its telemetry.Request.
type handler struct {
	cfg   Config
	store Store
	now   func() time.Time

	// inflight counts the events being written now, for TRACK_MAX_INFLIGHT.
	inflight atomic.Int64
}

// newHandler returns the API with its dependencies; tests pass a fake store.
func newHandler(cfg Config, store Store) *handler {
	return &handler{cfg: cfg, store: store, now: time.Now}
}

// routes is the whole API. func-go serves /health/readiness and
// /health/liveness itself and every other path here.
func (h *handler) routes() http.Handler {
	cors := newCORSPolicy(h.cfg.TrackCORSOrigins)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.handleHealth) // and HEAD
	mux.Handle("POST /track", cors.allowedOnly(http.HandlerFunc(h.handleTrack)))
	mux.Handle("OPTIONS /track", cors.allowedOnly(http.HandlerFunc(cors.preflight)))
	return cors.headers(problemsForUnrouted(mux))
}

// handleHealth answers 200 while the store takes writes, else 503.
func (h *handler) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !h.store.Ready() {
		writeProblem(w, r, unavailable("the event store is not reachable yet", "unavailable", 1))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// problemsForUnrouted answers the requests that mux has no route for with
// problem+json: 404, or 405 with the Allow header that mux works out from
// its routes.
func problemsForUnrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next, pattern := mux.Handler(r)
		if pattern != "" {
			r.Pattern = pattern // as mux.ServeHTTP would
			telemetry.RequestFrom(r.Context()).SetRoute(routeOf(pattern))
			next.ServeHTTP(w, r)
			return
		}
		answer := &capturedAnswer{header: http.Header{}}
		next.ServeHTTP(answer, r)
		if answer.status == http.StatusMethodNotAllowed {
			writeProblem(w, r, &apiError{Status: http.StatusMethodNotAllowed, Detail: "method " + r.Method + " is not allowed here",
				Allow: answer.header.Get("Allow"), Reason: "method_not_allowed"})
			return
		}
		writeProblem(w, r, &apiError{Status: http.StatusNotFound, Detail: "no such path; events go to POST /track", Reason: "not_found"})
	})
}

// routeOf is the route of a ServeMux pattern, its path: "POST /track" is
// /track and "GET /{$}" is /.
func routeOf(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	return strings.TrimSuffix(pattern, "{$}")
}

// capturedAnswer keeps the status and headers of ServeMux's own plain-text
// 404 or 405, and drops its body.
type capturedAnswer struct {
	header http.Header
	status int
}

func (a *capturedAnswer) Header() http.Header         { return a.header }
func (a *capturedAnswer) Write(b []byte) (int, error) { return len(b), nil }
func (a *capturedAnswer) WriteHeader(status int)      { a.status = status }
