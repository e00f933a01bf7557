package function

import "fmt"

// targetBuckets spreads one target's events of a day over this many
// partitions, so that a popular page cannot grow one partition without
// bound. Readers query every bucket; changing it needs a new table.
const targetBuckets = 16

// schemaStatements returns the CQL that creates the keyspace and tables.
// cassandra/schema.cql holds the same statements for operators, with
// comments on the keys; a test keeps the two equal.
func schemaStatements(keyspace, replication string) []string {
	return []string{
		fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s`, keyspace, replication),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.events_by_id (
  event_id text PRIMARY KEY,
  occurred_at timestamp,
  received_at timestamp,
  username text,
  target text,
  description text,
  source text)`, keyspace),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.events_by_user (
  username text,
  day date,
  occurred_at timestamp,
  event_id text,
  received_at timestamp,
  target text,
  description text,
  source text,
  PRIMARY KEY ((username, day), occurred_at, event_id)
) WITH CLUSTERING ORDER BY (occurred_at DESC, event_id ASC)`, keyspace),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.events_by_target (
  target text,
  day date,
  bucket smallint,
  description text,
  occurred_at timestamp,
  event_id text,
  username text,
  received_at timestamp,
  PRIMARY KEY ((target, day, bucket), description, occurred_at, event_id)
) WITH CLUSTERING ORDER BY (description ASC, occurred_at DESC, event_id ASC)`, keyspace),
	}
}
