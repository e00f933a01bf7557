package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// targetBuckets spreads one target's events of a day over this many
// partitions, so that a popular page cannot grow one partition without
// bound. Readers query every bucket; changing it needs a new table.
const targetBuckets = 16

// table is one of the event tables. This list drives everything the store
// does with them: schema creation, the INSERT of each row (rowsOf builds
// the rows in the order of tables and of their columns), the readiness
// reads, and the test that keeps cassandra/schema.cql equal to the code.
type table struct {
	name string
	// definition is the CREATE TABLE statement after the table's name.
	definition string
	// columns are the INSERT's columns, in the order of rowsOf's values.
	columns []string
	// partition is the partition key, read with probeKey (an empty
	// partition) to see that the table answers.
	partition []string
	probeKey  []any
}

// The tables, by their index in tables and in the rows of rowsOf.
const (
	byID = iota
	byUser
	byTarget
)

var tables = [...]table{
	byID: {
		name: "events_by_id",
		definition: ` (
  event_id text PRIMARY KEY,
  occurred_at timestamp,
  received_at timestamp,
  username text,
  target text,
  description text,
  source text)`,
		columns:   []string{"event_id", "occurred_at", "received_at", "username", "target", "description", "source"},
		partition: []string{"event_id"},
		probeKey:  []any{"schema probe"},
	},
	byUser: {
		name: "events_by_user",
		definition: ` (
  username text,
  day date,
  occurred_at timestamp,
  event_id text,
  received_at timestamp,
  target text,
  description text,
  source text,
  PRIMARY KEY ((username, day), occurred_at, event_id)
) WITH CLUSTERING ORDER BY (occurred_at DESC, event_id ASC)`,
		columns:   []string{"username", "day", "occurred_at", "event_id", "received_at", "target", "description", "source"},
		partition: []string{"username", "day"},
		probeKey:  []any{"schema probe", time.Unix(0, 0).UTC()},
	},
	byTarget: {
		name: "events_by_target",
		definition: ` (
  target text,
  day date,
  bucket smallint,
  description text,
  occurred_at timestamp,
  event_id text,
  username text,
  received_at timestamp,
  PRIMARY KEY ((target, day, bucket), description, occurred_at, event_id)
) WITH CLUSTERING ORDER BY (description ASC, occurred_at DESC, event_id ASC)`,
		columns:   []string{"target", "day", "bucket", "description", "occurred_at", "event_id", "username", "received_at"},
		partition: []string{"target", "day", "bucket"},
		probeKey:  []any{"schema probe", time.Unix(0, 0).UTC(), int16(0)},
	},
}

// insert is the table's INSERT in keyspace ks.
func (t table) insert(ks string) string {
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(t.columns)), ", ")
	return fmt.Sprintf("INSERT INTO %s.%s (%s) VALUES (%s)", ks, t.name, strings.Join(t.columns, ", "), marks)
}

// probe reads the (empty) partition probeKey of the table in keyspace ks.
func (t table) probe(ks string) string {
	return fmt.Sprintf("SELECT %s FROM %s.%s WHERE %s = ?", t.columns[0], ks, t.name, strings.Join(t.partition, " = ? AND "))
}

// statements are the CQL of one keyspace, built once.
type statements struct {
	inserts [len(tables)]string
	probes  [len(tables)]string
	// claim is the INSERT of events_by_id as a lightweight transaction:
	// of concurrent deliveries of one new event, exactly one writes the
	// row, and the others read it (claim.go).
	claim string
}

func newStatements(ks string) statements {
	var s statements
	for i, t := range tables {
		s.inserts[i], s.probes[i] = t.insert(ks), t.probe(ks)
	}
	s.claim = s.inserts[byID] + " IF NOT EXISTS"
	return s
}

