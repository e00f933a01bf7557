package telemetry

import (
	"context"
	"io"
	"net/http"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TrackRoute is the route whose POST requests carry events.
const TrackRoute = "/track"

// Handler wraps the API: for every request it counts and times it, gives
// it a server span (Request.Trace) and, when it was not answered 2xx or
// 3xx, logs one line about it (rate-limited). The API names the route a
// request matched with Request.SetRoute.
func (t *Telemetry) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &Request{t: t, start: time.Now(), method: methodLabel(r.Method), route: "other", format: "unknown",
			parent: context.Background()}
		// The canonical key, read straight: Get would canonicalize
		// "traceparent" into a new string on every request.
		if len(r.Header["Traceparent"]) > 0 {
			rec.parent = propagation.TraceContext{}.Extract(rec.parent, propagation.HeaderCarrier(r.Header))
		}
		if t.inst != nil {
			t.inst.inFlight.Add(1)
		}
		rec.w.ResponseWriter = w
		if r.Body != nil && r.Body != http.NoBody {
			rec.body.ReadCloser = r.Body
			r.Body = &rec.body
		}
		served := r.WithContext(context.WithValue(r.Context(), contextKey{}, rec))
		defer func() {
			p := recover()
			switch {
			case p == http.ErrAbortHandler:
				// The server drops the connection; count the request
				// first, then let it.
				t.finish(rec, served, rec.w.status(), rec.body.n)
				panic(p)
			case p != nil:
				t.log.Error("panic while serving a request", "panic", p, "stack", string(debug.Stack()))
				rec.reason, rec.err = "internal", nil
				if !rec.w.wrote {
					rec.w.WriteHeader(http.StatusInternalServerError)
				}
			}
			t.finish(rec, served, rec.w.status(), rec.body.n)
		}()
		next.ServeHTTP(&rec.w, served)
	})
}

// finish records a request that has been answered.
func (t *Telemetry) finish(rec *Request, r *http.Request, status int, bodyBytes int64) {
	ctx := r.Context()
	elapsed := time.Since(rec.start)
	if rec.route == TrackRoute && r.Method == http.MethodPost && !rec.counted {
		// Refused before its events were read: count it as one.
		switch {
		case status < 300:
			rec.Stored(1)
		case status < 500:
			rec.Rejected(rec.reasonOr("rejected"), 1)
		default:
			rec.Failed(rec.reasonOr("internal"), 1, rec.err)
		}
	}
	if in := t.inst; in != nil {
		in.inFlight.Add(-1)
		req := in.requestSeries.get(requestKey{rec.route, rec.method, status})
		req.requests.Inc()
		req.duration.Observe(elapsed.Seconds())
		in.routeSeries.get(rec.route).Observe(float64(bodyBytes))
		if rec.received > 0 {
			in.countEvents(rec)
		}
	}

	// The log's trace id: this request's when its span is recorded, else
	// the caller's, if it sent one (with tracing off there is no span at
	// all; an unsampled span's new trace id would lead nowhere).
	sc, ours := trace.SpanContextFromContext(rec.parent), false
	if t.tracing {
		if rec.span == nil {
			rec.startSpan(ctx, "", nil)
		}
		if rec.span.IsRecording() {
			sc, ours = rec.span.SpanContext(), true
			endSpan(rec, r, status, bodyBytes)
		} else {
			rec.span.End()
		}
	}
	if status >= 400 {
		t.logRequest(ctx, rec, status, elapsed, sc, ours)
	}
}

// countEvents counts what became of the request's events.
func (in *instruments) countEvents(rec *Request) {
	in.receivedSeries.get(rec.format).Add(float64(rec.received))
	if rec.stored > 0 {
		in.storedSeries.get(rec.format).Add(float64(rec.stored))
	}
	for reason, n := range rec.rejected {
		in.reasonSeries.get([3]string{"rejected", rec.format, reason}).Add(float64(n))
	}
	for reason, n := range rec.failed {
		in.reasonSeries.get([3]string{"failed", rec.format, reason}).Add(float64(n))
	}
}

// statusWriter remembers the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and Unwrap reach the server's
// writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.code
}

// Unwrap returns the writer the HTTP server made, under any wrapper that
// has an Unwrap method. http.MaxBytesReader needs it: only the server's
// writer can close the connection after a body over the limit.
func Unwrap(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// countingBody counts the bytes read of a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
