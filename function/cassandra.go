package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// writers is the most statements one process has in flight to Cassandra.
// Long-lived writer goroutines run them: a goroutine per statement spent
// about a tenth of the CPU growing fresh stacks, and the bound keeps a
// burst of batches from queueing thousands of statements inside Cassandra,
// where they cost memory on both sides and then time out together.
// Statements past the bound wait in the function, within their deadline.
const writers = 256

// lookupParallelism bounds how many events of one request look up their
// first-stored time at once (events with a client id but no timestamp).
const lookupParallelism = 32

// errNotConnected answers a save that comes before the first connection.
var errNotConnected = fmt.Errorf("%w: not connected yet", ErrUnavailable)

// cassandraStore is the Store backed by one long-lived gocql session.
type cassandraStore struct {
	cfg     Config
	log     *slog.Logger
	session atomic.Pointer[gocql.Session]

	// inserts are the INSERTs of events_by_id, events_by_user and
	// events_by_target, in the order of rowsOf.
	inserts    [3]string
	selectByID string
	// claimByID is the INSERT of events_by_id as a lightweight
	// transaction: of concurrent deliveries of one new event, exactly one
	// writes the row, and the others read it.
	claimByID string

	// queue hands statements to the writers; it is unbuffered, so a
	// statement is either taken by a writer or still with its request.
	queue     chan statement
	startOnce sync.Once
	health    writeHealth
	quit      chan struct{}
	quitOnce  sync.Once
}

func newCassandraStore(cfg Config, log *slog.Logger) *cassandraStore {
	ks := cfg.CassandraKeyspace
	return &cassandraStore{
		cfg: cfg,
		log: log,
		inserts: [3]string{
			fmt.Sprintf(`INSERT INTO %s.events_by_id
  (event_id, occurred_at, received_at, username, target, description, source) VALUES (?, ?, ?, ?, ?, ?, ?)`, ks),
			fmt.Sprintf(`INSERT INTO %s.events_by_user
  (username, day, occurred_at, event_id, received_at, target, description, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ks),
			fmt.Sprintf(`INSERT INTO %s.events_by_target
  (target, day, bucket, description, occurred_at, event_id, username, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ks),
		},
		selectByID: fmt.Sprintf(`SELECT occurred_at, received_at FROM %s.events_by_id WHERE event_id = ?`, ks),
		claimByID: fmt.Sprintf(`INSERT INTO %s.events_by_id
  (event_id, occurred_at, received_at, username, target, description, source) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`, ks),
		queue: make(chan statement),
		quit:  make(chan struct{}),
	}
}

// OpenStore connects to Cassandra exactly as Start does (the same driver
// settings, schema handling and statements) and returns the Store with a
// function that closes its session. The function itself never calls it:
// it exists so that the benchmark in test/bench can measure the
// direct-driver ceiling, the same writes without HTTP.
func OpenStore(ctx context.Context, cfg Config, log *slog.Logger) (Store, func(), error) {
	s := newCassandraStore(cfg, log)
	if err := s.connect(ctx); err != nil {
		return nil, nil, err
	}
	return s, s.close, nil
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
	// Token-aware: each write goes straight to a replica of its partition.
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback, gocql.ShuffleReplicas())
	// One connection per host (the driver's default is two): a connection
	// carries up to 32,768 requests at once, and with all of them on one
	// socket the driver's write coalescing (200 µs, its default) puts
	// twice as many frames in each write, so both the function and
	// Cassandra spend less CPU per event (10-25 % in test/bench; see
	// BENCHMARKS.md). The driver prepares each INSERT once and reuses it.
	c.NumConns = 1
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
	s.startOnce.Do(func() {
		for range writers {
			go s.writer()
		}
	})
	return nil
}

