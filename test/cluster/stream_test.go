package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"tracker/test/internal/harness"
)

// sent is one event of the stream, as the client keeps it to send again.
type sent struct {
	ID, User, Target string
	At               time.Time
}

// attempt is one answer the client got.
type attempt struct {
	At      time.Time // when it was sent
	Latency time.Duration
	Status  int // 0: no HTTP answer
	Err     error
}

// stream is a client of the function that sends single events with an id
// and a timestamp at a steady rate (an open loop) and, like a careful
// client, sends an event again with the same id after Retry-After until
// it gets a 2xx. It keeps every attempt and every acknowledged event.
type stream struct {
	url    string
	client *http.Client
	users  int // how many users the events spread over

	mu       sync.Mutex
	attempts []attempt
	acked    []sent
	lost     []sent // never acknowledged within the retry window
	seq      atomic.Int64
}

func newStream(url string) *stream {
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	return &stream{url: url, client: &http.Client{Transport: tr, Timeout: 20 * time.Second}, users: 40}
}

// run sends rate events per second until ctx ends, then waits until every
// event sent is acknowledged or has been retried for a minute.
func (s *stream) run(ctx context.Context, rate float64) {
	load := harness.Load[struct{}]{Rate: rate, Workers: 64, Send: func(_ struct{}, n int, _ time.Time) {
		s.deliver(s.next(n))
	}}
	load.Run(ctx.Done(), 0)
}

func (s *stream) next(n int) sent {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	return sent{ID: id, User: "u" + strconv.Itoa(n%s.users), Target: "https://shop.example/p/" + strconv.Itoa(n%7), At: time.Now().UTC().Truncate(time.Millisecond)}
}

// deliver sends ev until it is acknowledged, waiting Retry-After (or a
// second) between attempts, for up to a minute; an answer other than 503
// is not retried.
func (s *stream) deliver(ev sent) {
	body, _ := json.Marshal(map[string]string{
		"id": ev.ID, "username": ev.User, "target": ev.Target, "description": "VIEW",
		"timestamp": ev.At.Format(time.RFC3339Nano),
	})
	deadline := time.Now().Add(time.Minute)
	for {
		a, retryAfter := s.send(body)
		s.mu.Lock()
		s.attempts = append(s.attempts, a)
		s.mu.Unlock()
		if a.Status >= 200 && a.Status < 300 {
			s.mu.Lock()
			s.acked = append(s.acked, ev)
			s.mu.Unlock()
			return
		}
		retryable := a.Err != nil || a.Status == http.StatusServiceUnavailable
		if !retryable || time.Now().Add(retryAfter).After(deadline) {
			s.mu.Lock()
			s.lost = append(s.lost, ev)
			s.mu.Unlock()
			return
		}
		time.Sleep(retryAfter) // the client's side of Retry-After
	}
}

func (s *stream) send(body []byte) (attempt, time.Duration) {
	a := attempt{At: time.Now()}
	resp, err := s.client.Post(s.url+"/track", "application/json", bytes.NewReader(body))
	a.Latency = time.Since(a.At)
	if err != nil {
		a.Err = err
		return a, time.Second
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	a.Status = resp.StatusCode
	wait := time.Second
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		wait = time.Duration(secs) * time.Second
	}
	return a, wait
}

// failures are the attempts that got no 2xx, by status ("503", "error").
func (s *stream) failures(from, to time.Time) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, a := range s.attempts {
		if a.At.Before(from) || a.At.After(to) {
			continue
		}
		switch {
		case a.Err != nil:
			out["error"]++
		case a.Status < 200 || a.Status >= 300:
			out[strconv.Itoa(a.Status)]++
		}
	}
	return out
}

// p99 is the 99th percentile latency of the attempts sent between from
// and to, and how many there were.
func (s *stream) p99(from, to time.Time) (time.Duration, int) {
	s.mu.Lock()
	var ds []time.Duration
	for _, a := range s.attempts {
		if !a.At.Before(from) && !a.At.After(to) {
			ds = append(ds, a.Latency)
		}
	}
	s.mu.Unlock()
	if len(ds) == 0 {
		return 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[int(0.99*float64(len(ds)-1))], len(ds)
}

func (s *stream) ackedEvents() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acked)
}

