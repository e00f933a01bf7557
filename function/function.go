// Package function is the tracker: it validates impressions sent to
// POST /track (plain JSON, batches, CloudEvents) and stores them in
// Apache Cassandra before answering. Function carries the func-go entry
// points; the root package of the repository only constructs it.
//
// The package is the HTTP side and the lifecycle. It decodes events with
// package event and stores them with package store; problem.go is the one
// place where their errors become HTTP statuses.
package function

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"tracker/function/event"
	"tracker/function/store"
	"tracker/function/telemetry"
)

// Function is the func-go instance. New makes it without I/O; Start reads
// the configuration, opens the metrics listener and connects in the
// background; requests that arrive before that are answered 503 with
// Retry-After.
type Function struct {
	handler atomic.Pointer[http.Handler]
	store   connecting

	mu      sync.Mutex
	cancel  context.CancelFunc // ends the connect loop
	done    chan struct{}      // closed when the connect loop returns
	tel     *telemetry.Telemetry
	stopped bool // Stop was called; a Start still on its way gives up
}

// New returns a Function that is not started yet.
func New() *Function {
	return &Function{}
}

// Start reads the configuration from env, the environment func-go hands
// it, starts its telemetry, and connects to Cassandra, retrying with
// backoff until it succeeds or Stop is called. func-go calls it in a
// goroutine while it already serves; an error here (an invalid
// configuration, a metrics address that cannot be listened on) stops the
// process.
func (f *Function) Start(_ context.Context, env map[string]string) error {
	cfg, ignored, err := LoadConfig(LookupIn(env))
	var clientCert *x509.Certificate
	if err == nil {
		clientCert, err = cfg.CheckFiles(time.Now())
	}
	if err != nil {
		// func-go's lines, its report of this error among them, still
		// come out: as JSON, the default.
		telemetry.RouteRuntimeLogs(slog.New(slog.NewJSONHandler(os.Stderr, nil)), slog.LevelInfo)
		return fmt.Errorf("invalid configuration: %w", err)
	}
	log, level := newLogger(cfg, os.Stderr)
	telemetry.RouteRuntimeLogs(log, level)
	for _, name := range ignored {
		log.Warn("ignoring an unresolved template value; using the default", "variable", name)
	}
	attrs := []any{"config", cfg}
	if clientCert != nil {
		attrs = append(attrs, slog.Group("client_certificate", "subject", clientCert.Subject.String(),
			"issuer", clientCert.Issuer.String(), "not_after", clientCert.NotAfter.UTC()))
	}
	log.Info("configuration", attrs...)
	password := cfg.CassandraPassword != "" || cfg.CassandraPasswordFile != ""
	switch {
	case cfg.CassandraTLSInsecureSkipVerify:
		log.Warn("CASSANDRA_TLS_INSECURE_SKIP_VERIFY is true: the nodes' certificates are not checked, so whoever sits between the function and Cassandra can read and change the events, and gets the password if one is set")
	case password && !cfg.CassandraTLS:
		log.Warn("a password is set without CASSANDRA_TLS: it crosses the network in clear text, with every event")
	}

	h := newHandler(cfg, &f.store)
	tel, err := telemetry.New(cfg.Telemetry(), log, telemetry.Sources{
		HostsUp:             f.store.HostsUp,
		Ready:               f.store.Healthy,
		EventsInFlight:      h.inflight.Load,
		EventsInFlightLimit: cfg.TrackMaxInflight,
	})
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	if err := tel.ServeMetrics(); err != nil {
		_ = tel.Shutdown(context.Background())
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer close(done)
	f.mu.Lock()
	if f.stopped {
		// Stop came first (a SIGTERM during the start): it found nothing
		// to close, so close here and do not connect.
		f.mu.Unlock()
		cancel()
		return tel.Shutdown(context.Background())
	}
	f.cancel, f.done, f.tel = cancel, done, tel
	f.mu.Unlock()

	// One for every store Open makes, so that a failure that lasts is one
	// line, however many attempts it takes.
	logs := store.NewLogs(log, cfg.Store())
	api := tel.Handler(h.routes())
	f.handler.Store(&api)
	return connectLoop(ctx, log, func(ctx context.Context) error {
		s, err := store.Open(ctx, cfg.Store(), logs, tel.Observer())
		if err == nil {
			f.store.set(s)
		}
		return err
	})
}

// connectLoop calls connect until it succeeds or ctx ends, waiting longer
// after each failure, up to a few seconds. It logs a failure when its
// text differs from the last one's, not at every attempt; one of
// connecting (store.ErrConnect: TLS, credentials, a node away) the store
// has logged with its cause already, so that one goes to debug.
func connectLoop(ctx context.Context, log *slog.Logger, connect func(context.Context) error) error {
	const first, most = 100 * time.Millisecond, 5 * time.Second
	wait := first
	last := ""
	for attempt := 1; ; attempt++ {
		started := time.Now()
		err := connect(ctx)
		if err == nil {
			log.Info("connected to Cassandra", "attempt", attempt, "took", time.Since(started).String())
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		level := slog.LevelWarn
		if err.Error() == last || errors.Is(err, store.ErrConnect) {
			level = slog.LevelDebug
		}
		last = err.Error()
		log.Log(ctx, level, "cannot open the store; retrying", "attempt", attempt, "retry_in", wait.String(), "error", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
		wait = min(wait*2, most)
	}
}

// Stop ends the connect loop, closes the store, then sends the last spans
// and metrics and closes the metrics listener. func-go calls it after the
// HTTP server has finished the requests in flight.
func (f *Function) Stop(ctx context.Context) error {
	f.mu.Lock()
	f.stopped = true
	cancel, done, tel := f.cancel, f.done, f.tel
	f.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	if s := f.store.p.Load(); s != nil {
		s.Close()
	}
	if tel != nil {
		return tel.Shutdown(ctx)
	}
	return nil
}

// Ready reports whether Cassandra takes writes; it drives
// /health/readiness.
func (f *Function) Ready(context.Context) (bool, error) {
	return f.store.Ready(), nil
}

// Alive reports that the process serves; a lost Cassandra makes the
// function unready, not dead, so Kubernetes does not restart it for that.
func (f *Function) Alive(context.Context) (bool, error) {
	return true, nil
}

// Handle serves every path that func-go does not serve itself.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	h := f.handler.Load()
	if h == nil {
		writeProblem(w, r, unavailable("the function is starting", "unavailable", 1))
		return
	}
	(*h).ServeHTTP(w, r)
}

// connecting is the Store of a function that may not have connected yet:
// until the connect loop sets the store, saves fail as unavailable and
// readiness is false.
type connecting struct {
	p atomic.Pointer[store.Store]
}

func (c *connecting) set(s *store.Store) { c.p.Store(s) }

// errNotConnected answers a save that comes before the first connection.
var errNotConnected = fmt.Errorf("%w: not connected yet", store.ErrUnavailable)

func (c *connecting) Save(ctx context.Context, events []event.Event) error {
	if s := c.p.Load(); s != nil {
		return s.Save(ctx, events)
	}
	return errNotConnected
}

func (c *connecting) Ready() bool {
	s := c.p.Load()
	return s != nil && s.Ready()
}

// Healthy is Ready without starting a probe, for the metrics.
func (c *connecting) Healthy() bool {
	s := c.p.Load()
	return s != nil && s.Healthy()
}

// HostsUp is how many Cassandra nodes the driver counts as up; 0 before
// the first connection.
func (c *connecting) HostsUp() int {
	if s := c.p.Load(); s != nil {
		return s.HostsUp()
	}
	return 0
}

// newLogger builds the slog logger of LOG_LEVEL and LOG_FORMAT.
func newLogger(cfg Config, out io.Writer) (*slog.Logger, slog.Level) {
	level, _ := parseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(out, opts)), level
	}
	return slog.New(slog.NewJSONHandler(out, opts)), level
}