// prepareSchema makes sure the keyspace and tables exist. It reads the
// schema tables first, so that a start with the schema in place (every
// start but the first) runs no DDL and waits for no schema agreement; it
// creates what is missing only when CASSANDRA_SCHEMA_CREATE is true.
func (s *cassandraStore) prepareSchema(ctx context.Context, session *gocql.Session) error {
	missing, err := s.missingTables(ctx, session)
	if err != nil || len(missing) == 0 {
		return err
	}
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
		if missing, err = s.missingTables(ctx, session); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("table %s.%s is missing (create it from cassandra/schema.cql or set CASSANDRA_SCHEMA_CREATE=true)", s.cfg.CassandraKeyspace, missing[0])
	}
	return s.tablesAnswer(ctx, session)
}

// tablesAnswer reads one (empty) partition of each table at the configured
// consistency. A table listed in system_schema may not be live yet where
// the writes go: a CREATE still being applied (perhaps our own, from an
// attempt whose request timed out while Cassandra went on with it), or not
// yet on every replica. Writes to it would fail as "unconfigured table", a
// fault that no retry of the client cures; the connect loop retries instead.
func (s *cassandraStore) tablesAnswer(ctx context.Context, session *gocql.Session) error {
	ks, day := s.cfg.CassandraKeyspace, time.Unix(0, 0).UTC()
	probes := []struct {
		table, stmt string
		args        []any
	}{
		{"events_by_id", `SELECT event_id FROM %s.events_by_id WHERE event_id = ?`, []any{"schema probe"}},
		{"events_by_user", `SELECT event_id FROM %s.events_by_user WHERE username = ? AND day = ?`, []any{"schema probe", day}},
		{"events_by_target", `SELECT event_id FROM %s.events_by_target WHERE target = ? AND day = ? AND bucket = ?`, []any{"schema probe", day, int16(0)}},
	}
	for _, p := range probes {
		qctx, cancel := context.WithTimeout(ctx, s.cfg.CassandraTimeout)
		err := session.Query(fmt.Sprintf(p.stmt, ks), p.args...).WithContext(qctx).Exec()
		cancel()
		if err != nil {
			return fmt.Errorf("read table %s.%s: %w", ks, p.table, err)
		}
	}
	return nil
}

// missingTables lists the function's tables that the keyspace lacks. It
// reads the schema tables rather than the driver's metadata cache, which
// learns of new tables asynchronously.
func (s *cassandraStore) missingTables(ctx context.Context, session *gocql.Session) ([]string, error) {
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
		return nil, fmt.Errorf("read the tables of keyspace %s: %w", s.cfg.CassandraKeyspace, err)
	}
	var missing []string
	for _, table := range []string{"events_by_id", "events_by_user", "events_by_target"} {
		if !found[table] {
			missing = append(missing, table)
		}
	}
	return missing, nil
}

// Ready implements Store: the session is open, the driver sees at least
// one node up, and saves have not been failing (see writeHealth). While
// they have, each call starts a probe: a read of events_by_id at the
// configured consistency, the replicas and the path a write takes.
func (s *cassandraStore) Ready() bool {
	session := s.session.Load()
	if session == nil || session.Closed() {
		return false
	}
	up := false
	for _, h := range session.GetHosts() {
		if h.IsUp() {
			up = true
			break
		}
	}
	if !up {
		return false
	}
	if s.health.healthy() {
		return true
	}
	s.health.probe(time.Now(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CassandraTimeout)
		defer cancel()
		return s.query(ctx, session, s.selectByID, "readiness probe").Exec()
	})
	return false
}

// close ends the session and the writers; in-flight queries fail.
func (s *cassandraStore) close() {
	s.quitOnce.Do(func() { close(s.quit) })
	if session := s.session.Swap(nil); session != nil {
		session.Close()
	}
}

// Save implements Store. Every row of every event is written
// concurrently by the writers; the first failure cancels the rest and is
// returned. ctx's deadline bounds the whole save, waiting for a writer
// included; the driver's per-request timeout (CASSANDRA_TIMEOUT) bounds
// each query as well.
func (s *cassandraStore) Save(ctx context.Context, events []Event) error {
	err := s.save(ctx, events)
	switch {
	case err == nil:
		s.health.succeeded()
	case errors.Is(err, errNotConnected), errors.Is(ctx.Err(), context.Canceled):
		// Readiness is false until connected anyway, and a client that
		// went away says nothing about Cassandra.
	case errors.Is(err, ErrUnavailable):
		s.health.failed()
	}
	return err
}

