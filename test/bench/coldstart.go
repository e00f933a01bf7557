package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"

	"tracker/test/internal/harness"
)

// coldStart is one start of the function with Cassandra up and the schema
// present.
type coldStart struct {
	// ready is exec to the first 200 of /health/readiness.
	ready time.Duration
	// stored is exec to the first 201 of POST /track, for a request first
	// sent at exec time and resent at once while the port is closed or the
	// function answers 503 (still connecting).
	stored time.Duration
	// attempts is how many POSTs that took.
	attempts int
}

// coldStartPoll is how soon a refused or 503 request is sent again.
const coldStartPoll = time.Millisecond

// coldStartLimit bounds one start.
const coldStartLimit = 30 * time.Second

// measureColdStart starts the function n times. Each start polls readiness
// and posts one event at the same time, both from exec on.
func measureColdStart(ctx context.Context, n int, bin string, env []string, logDir string, g *eventSource, ack *acked) ([]coldStart, error) {
	var out []coldStart
	for range n {
		body := appendPlain(nil, g, g.take(1), time.Now().UTC())
		p, err := startFunction(bin, env, logDir)
		if err != nil {
			return out, err
		}
		cs, err := pollStart(ctx, p, body)
		if stopErr := p.Stop(30 * time.Second); err == nil {
			err = stopErr
		}
		if err != nil {
			return out, fmt.Errorf("cold start: %w\n%s", err, p.LogTail(20))
		}
		ack.n.Add(1)
		out = append(out, cs)
	}
	return out, nil
}

func pollStart(ctx context.Context, p *harness.Function, body []byte) (coldStart, error) {
	ctx, cancel := context.WithTimeout(ctx, coldStartLimit)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	defer client.CloseIdleConnections()

	var (
		cs             coldStart
		wg             sync.WaitGroup
		readyErr, sErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		readyErr = retryUntil(ctx, func() (bool, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/health/readiness", nil)
			resp, err := client.Do(req)
			if err != nil {
				return false, transient(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		})
		cs.ready = time.Since(p.Started)
	}()
	go func() {
		defer wg.Done()
		sErr = retryUntil(ctx, func() (bool, error) {
			cs.attempts++
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/track", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return false, transient(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusCreated:
				return true, nil
			case http.StatusServiceUnavailable:
				return false, nil
			}
			return false, fmt.Errorf("POST /track answered %d", resp.StatusCode)
		})
		cs.stored = time.Since(p.Started)
	}()
	wg.Wait()
	return cs, errors.Join(readyErr, sErr)
}

// retryUntil calls try every coldStartPoll until it reports done, fails,
// or ctx ends.
func retryUntil(ctx context.Context, try func() (bool, error)) error {
	for {
		done, err := try()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s", coldStartLimit)
		case <-time.After(coldStartPoll):
		}
	}
}

// transient hides the errors of a port that is not open yet.
func transient(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	return err
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
