package harness

import (
	"context"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Row is one event's row as read back from one of the function's tables.
// events_by_target has no source column; its rows leave Source empty.
type Row struct {
	EventID     string
	Username    string
	Target      string
	Description string
	Source      string
	OccurredAt  time.Time
}

// Tables reads back what the function wrote to the tables of a keyspace.
// It is the one reader of rows the suites share.
type Tables struct {
	Session  *gocql.Session
	Keyspace string
}

// targetBuckets is how many buckets events_by_target spreads a target's
// day over (the store's own constant).
const targetBuckets = 16

// ByID reads the events_by_id rows of ids, by id; an absent id has none.
func (t Tables) ByID(ctx context.Context, ids ...string) (map[string]Row, error) {
	out := map[string]Row{}
	stmt := fmt.Sprintf(`SELECT event_id, username, target, description, source, occurred_at FROM %s.events_by_id WHERE event_id IN ?`, t.Keyspace)
	for start := 0; start < len(ids); start += 100 {
		rows, err := t.scan(ctx, t.Session.Query(stmt, ids[start:min(start+100, len(ids))]), true)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out[r.EventID] = r
		}
	}
	return out, nil
}

// ByUser reads every events_by_user row of user on the UTC days.
func (t Tables) ByUser(ctx context.Context, user string, days ...time.Time) ([]Row, error) {
	stmt := fmt.Sprintf(`SELECT event_id, username, target, description, source, occurred_at FROM %s.events_by_user WHERE username = ? AND day = ?`, t.Keyspace)
	var out []Row
	for _, day := range days {
		rows, err := t.scan(ctx, t.Session.Query(stmt, user, day), true)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// ByTarget reads every events_by_target row of target on the UTC days,
// in every bucket.
func (t Tables) ByTarget(ctx context.Context, target string, days ...time.Time) ([]Row, error) {
	stmt := fmt.Sprintf(`SELECT event_id, username, target, description, occurred_at FROM %s.events_by_target WHERE target = ? AND day = ? AND bucket = ?`, t.Keyspace)
	var out []Row
	for _, day := range days {
		for bucket := int16(0); bucket < targetBuckets; bucket++ {
			rows, err := t.scan(ctx, t.Session.Query(stmt, target, day, bucket), false)
			if err != nil {
				return nil, err
			}
			out = append(out, rows...)
		}
	}
	return out, nil
}

func (t Tables) scan(ctx context.Context, q *gocql.Query, withSource bool) ([]Row, error) {
	iter := q.WithContext(ctx).PageSize(5000).Iter()
	var (
		out []Row
		r   Row
	)
	dest := []any{&r.EventID, &r.Username, &r.Target, &r.Description, &r.Source, &r.OccurredAt}
	if !withSource {
		dest = append(dest[:4], &r.OccurredAt)
	}
	for iter.Scan(dest...) {
		out = append(out, r)
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// DayOf is the UTC day of t, the day of the partitions it is stored in.
func DayOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// DaysAround are yesterday, today and tomorrow in UTC: the rows of a test
// that runs across midnight, or of events whose time the function chose,
// are on one of them.
func DaysAround(now time.Time) []time.Time {
	today := DayOf(now)
	return []time.Time{today.Add(-24 * time.Hour), today, today.Add(24 * time.Hour)}
}