func (s *cassandraStore) save(ctx context.Context, events []Event) error {
	session := s.session.Load()
	if session == nil {
		return errNotConnected
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	times, err := s.resolveTimes(ctx, session, events)
	if err != nil {
		return classify(err)
	}
	w := &saveWait{cancel: cancel}
events:
	for i := range events {
		t := givenTimes(&events[i])
		if times != nil {
			t = times[i]
		}
		rows := rowsOf(&events[i], t.occurred, t.received)
		for table, values := range rows {
			if table == 0 && t.byIDWritten {
				continue
			}
			if !s.submit(ctx, w, s.inserts[table], values) {
				break events
			}
		}
	}
	w.wg.Wait()
	return classify(w.first())
}

// eventTimes are the times an event's rows are written with.
type eventTimes struct {
	occurred, received time.Time
	// byIDWritten is set when resolveTimes already wrote events_by_id.
	byIDWritten bool
}

// resolveTimes settles when each event occurred. The rows' keys depend
// only on the event's ID and that time, so a retry overwrites the same
// rows. An event whose client gave an id but no time takes the time it was
// first stored with (see lookup), and its events_by_id row is written
// before the others, so a partial failure cannot split a retry.
// It returns nil when no event needs a lookup; then every event's time is
// its OccurredAt, or its ReceivedAt when that is zero.
func (s *cassandraStore) resolveTimes(ctx context.Context, session *gocql.Session, events []Event) ([]eventTimes, error) {
	if !slices.ContainsFunc(events, needsLookup) {
		return nil, nil
	}
	times := make([]eventTimes, len(events))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs error
		sem  = make(chan struct{}, lookupParallelism)
	)
	for i := range events {
		ev := &events[i]
		if !needsLookup(*ev) {
			times[i] = givenTimes(ev)
			continue
		}
		times[i] = eventTimes{received: ev.ReceivedAt}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, errors.Join(errs, ctx.Err())
		}
		wg.Add(1)
		go func(t *eventTimes) {
			defer func() { <-sem; wg.Done() }()
			if err := s.lookup(ctx, session, ev, t); err != nil {
				mu.Lock()
				if errs == nil {
					errs = err
				}
				mu.Unlock()
			}
		}(&times[i])
	}
	wg.Wait()
	return times, errs
}

// givenTimes are the times of an event that needs no lookup: its own
// OccurredAt, or its ReceivedAt when the client gave none.
func givenTimes(ev *Event) eventTimes {
	t := eventTimes{occurred: ev.OccurredAt, received: ev.ReceivedAt}
	if t.occurred.IsZero() {
		t.occurred = t.received
	}
	return t
}

// needsLookup reports whether ev's time must come from events_by_id: its
// client gave an id, so it may be a retry, but no time.
func needsLookup(ev Event) bool { return ev.OccurredAt.IsZero() && ev.Retryable }

// lookup fills t for ev from events_by_id: ev claims the row with
// INSERT ... IF NOT EXISTS, and when it exists already takes the times it
// holds. Deliveries that race (a client that retries while its first
// attempt is still being written) each have their own receive time;
// without the transaction each could find no row and store the event
// again under its own time. The transaction costs a Paxos round, so only
// events with an id and no time pay it. There is no plain read first:
// most such events are new, and the Paxos round reads the row anyway.
func (s *cassandraStore) lookup(ctx context.Context, session *gocql.Session, ev *Event, t *eventTimes) error {
	rows := rowsOf(ev, t.received, t.received)
	existing := make(map[string]any, 8)
	applied, err := s.query(ctx, session, s.claimByID, rows[0]...).
		SerialConsistency(s.serialConsistency()).MapScanCAS(existing)
	switch {
	case err != nil:
		return err
	case applied:
		t.occurred = t.received
		t.byIDWritten = true
		return nil
	}
	o, okO := existing["occurred_at"].(time.Time)
	r, okR := existing["received_at"].(time.Time)
	if !okO || !okR {
		return fmt.Errorf("events_by_id row of a claimed event id has no times: %v", existing)
	}
	t.occurred, t.received = o, r
	return nil
}