func (s *stream) lostEvents() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lost)
}

// missing lists, per table, the acknowledged events that a read through
// session (at its consistency) does not find in keyspace.
func missing(ctx context.Context, session *gocql.Session, keyspace string, events []sent) (map[string][]string, error) {
	tables := harness.Tables{Session: session, Keyspace: keyspace}
	out := map[string][]string{}
	ids := make([]string, len(events))
	byUser, byTarget := map[string][]sent{}, map[string][]sent{}
	days := map[time.Time]bool{}
	for i, ev := range events {
		ids[i] = ev.ID
		byUser[ev.User] = append(byUser[ev.User], ev)
		byTarget[ev.Target] = append(byTarget[ev.Target], ev)
		days[harness.DayOf(ev.At)] = true
	}
	dayList := make([]time.Time, 0, len(days))
	for d := range days {
		dayList = append(dayList, d)
	}
	rows, err := tables.ByID(ctx, ids...)
	if err != nil {
		return nil, fmt.Errorf("events_by_id: %w", err)
	}
	for _, id := range ids {
		if _, ok := rows[id]; !ok {
			out["events_by_id"] = append(out["events_by_id"], id)
		}
	}
	check := func(table string, groups map[string][]sent, read func(string) ([]harness.Row, error)) error {
		for key, evs := range groups {
			rows, err := read(key)
			if err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
			have := map[string]bool{}
			for _, r := range rows {
				have[r.EventID] = true
			}
			for _, ev := range evs {
				if !have[ev.ID] {
					out[table] = append(out[table], ev.ID)
				}
			}
		}
		return nil
	}
	if err := check("events_by_user", byUser, func(u string) ([]harness.Row, error) { return tables.ByUser(ctx, u, dayList...) }); err != nil {
		return nil, err
	}
	if err := check("events_by_target", byTarget, func(tg string) ([]harness.Row, error) { return tables.ByTarget(ctx, tg, dayList...) }); err != nil {
		return nil, err
	}
	return out, nil
}

// requireStored fails t unless every event is found in every table through
// session.
func requireStored(t *testing.T, session *gocql.Session, keyspace, where string, events []sent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A busy cluster may time a read out; read again, a few times.
	miss, err := missing(ctx, session, keyspace, events)
	for try := 1; err != nil && try < 4 && ctx.Err() == nil; try++ {
		time.Sleep(5 * time.Second)
		miss, err = missing(ctx, session, keyspace, events)
	}
	if err != nil {
		t.Fatalf("reading back %s: %v", where, err)
	}
	for table, ids := range miss {
		t.Errorf("%s: %d of %d acknowledged events missing from %s, such as %v", where, len(ids), len(events), table, ids[:min(3, len(ids))])
	}
}

// readiness records the function's readiness every 100 ms.
type readiness struct {
	mu     sync.Mutex
	points []readyPoint
	done   chan struct{}
	wg     sync.WaitGroup
}

type readyPoint struct {
	At    time.Time
	Ready bool
}

func watchReadiness(url string) *readiness {
	r := &readiness{done: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			resp, err := client.Get(url + "/health/readiness")
			at := time.Now()
			if err == nil {
				resp.Body.Close()
				r.mu.Lock()
				r.points = append(r.points, readyPoint{at, resp.StatusCode == http.StatusOK})
				r.mu.Unlock()
			}
			select {
			case <-r.done:
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *readiness) stop() { close(r.done); r.wg.Wait() }

// unready lists the times it answered unready between from and to, and
// how many answers there were.
func (r *readiness) unready(from, to time.Time) ([]time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Time
	n := 0
	for _, p := range r.points {
		if p.At.Before(from) || p.At.After(to) {
			continue
		}
		n++
		if !p.Ready {
			out = append(out, p.At)
		}
	}
	return out, n
}
