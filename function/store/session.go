package store

import (
	"context"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Open connects to Cassandra with cfg, creates the schema when cfg says
// so, checks that every table answers, and returns a store ready for
// writes. logs is where it writes (NewLogs; one for every Open of a
// process, so that what repeats across attempts is written once). obs is
// told of every statement and connection attempt; nil observes nothing.
// A failed Open leaves nothing open; the caller may try again: an error
// that ErrConnect marks came from connecting, and logs said why already.
// Close releases what Open holds.
func Open(ctx context.Context, cfg Config, logs *Logs, obs Observer) (*Store, error) {
	if obs == nil {
		obs = nopObserver{}
	}
	s := &Store{
		cfg:   cfg,
		obs:   obs,
		stmts: newStatements(cfg.Keyspace),
		queue: make(chan statement),
		quit:  make(chan struct{}),
	}
	if cfg.SpeculativeDelay > 0 {
		s.spec = &gocql.SimpleSpeculativeExecution{NumAttempts: 1, TimeoutDelay: cfg.SpeculativeDelay}
	}
	cluster := clusterConfig(cfg, logs.driver)
	driverObs := newDriverObserver(obs, logs, cfg.Keyspace, &s.stmts)
	cluster.QueryObserver, cluster.BatchObserver, cluster.ConnectObserver = driverObs, driverObs, driverObs
	var err error
	if s.session, err = cluster.CreateSession(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
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
func clusterConfig(cfg Config, log gocql.StructuredLogger) *gocql.ClusterConfig {
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
	c.Logger = log
	return c
}
