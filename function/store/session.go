package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Open connects to Cassandra with cfg, creates the schema when cfg says
// so, checks that every table answers, and returns a store ready for
// writes. obs is told of every statement and connection attempt; nil
// observes nothing. A failed Open leaves nothing open; the caller may try
// again. Close releases what Open holds.
func Open(ctx context.Context, cfg Config, log *slog.Logger, obs Observer) (*Store, error) {
	if obs == nil {
		obs = nopObserver{}
	}
	s := &Store{
		cfg:   cfg,
		log:   log,
		obs:   obs,
		stmts: newStatements(cfg.Keyspace),
		queue: make(chan statement),
		quit:  make(chan struct{}),
	}
	cluster := clusterConfig(cfg, log)
	driverObs := newDriverObserver(obs, cfg.Keyspace, &s.stmts)
	cluster.QueryObserver, cluster.ConnectObserver = driverObs, driverObs
	var err error
	if s.session, err = cluster.CreateSession(); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	if err := s.prepareSchema(ctx); err != nil {
		s.session.Close()
		return nil, err
	}
	s.startWriters()
	return s, nil
}

// Close ends the writers and the session; statements in flight fail.
func (s *Store) Close() {
	s.quitOnce.Do(func() {
		close(s.quit)
		s.session.Close()
	})
}

// clusterConfig turns Config into the driver's settings.
func clusterConfig(cfg Config, log *slog.Logger) *gocql.ClusterConfig {
	c := gocql.NewCluster(cfg.Hosts...)
	c.Consistency = cfg.Consistency
	c.Timeout = cfg.Timeout
	c.ConnectTimeout = cfg.ConnectTimeout
	c.DefaultIdempotence = true
	// One retry on another connection or replica; the context deadline of
	// each query still bounds the whole attempt.
	c.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 1}
	// Look for downed nodes often, so that service resumes soon after an
	// outage (the driver's default is a minute).
	c.ReconnectInterval = 2 * time.Second
	fallback := gocql.RoundRobinHostPolicy()
	if cfg.LocalDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(cfg.LocalDC)
	}
	// Token-aware: each write goes straight to a replica of its partition.
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback, gocql.ShuffleReplicas())
	// One connection per host (the driver's default is two): a connection
	// carries up to 32,768 requests at once, and with all of them on one
	// socket the driver's write coalescing puts more frames in each
	// write, so both the function and Cassandra spend less CPU per event
	// (BENCHMARKS.md, "Changes and their effect"). The driver prepares
	// each INSERT once and reuses it.
	c.NumConns = 1
	creds := &credentials{tls: cfg.TLS, password: cfg.Password, passFile: cfg.PasswordFile, timeout: cfg.ConnectTimeout}
	if cfg.Username != "" {
		c.Authenticator = authenticator{user: cfg.Username, c: creds}
	}
	if cfg.TLS != nil {
		c.HostDialer = creds
	}
	c.Logger = newGocqlLogger(log.With("component", "gocql"))
	return c
}

// gocqlLogger sends the driver's log lines to slog. While a node is away
// the driver logs the same few lines every second or two; each line, by
// its message and error, is written at most once a minute, the next one
// counting those left out.
type gocqlLogger struct {
	log  *slog.Logger
	mu   sync.Mutex
	seen map[string]*repeated
	now  func() time.Time
}

type repeated struct {
	last       time.Time
	suppressed int
}

// repeatEvery is how often one driver line may be written.
const repeatEvery = time.Minute

// maxRepeated bounds the lines remembered; past it they are forgotten.
const maxRepeated = 256

func newGocqlLogger(log *slog.Logger) *gocqlLogger {
	return &gocqlLogger{log: log, seen: map[string]*repeated{}, now: time.Now}
}

func (l *gocqlLogger) Error(msg string, fields ...gocql.LogField) {
	l.write(slog.LevelError, msg, fields)
}

func (l *gocqlLogger) Warning(msg string, fields ...gocql.LogField) {
	l.write(slog.LevelWarn, msg, fields)
}

func (l *gocqlLogger) Info(msg string, fields ...gocql.LogField) {
	l.write(slog.LevelInfo, msg, fields)
}

func (l *gocqlLogger) Debug(msg string, fields ...gocql.LogField) {
	l.write(slog.LevelDebug, msg, fields)
}

func (l *gocqlLogger) write(level slog.Level, msg string, fields []gocql.LogField) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	key := msg
	for _, f := range fields {
		if f.Name == "err" {
			key += "\x00" + f.Value.String()
		}
	}
	now := l.now()
	l.mu.Lock()
	r := l.seen[key]
	if r != nil && now.Sub(r.last) < repeatEvery {
		r.suppressed++
		l.mu.Unlock()
		return
	}
	if r == nil {
		if len(l.seen) >= maxRepeated {
			clear(l.seen)
		}
		r = &repeated{}
		l.seen[key] = r
	}
	suppressed := r.suppressed
	r.last, r.suppressed = now, 0
	l.mu.Unlock()
	attrs := logAttrs(fields)
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	l.log.Log(context.Background(), level, msg, attrs...)
}

func logAttrs(fields []gocql.LogField) []any {
	attrs := make([]any, 0, len(fields)+1)
	for _, f := range fields {
		attrs = append(attrs, slog.String(f.Name, f.Value.String()))
	}
	return attrs
}