// schemaStatements returns the CQL that creates the keyspace and tables.
// cassandra/schema.cql holds the same statements for operators, with
// comments on the keys; a test keeps the two equal.
func schemaStatements(keyspace, replication string) []string {
	out := []string{fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s", keyspace, replication)}
	for _, t := range tables {
		out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s", keyspace, t.name, t.definition))
	}
	return out
}

// prepareSchema makes sure the keyspace and tables exist. It reads the
// schema tables first, so that a start with the schema in place (every
// start but the first) runs no DDL and waits for no schema agreement; it
// creates what is missing only when Config.SchemaCreate is set.
func (s *Store) prepareSchema(ctx context.Context) error {
	missing, err := s.missingTables(ctx)
	if err != nil || len(missing) == 0 {
		return err
	}
	if s.cfg.SchemaCreate {
		stmts := schemaStatements(s.cfg.Keyspace, s.cfg.Replication)
		// Cassandra checks CREATE on all keyspaces for CREATE KEYSPACE,
		// even with IF NOT EXISTS and the keyspace there: where it is, a
		// role with CREATE on it alone may create the tables.
		grant := "CREATE ON ALL KEYSPACES"
		exists, err := s.keyspaceExists(ctx)
		if err != nil {
			return err
		}
		if exists {
			stmts, grant = stmts[1:], "CREATE ON KEYSPACE "+s.cfg.Keyspace
		}
		for _, stmt := range stmts {
			qctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout+s.cfg.Timeout)
			err := s.session.Query(stmt).Consistency(gocql.All).WithContext(qctx).Exec()
			cancel()
			var reqErr gocql.RequestError
			if errors.As(err, &reqErr) && reqErr.Code() == gocql.ErrCodeUnauthorized {
				return fmt.Errorf("table %s.%s is missing and the role %q may not create it (%w): create the schema from cassandra/schema.cql as a role that may, or GRANT %s TO %s",
					s.cfg.Keyspace, missing[0], s.cfg.Username, err, grant, s.cfg.Username)
			}
			if err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if err := s.session.AwaitSchemaAgreement(ctx); err != nil {
			return fmt.Errorf("await schema agreement: %w", err)
		}
		if missing, err = s.missingTables(ctx); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("table %s.%s is missing and CASSANDRA_SCHEMA_CREATE=false says not to create it: create it from cassandra/schema.cql, or set CASSANDRA_SCHEMA_CREATE=true for a role that may", s.cfg.Keyspace, missing[0])
	}
	return s.tablesAnswer(ctx)
}

// tablesAnswer reads one (empty) partition of each table at the configured
// consistency. A table listed in system_schema may not be live yet where
// the writes go: a CREATE still being applied (perhaps our own, from an
// attempt whose request timed out while Cassandra went on with it), or not
// yet on every replica. Writes to it would fail as "unconfigured table", a
// fault that no retry of the client cures; the connect loop retries instead.
func (s *Store) tablesAnswer(ctx context.Context) error {
	for i, t := range tables {
		qctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err := s.session.Query(s.stmts.probes[i], t.probeKey...).WithContext(qctx).Exec()
		cancel()
		if err != nil {
			return fmt.Errorf("read table %s.%s: %w", s.cfg.Keyspace, t.name, err)
		}
	}
	return nil
}

// keyspaceExists reports whether the keyspace is in the schema tables.
func (s *Store) keyspaceExists(ctx context.Context) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var name string
	err := s.session.Query(`SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?`, s.cfg.Keyspace).
		WithContext(qctx).Scan(&name)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read keyspace %s: %w", s.cfg.Keyspace, err)
	}
	return true, nil
}

// missingTables lists the tables that the keyspace lacks. It reads the
// schema tables rather than the driver's metadata cache, which learns of
// new tables asynchronously.
func (s *Store) missingTables(ctx context.Context) ([]string, error) {
	qctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	iter := s.session.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, s.cfg.Keyspace).
		WithContext(qctx).Iter()
	found := map[string]bool{}
	var name string
	for iter.Scan(&name) {
		found[name] = true
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("read the tables of keyspace %s: %w", s.cfg.Keyspace, err)
	}
	var missing []string
	for _, t := range tables {
		if !found[t.name] {
			missing = append(missing, t.name)
		}
	}
	return missing, nil
}
