package queueproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"tracker/test/internal/harness"
)

// result is what one POST /track got.
type result struct {
	IDs        []string // the ids of the request's events
	Status     int      // 0 when no HTTP answer came
	Body       string
	RetryAfter string
	Err        error
	Start, End time.Time
}

func (r result) ok() bool { return r.Status >= 200 && r.Status < 300 }

// newClient keeps up to conns connections alive. Its timeout only guards
// the test against a hang.
func newClient(conns int) *http.Client {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	return &http.Client{Transport: tr, Timeout: 40 * time.Second}
}

// event is one plain impression with a client id and no timestamp.
func event(id, user, target string) map[string]string {
	return map[string]string{"id": id, "username": user, "target": target, "description": "VIEW"}
}

// post sends events as one plain JSON request (a batch when several).
func post(client *http.Client, url string, events ...map[string]string) result {
	r := result{Start: time.Now()}
	var v any = events
	if len(events) == 1 {
		v = events[0]
	}
	for _, e := range events {
		r.IDs = append(r.IDs, e["id"])
	}
	body, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url+"/track", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(client, req, r)
}

// do sends req and fills r with the answer.
func do(client *http.Client, req *http.Request, r result) result {
	if r.Start.IsZero() {
		r.Start = time.Now()
	}
	resp, err := client.Do(req)
	r.End = time.Now()
	if err != nil {
		r.Err = err
		return r
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r.Status, r.Body, r.RetryAfter, r.Err = resp.StatusCode, string(b), resp.Header.Get("Retry-After"), err
	return r
}

// load sends requests from workers in a closed loop through
// harness.Load until stop is closed, and keeps every result.
type load struct {
	workers int
	send    func(n int) result

	answered, ok atomic.Int64
	mu           sync.Mutex
	results      []result
}

func (l *load) run(stop <-chan struct{}) []result {
	gen := harness.Load[struct{}]{Workers: l.workers, Send: func(_ struct{}, n int, _ time.Time) {
		r := l.send(n)
		if r.Err == nil {
			l.answered.Add(1)
		}
		if r.ok() {
			l.ok.Add(1)
		}
		l.mu.Lock()
		l.results = append(l.results, r)
		l.mu.Unlock()
	}}
	gen.Run(stop, 0)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.results
}

// tally counts results by status, "error" for no answer.
func tally(results []result) map[string]int {
	out := map[string]int{}
	for _, r := range results {
		if r.Err != nil {
			out["error"]++
		} else {
			out[fmt.Sprint(r.Status)]++
		}
	}
	return out
}

// okIDs lists the event ids of every 2xx.
func okIDs(results []result) []string {
	var ids []string
	for _, r := range results {
		if r.ok() {
			ids = append(ids, r.IDs...)
		}
	}
	return ids
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
