package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tracker/test/contract"
	"tracker/test/internal/harness"
)

// request is one POST /track of the load: its body and the ids of its
// events, so that it can be sent again unchanged.
type request struct {
	IDs  []string
	Body []byte
}

// result is what one request got.
type result struct {
	Req        request
	Status     int // 0 when no HTTP answer came
	RetryAfter string
	Detail     string // the problem's detail, for an error status
	Err        error
	Start, End time.Time
	// Written is true when the whole request reached the socket before the
	// answer or the error: the server may have acted on it.
	Written bool
}

func (r result) latency() time.Duration { return r.End.Sub(r.Start) }
func (r result) ok() bool               { return r.Status >= 200 && r.Status < 300 }

// load sends POST /track requests through harness.Load, either at a
// steady rate (open loop: rate > 0, at most `workers` outstanding) or as
// fast as `workers` senders can (closed loop: rate == 0), and keeps every
// result.
type load struct {
	url     string
	client  *http.Client
	next    func(n int) request
	rate    float64
	workers int
	limit   int // most requests to send; 0: until the context ends

	inflight atomic.Int64 // sent, not answered yet
	answered atomic.Int64 // got an HTTP status
	okCount  atomic.Int64 // got a 2xx
	errCount atomic.Int64 // got no HTTP answer

	gen     harness.Load[struct{}]
	mu      sync.Mutex
	results []result
}

// newClient is an HTTP client with keep-alive connections for up to conns
// concurrent requests, whose answers all go through the contract checker.
// Its timeout only guards the test against a hang; a hang fails the test.
func newClient(c *contract.Checker, conns int) *http.Client {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	return &http.Client{Transport: c.Transport(tr), Timeout: 20 * time.Second}
}

// run sends until ctx ends (or limit requests are sent) and returns once
// every request sent is answered or failed. A request in flight when ctx
// ends is not cancelled: its answer counts.
func (l *load) run(ctx context.Context) []result {
	l.gen = harness.Load[struct{}]{Rate: l.rate, Workers: l.workers, Send: func(_ struct{}, n int, _ time.Time) {
		l.record(l.send(l.next(n)))
	}}
	l.gen.Run(ctx.Done(), l.limit)
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}

// stalls is how many sends of the open loop waited for a free slot.
func (l *load) stalls() int64 { return l.gen.Stalls() }

func (l *load) record(r result) {
	l.mu.Lock()
	l.results = append(l.results, r)
	l.mu.Unlock()
}

func (l *load) send(req request) result {
	var written atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { written.Store(true) }}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	r := result{Req: req, Start: time.Now()}
	l.inflight.Add(1)
	defer l.inflight.Add(-1)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url+"/track", bytes.NewReader(req.Body))
	if err != nil {
		panic(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(hreq)
	r.End = time.Now()
	r.Written = written.Load()
	if err != nil {
		r.Err = err
		l.errCount.Add(1)
		return r
	}
	r.Status, r.RetryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	if r.Status >= 400 {
		var p struct{ Detail string }
		_ = json.NewDecoder(resp.Body).Decode(&p)
		r.Detail = p.Detail
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	l.answered.Add(1)
	if r.ok() {
		l.okCount.Add(1)
	}
	return r
}

// sendAll sends every request once, workers at a time.
func sendAll(url string, client *http.Client, reqs []request, workers int) []result {
	if len(reqs) == 0 {
		return nil
	}
	l := &load{url: url, client: client, workers: workers, limit: len(reqs), next: func(n int) request { return reqs[n] }}
	return l.run(context.Background())
}

// warmFunction sends next(0), next(1), ... one at a time until
// warmRequests in a row are answered 201, as a client would before it
// counts on the function; a minute without that fails the test.
func warmFunction(t *testing.T, url string, client *http.Client, next func(n int) request) {
	t.Helper()
	const warmRequests = 20
	deadline := time.Now().Add(time.Minute)
	good := 0
	var last result
	for n := 0; good < warmRequests; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("warm-up: no %d 201s in a row within a minute; last answer %d %q (%v)", warmRequests, last.Status, last.Detail, last.Err)
		}
		last = sendAll(url, client, []request{next(n)}, 1)[0]
		if last.Status == http.StatusCreated {
			good++
		} else {
			good = 0
		}
	}
}

// resendUntilStored sends reqs, then again those without a 2xx after
// their Retry-After, as a client does, until every one has a 2xx or
// within has passed; it returns the requests still without one.
func resendUntilStored(url string, client *http.Client, reqs []request, within time.Duration) []request {
	deadline := time.Now().Add(within)
	for len(reqs) > 0 && time.Now().Before(deadline) {
		results := sendAll(url, client, reqs, 16)
		reqs = reqs[:0:0]
		for _, r := range results {
			if !r.ok() {
				reqs = append(reqs, r.Req)
			}
		}
		if len(reqs) > 0 {
			// The client's side of Retry-After, not a wait for state.
			time.Sleep(min(retryAfter(results), time.Until(deadline)))
		}
	}
	return reqs
}

// retryAfter is the longest Retry-After among results, at least a second.
func retryAfter(results []result) time.Duration {
	wait := time.Second
	for _, r := range results {
		if s, err := strconv.Atoi(r.RetryAfter); err == nil && time.Duration(s)*time.Second > wait {
			wait = time.Duration(s) * time.Second
		}
	}
	return wait
}

// plainRequest is one plain JSON request; a batch when there are several
// events.
func plainRequest(events ...map[string]string) request {
	var req request
	for _, e := range events {
		req.IDs = append(req.IDs, e["id"])
	}
	var v any = events
	if len(events) == 1 {
		v = events[0]
	}
	body, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	req.Body = body
	return req
}

// event is one impression with a client id; a zero ts leaves the time to
// the function.
func event(id, user, target, description string, ts time.Time) map[string]string {
	e := map[string]string{"id": id, "username": user, "target": target, "description": description}
	if !ts.IsZero() {
		e["timestamp"] = ts.UTC().Format(time.RFC3339Nano)
	}
	return e
}

// tally counts results by outcome: "201", "503", "error".
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
			ids = append(ids, r.Req.IDs...)
		}
	}
	return ids
}

// percentile of the latencies of results for which keep is true.
func percentile(results []result, keep func(result) bool, p float64) time.Duration {
	var ds []time.Duration
	for _, r := range results {
		if keep(r) {
			ds = append(ds, r.latency())
		}
	}
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := int(p * float64(len(ds)-1))
	return ds[i]
}

// waitFor polls cond every few milliseconds until it holds or timeout
// passes; it reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
