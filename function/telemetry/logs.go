package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"
	"go.opentelemetry.io/otel/trace"
)

// limiter lets one line of a key through per period and counts the lines
// it holds back, so that a flood of identical failures (Cassandra down, a
// client sending garbage) costs the log one line a second.
type limiter struct {
	period time.Duration
	mu     sync.Mutex
	keys   map[string]*limitState
}

type limitState struct {
	last       time.Time
	suppressed int
}

// maxLimiterKeys bounds the limiter's memory; keys come from fixed sets
// (a status and a reason), so it is never reached in practice.
const maxLimiterKeys = 1024

func newLimiter(period time.Duration) *limiter {
	return &limiter{period: period, keys: map[string]*limitState{}}
}

// allow reports whether a line of key may be written at now, and how many
// lines of key were held back since the last one written.
func (l *limiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.keys[key]
	if st == nil {
		if len(l.keys) >= maxLimiterKeys {
			clear(l.keys)
		}
		st = &limitState{}
		l.keys[key] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < l.period {
		st.suppressed++
		return false, 0
	}
	suppressed, st.suppressed, st.last = st.suppressed, 0, now
	return true, suppressed
}

// runtimeLog is where func-go's lines go; RouteRuntimeLogs sets it. Until
// then, held keeps them.
var (
	runtimeLog   atomic.Pointer[slog.Logger]
	routeZerolog sync.Once
	held         struct {
		sync.Mutex
		lines [][]byte
	}
)

// maxHeldLines bounds the lines kept before the logger is known: func-go
// writes four before Start.
const maxHeldLines = 100

// HoldRuntimeLogs takes over func-go's logger (zerolog's global one, at
// debug by default) before func-go writes its first line: it drops what
// is below info and keeps the rest until RouteRuntimeLogs says where they
// go, so that they come out in the format the configuration asks for.
// The root package's New calls it; it reads no environment.
func HoldRuntimeLogs() {
	zerolog.SetGlobalLevel(zerolog.InfoLevel)
	routeZerolog.Do(func() { zlog.Logger = zerolog.New(zerologWriter{}) })
}

// RouteRuntimeLogs makes the lines that func-go writes through zerolog's
// global logger, and those of the standard library's log package, go to
// log, so that the process writes one stream in one format: the lines
// held since HoldRuntimeLogs first. func-go's lines keep their level and
// fields and get component=func-go; those below level are dropped before
// they are formatted. zerolog's level and logger are global to the
// process, so the last call wins.
func RouteRuntimeLogs(log *slog.Logger, level slog.Level) {
	HoldRuntimeLogs()
	held.Lock()
	runtimeLog.Store(log.With("component", "func-go"))
	lines := held.lines
	held.lines = nil
	held.Unlock()
	for _, line := range lines {
		_, _ = zerologWriter{}.Write(line)
	}
	zerolog.SetGlobalLevel(zerologLevel(level))
	slog.SetDefault(log)
}

func zerologLevel(l slog.Level) zerolog.Level {
	switch {
	case l <= slog.LevelDebug:
		return zerolog.DebugLevel
	case l <= slog.LevelInfo:
		return zerolog.InfoLevel
	case l <= slog.LevelWarn:
		return zerolog.WarnLevel
	}
	return zerolog.ErrorLevel
}

// zerologWriter turns each zerolog line (a JSON object) into a slog
// record of runtimeLog.
type zerologWriter struct{}

func (zerologWriter) Write(p []byte) (int, error) {
	log := runtimeLog.Load()
	if log == nil {
		held.Lock()
		if log = runtimeLog.Load(); log == nil {
			if len(held.lines) < maxHeldLines {
				held.lines = append(held.lines, bytes.Clone(p))
			}
			held.Unlock()
			return len(p), nil
		}
		held.Unlock()
	}
	var fields map[string]any
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	if err := d.Decode(&fields); err != nil {
		log.Warn("unreadable func-go log line", "line", string(bytes.TrimSpace(p)))
		return len(p), nil
	}
	level := slog.LevelInfo
	switch fields[zerolog.LevelFieldName] {
	case "trace", "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	}
	msg, _ := fields[zerolog.MessageFieldName].(string)
	delete(fields, zerolog.LevelFieldName)
	delete(fields, zerolog.MessageFieldName)
	delete(fields, zerolog.TimestampFieldName)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, fields[k]))
	}
	log.LogAttrs(context.Background(), level, msg, attrs...)
	return len(p), nil
}

// logRequest writes the one line of a request answered 4xx or 5xx: at
// debug for 4xx (a client's mistake; a flood of them must not fill the
// log at info), warn for 503, error for other 5xx. Lines of one status and
// reason are rate-limited to one a second, the next one counting those
// left out. sc is the trace to point to; ours says whether its span is
// this request's.
func (t *Telemetry) logRequest(ctx context.Context, rec *Request, status int, elapsed time.Duration, sc trace.SpanContext, ours bool) {
	level := slog.LevelDebug
	msg := "request rejected"
	switch {
	case status == http.StatusServiceUnavailable:
		level, msg = slog.LevelWarn, "request failed"
	case status >= 500:
		level, msg = slog.LevelError, "request failed"
	}
	if !t.log.Enabled(ctx, level) {
		return
	}
	ok, suppressed := t.limit.allow(strconv.Itoa(status)+" "+rec.reason, t.now())
	if !ok {
		return
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("route", rec.route),
		slog.String("method", rec.method),
		slog.Int("status", status),
		slog.String("reason", rec.reasonOr("none")),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	)
	if rec.received > 0 {
		attrs = append(attrs, slog.String("format", rec.format), slog.Int("events", rec.received))
	}
	if sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
		if ours {
			attrs = append(attrs, slog.String("span_id", sc.SpanID().String()))
		}
	}
	if ce := rec.ce; ce != nil {
		attrs = append(attrs, slog.String("ce.id", ce.ID), slog.String("ce.source", ce.Source), slog.String("ce.type", ce.Type))
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("error", rec.err.Error()))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	t.log.LogAttrs(ctx, level, msg, attrs...)
}
