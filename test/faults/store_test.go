package faults

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// readSession opens a session to the suite's node for reading rows back.
func readSession(t *testing.T) *gocql.Session {
	t.Helper()
	cluster := gocql.NewCluster(node.Host)
	cluster.Timeout = 10 * time.Second
	cluster.ConnectTimeout = 10 * time.Second
	cluster.Consistency = gocql.One
	s, err := cluster.CreateSession()
	if err != nil {
		t.Fatalf("connect to %s: %v", node.Host, err)
	}
	t.Cleanup(s.Close)
	return s
}

// missingByID reads each id from events_by_id and returns those absent.
func missingByID(t *testing.T, s *gocql.Session, keyspace string, ids []string) []string {
	t.Helper()
	stmt := fmt.Sprintf(`SELECT event_id FROM %s.events_by_id WHERE event_id = ?`, keyspace)
	var (
		mu      sync.Mutex
		missing []string
		failed  error
		wg      sync.WaitGroup
		work    = make(chan string)
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var got string
				err := s.Query(stmt, id).WithContext(ctx).Scan(&got)
				cancel()
				mu.Lock()
				switch {
				case err == gocql.ErrNotFound:
					missing = append(missing, id)
				case err != nil && failed == nil:
					failed = fmt.Errorf("read %q: %w", id, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	return missing
}

// days around now in UTC: rows of a test that runs across midnight, or of
// events whose time the function chose, are on one of them.
func days() []time.Time {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	return []time.Time{today.Add(-24 * time.Hour), today, today.Add(24 * time.Hour)}
}

// rowsByID reads whole partitions of one table and groups the rows by
// event id; each value is the occurred_at of every row of that id.
type rowsByID map[string][]time.Time

// userRows reads events_by_user for the users on the days around now.
func userRows(t *testing.T, s *gocql.Session, keyspace string, users []string) rowsByID {
	t.Helper()
	out := rowsByID{}
	stmt := fmt.Sprintf(`SELECT event_id, occurred_at FROM %s.events_by_user WHERE username = ? AND day = ?`, keyspace)
	for _, u := range users {
		for _, d := range days() {
			scanInto(t, s.Query(stmt, u, d), out)
		}
	}
	return out
}

// targetRows reads events_by_target for the targets, every bucket, on the
// days around now.
func targetRows(t *testing.T, s *gocql.Session, keyspace string, targets []string) rowsByID {
	t.Helper()
	out := rowsByID{}
	stmt := fmt.Sprintf(`SELECT event_id, occurred_at FROM %s.events_by_target WHERE target = ? AND day = ? AND bucket = ?`, keyspace)
	for _, target := range targets {
		for _, d := range days() {
			for bucket := int16(0); bucket < 16; bucket++ {
				scanInto(t, s.Query(stmt, target, d, bucket), out)
			}
		}
	}
	return out
}

// idRows reads events_by_id for the ids.
func idRows(t *testing.T, s *gocql.Session, keyspace string, ids []string) rowsByID {
	t.Helper()
	out := rowsByID{}
	stmt := fmt.Sprintf(`SELECT event_id, occurred_at FROM %s.events_by_id WHERE event_id IN ?`, keyspace)
	for start := 0; start < len(ids); start += 100 {
		end := min(start+100, len(ids))
		scanInto(t, s.Query(stmt, ids[start:end]), out)
	}
	return out
}

func scanInto(t *testing.T, q *gocql.Query, out rowsByID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := q.WithContext(ctx).PageSize(5000).Iter()
	var (
		id string
		at time.Time
	)
	for iter.Scan(&id, &at) {
		out[id] = append(out[id], at)
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
}
