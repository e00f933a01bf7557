package faults

import (
	"context"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"tracker/test/internal/harness"
)

// readSession opens a session to the suite's node for reading rows back.
func readSession(t *testing.T) *gocql.Session {
	t.Helper()
	s, err := harness.Session(node.Host)
	if err != nil {
		t.Fatalf("connect to %s: %v", node.Host, err)
	}
	t.Cleanup(s.Close)
	return s
}

func readContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// missingByID reads each id from events_by_id and returns those absent.
func missingByID(t *testing.T, s *gocql.Session, keyspace string, ids []string) []string {
	t.Helper()
	found, err := harness.Tables{Session: s, Keyspace: keyspace}.ByID(readContext(t), ids...)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			missing = append(missing, id)
		}
	}
	return missing
}

// rowsByID groups the rows of one table by event id; each value is the
// occurred_at of every row of that id.
type rowsByID map[string][]time.Time

func group(into rowsByID, rows []harness.Row) {
	for _, r := range rows {
		into[r.EventID] = append(into[r.EventID], r.OccurredAt)
	}
}

// userRows reads events_by_user for the users on the days around now.
func userRows(t *testing.T, s *gocql.Session, keyspace string, users []string) rowsByID {
	t.Helper()
	return partitionRows(t, harness.Tables{Session: s, Keyspace: keyspace}, users, harness.Tables.ByUser)
}

// targetRows reads events_by_target for the targets, every bucket, on the
// days around now.
func targetRows(t *testing.T, s *gocql.Session, keyspace string, targets []string) rowsByID {
	t.Helper()
	return partitionRows(t, harness.Tables{Session: s, Keyspace: keyspace}, targets, harness.Tables.ByTarget)
}

// partitionRows reads with read the partitions of each key on the days
// around now.
func partitionRows(t *testing.T, tables harness.Tables, keys []string,
	read func(harness.Tables, context.Context, string, ...time.Time) ([]harness.Row, error)) rowsByID {
	t.Helper()
	out := rowsByID{}
	for _, key := range keys {
		rows, err := read(tables, readContext(t), key, harness.DaysAround(time.Now())...)
		if err != nil {
			t.Fatal(err)
		}
		group(out, rows)
	}
	return out
}

// idRows reads events_by_id for the ids.
func idRows(t *testing.T, s *gocql.Session, keyspace string, ids []string) rowsByID {
	t.Helper()
	found, err := harness.Tables{Session: s, Keyspace: keyspace}.ByID(readContext(t), ids...)
	if err != nil {
		t.Fatal(err)
	}
	out := rowsByID{}
	for _, r := range found {
		out[r.EventID] = append(out[r.EventID], r.OccurredAt)
	}
	return out
}
