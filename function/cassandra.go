package function

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// saveParallelism bounds how many events of one request are written at
// once; each event writes its tables concurrently on top of that.
const saveParallelism = 32

// cassandraStore is the Store backed by one long-lived gocql session.
type cassandraStore struct {
	cfg     Config
	log     *slog.Logger
	session atomic.Pointer[gocql.Session]

	insertByID, insertByUser, insertByTarget, selectByID string
}

func newCassandraStore(cfg Config, log *slog.Logger) *cassandraStore {
	ks := cfg.CassandraKeyspace
	return &cassandraStore{
		cfg: cfg,
		log: log,
		insertByID: fmt.Sprintf(`INSERT INTO %s.events_by_id
  (event_id, occurred_at, received_at, username, target, description, source) VALUES (?, ?, ?, ?, ?, ?, ?)`, ks),
		insertByUser: fmt.Sprintf(`INSERT INTO %s.events_by_user
  (username, day, occurred_at, event_id, received_at, target, description, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ks),
		insertByTarget: fmt.Sprintf(`INSERT INTO %s.events_by_target
  (target, day, bucket, description, occurred_at, event_id, username, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ks),
		selectByID: fmt.Sprintf(`SELECT occurred_at, received_at FROM %s.events_by_id WHERE event_id = ?`, ks),
	}
}

// clusterConfig turns Config into the driver's settings.
func (s *cassandraStore) clusterConfig() *gocql.ClusterConfig {
	c := gocql.NewCluster(s.cfg.CassandraHosts...)
	c.Consistency = s.cfg.CassandraConsistency
	c.Timeout = s.cfg.CassandraTimeout
	c.ConnectTimeout = s.cfg.CassandraConnectTimeout
	c.DefaultIdempotence = true
	// One retry on another connection or replica; the context deadline of
	// each query still bounds the whole attempt.
	c.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 1}
	// Look for downed nodes often, so that service resumes soon after an
	// outage (the driver's default is a minute).
	c.ReconnectInterval = 2 * time.Second
	fallback := gocql.RoundRobinHostPolicy()
	if s.cfg.CassandraLocalDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(s.cfg.CassandraLocalDC)
	}
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback, gocql.ShuffleReplicas())
	if s.cfg.CassandraUsername != "" {
		c.Authenticator = gocql.PasswordAuthenticator{Username: s.cfg.CassandraUsername, Password: s.cfg.CassandraPassword}
	}
	c.Logger = gocqlLogger{s.log.With("component", "gocql")}
	return c
}

// connect opens the session once, creates the schema when configured to,
// and checks that the tables exist. On success the store becomes ready.
func (s *cassandraStore) connect(ctx context.Context) error {
	session, err := s.clusterConfig().CreateSession()
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	if err := s.prepareSchema(ctx, session); err != nil {
		session.Close()
		return err
	}
	s.session.Store(session)
	return nil
}

func (s *cassandraStore) prepareSchema(ctx context.Context, session *gocql.Session) error {
	if s.cfg.CassandraSchemaCreate {
		for _, stmt := range schemaStatements(s.cfg.CassandraKeyspace, s.cfg.CassandraReplication) {
			qctx, cancel := context.WithTimeout(ctx, s.cfg.CassandraConnectTimeout+s.cfg.CassandraTimeout)
			err := session.Query(stmt).Consistency(gocql.All).WithContext(qctx).Exec()
			cancel()
			if err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if err := session.AwaitSchemaAgreement(ctx); err != nil {
			return fmt.Errorf("await schema agreement: %w", err)
		}
	}
	// Read the schema tables rather than the driver's metadata cache, which
	// learns of new tables asynchronously.
	qctx, cancel := context.WithTimeout(ctx, s.cfg.CassandraTimeout)
	defer cancel()
	iter := session.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, s.cfg.CassandraKeyspace).
		WithContext(qctx).Iter()
	found := map[string]bool{}
	var name string
	for iter.Scan(&name) {
		found[name] = true
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("read the tables of keyspace %s: %w", s.cfg.CassandraKeyspace, err)
	}
	for _, table := range []string{"events_by_id", "events_by_user", "events_by_target"} {
		if !found[table] {
			return fmt.Errorf("table %s.%s is missing (create it from cassandra/schema.cql or set CASSANDRA_SCHEMA_CREATE=true)", s.cfg.CassandraKeyspace, table)
		}
	}
	return nil
}

// Ready implements Store: the session is open and the driver sees at
// least one node up.
func (s *cassandraStore) Ready() bool {
	session := s.session.Load()
	if session == nil || session.Closed() {
		return false
	}
	for _, h := range session.GetHosts() {
		if h.IsUp() {
			return true
		}
	}
	return false
}