// serialConsistency is the consistency of the Paxos round of lookup:
// within the local data center when writes are.
func (s *cassandraStore) serialConsistency() gocql.Consistency {
	switch s.cfg.CassandraConsistency {
	case gocql.LocalQuorum, gocql.LocalOne:
		return gocql.LocalSerial
	}
	if s.cfg.CassandraLocalDC != "" {
		return gocql.LocalSerial
	}
	return gocql.Serial
}

// row is the values of one INSERT, in the column order of its statement.
type row []any

// rowsOf returns ev's rows in events_by_id, events_by_user and
// events_by_target, in the order of cassandraStore.inserts. The rows share
// one backing array and each value is boxed once, however many rows hold it.
func rowsOf(ev *Event, occurred, received time.Time) [3]row {
	var (
		id, user, target, desc, source any = ev.ID, ev.Username, ev.Target, ev.Description, ev.Source
		occ, rec, day                  any = occurred, received, time.Date(occurred.Year(), occurred.Month(), occurred.Day(), 0, 0, 0, 0, time.UTC)
	)
	v := []any{
		id, occ, rec, user, target, desc, source,
		user, day, occ, id, rec, target, desc, source,
		target, day, bucketOf(ev.ID), desc, occ, id, user, rec,
	}
	return [3]row{v[0:7:7], v[7:15:15], v[15:23:23]}
}

// statement is one INSERT handed to a writer.
type statement struct {
	ctx    context.Context
	wait   *saveWait
	stmt   string
	values row
}

// saveWait collects the outcome of one Save's statements.
type saveWait struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	mu     sync.Mutex
	err    error
}

// fail records the first error and cancels the statements not yet run.
func (w *saveWait) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
		w.cancel()
	}
	w.mu.Unlock()
}

func (w *saveWait) first() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// submit hands one statement to a writer, waiting for a free one until ctx
// ends. It reports whether the statement was taken.
func (s *cassandraStore) submit(ctx context.Context, w *saveWait, stmt string, values row) bool {
	w.wg.Add(1)
	select {
	case s.queue <- statement{ctx: ctx, wait: w, stmt: stmt, values: values}:
		return true
	case <-ctx.Done():
		w.fail(ctx.Err())
	case <-s.quit:
		w.fail(fmt.Errorf("%w: the store is closed", ErrUnavailable))
	}
	w.wg.Done()
	return false
}

// writer runs statements until the store is closed. It keeps its stack
// between statements, grown once to the driver's depth.
func (s *cassandraStore) writer() {
	for {
		select {
		case st := <-s.queue:
			st.run(s.session.Load())
		case <-s.quit:
			return
		}
	}
}

// run executes the statement on session and records its outcome.
func (st statement) run(session *gocql.Session) {
	defer st.wait.wg.Done()
	err := st.ctx.Err()
	switch {
	case err != nil:
	case session == nil:
		err = fmt.Errorf("%w: the store is closed", ErrUnavailable)
	default:
		err = session.Query(st.stmt, st.values...).ExecContext(st.ctx)
	}
	if err != nil {
		st.wait.fail(err)
	}
}

func (s *cassandraStore) query(ctx context.Context, session *gocql.Session, stmt string, args ...any) *gocql.Query {
	return session.Query(stmt, args...).Idempotent(true).WithContext(ctx)
}

// bucketOf spreads a target's events over targetBuckets partitions by a
// stable hash of the event id (32-bit FNV-1a), so a retry lands in the
// same bucket.
func bucketOf(id string) int16 {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int16(h % targetBuckets)
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