// close ends the session; in-flight queries fail.
func (s *cassandraStore) close() {
	if session := s.session.Swap(nil); session != nil {
		session.Close()
	}
}

// Save implements Store. Events are written concurrently; the first
// failure cancels the rest and is returned. ctx's deadline bounds the whole
// save; the driver's per-request timeout (CASSANDRA_TIMEOUT) bounds each
// query as well.
func (s *cassandraStore) Save(ctx context.Context, events []Event) error {
	session := s.session.Load()
	if session == nil {
		return fmt.Errorf("%w: not connected yet", ErrUnavailable)
	}
	if len(events) == 1 {
		return classify(s.saveOne(ctx, session, &events[0]))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		sem      = make(chan struct{}, saveParallelism)
	)
	for i := range events {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(ev *Event) {
			defer func() { <-sem; wg.Done() }()
			if err := s.saveOne(ctx, session, ev); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		}(&events[i])
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return classify(firstErr)
}

// saveOne writes one event to every table. The rows' keys depend only on
// the event's ID and OccurredAt, so a retry overwrites the same rows. An
// event whose client gave an id but no time takes the time it was first
// stored with: it is read from events_by_id, and a new event writes that
// row before the others, so a partial failure cannot split a retry.
func (s *cassandraStore) saveOne(ctx context.Context, session *gocql.Session, ev *Event) error {
	occurred, received := ev.OccurredAt, ev.ReceivedAt
	if occurred.IsZero() {
		if !ev.Retryable {
			occurred = received
		} else {
			var o, r time.Time
			err := s.query(ctx, session, s.selectByID, ev.ID).Scan(&o, &r)
			switch {
			case err == nil:
				occurred, received = o, r
			case errors.Is(err, gocql.ErrNotFound):
				occurred = received
				if err := s.exec(ctx, session, s.insertByID, ev.ID, occurred, received, ev.Username, ev.Target, ev.Description, ev.Source); err != nil {
					return err
				}
			default:
				return err
			}
		}
	}
	day := time.Date(occurred.Year(), occurred.Month(), occurred.Day(), 0, 0, 0, 0, time.UTC)
	statements := [][]any{
		{s.insertByID, ev.ID, occurred, received, ev.Username, ev.Target, ev.Description, ev.Source},
		{s.insertByUser, ev.Username, day, occurred, ev.ID, received, ev.Target, ev.Description, ev.Source},
		{s.insertByTarget, ev.Target, day, bucketOf(ev.ID), ev.Description, occurred, ev.ID, ev.Username, received},
	}
	errs := make(chan error, len(statements))
	for _, st := range statements {
		go func() { errs <- s.exec(ctx, session, st[0].(string), st[1:]...) }()
	}
	var first error
	for range statements {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *cassandraStore) query(ctx context.Context, session *gocql.Session, stmt string, args ...any) *gocql.Query {
	return session.Query(stmt, args...).Idempotent(true).WithContext(ctx)
}

func (s *cassandraStore) exec(ctx context.Context, session *gocql.Session, stmt string, args ...any) error {
	return s.query(ctx, session, stmt, args...).Exec()
}

// bucketOf spreads a target's events over targetBuckets partitions by a
// stable hash of the event id, so a retry lands in the same bucket.
func bucketOf(id string) int16 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int16(h.Sum32() % targetBuckets)
}

// classify marks errors that a retry may cure with ErrUnavailable. The
// rest (a bad query, refused credentials) are faults of ours.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var reqErr gocql.RequestError
	if errors.As(err, &reqErr) {
		switch reqErr.Code() {
		case gocql.ErrCodeSyntax, gocql.ErrCodeInvalid, gocql.ErrCodeUnauthorized, gocql.ErrCodeConfig,
			gocql.ErrCodeCredentials, gocql.ErrCodeProtocol, gocql.ErrCodeAlreadyExists:
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// gocqlLogger sends the driver's log lines to slog.
type gocqlLogger struct{ log *slog.Logger }

func (l gocqlLogger) Error(msg string, fields ...gocql.LogField) {
	l.log.Error(msg, logAttrs(fields)...)
}

func (l gocqlLogger) Warning(msg string, fields ...gocql.LogField) {
	l.log.Warn(msg, logAttrs(fields)...)
}

func (l gocqlLogger) Info(msg string, fields ...gocql.LogField) {
	l.log.Info(msg, logAttrs(fields)...)
}

func (l gocqlLogger) Debug(msg string, fields ...gocql.LogField) {
	l.log.Debug(msg, logAttrs(fields)...)
}

func logAttrs(fields []gocql.LogField) []any {
	attrs := make([]any, 0, len(fields))
	for _, f := range fields {
		attrs = append(attrs, slog.String(f.Name, f.Value.String()))
	}
	return attrs
}
