package faults

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// func-go's server timeouts (knative.dev/func-go/http): what bounds a slow
// client. The function cannot change them; this test proves they hold.
const (
	readHeaderTimeout = 2 * time.Second
	readTimeout       = 30 * time.Second
	slowMargin        = 5 * time.Second
)

// TestSlowClients opens connections that send their headers or their body
// too slowly, and one whose body never ends: the server must cut each off
// within its timeouts or its body limit, and keep serving everyone else
// meanwhile. The subtests run in parallel; the slow body sets the length.
func TestSlowClients(t *testing.T) {
	ks := keyspaceFor(t)
	checker := newChecker(t)
	fn := startFunction(t, trackerBin, ks)
	if err := fn.PollStatus("/health/liveness", http.StatusOK, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	dial := func(t *testing.T) net.Conn {
		c, err := net.DialTimeout("tcp", fn.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// trickle writes b one byte every interval until the peer closes the
	// connection or stop is closed.
	trickle := func(c net.Conn, b []byte, interval time.Duration, stop <-chan struct{}) {
		for i := 0; ; i = (i + 1) % len(b) {
			if _, err := c.Write(b[i : i+1]); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
		}
	}
	// closedWithin reads until the server closes the connection and
	// returns how long that took and what the server sent.
	closedWithin := func(c net.Conn, began time.Time, limit time.Duration) (time.Duration, string, error) {
		_ = c.SetReadDeadline(began.Add(limit))
		got, err := io.ReadAll(c)
		took := time.Since(began)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return took, string(got), fmt.Errorf("still open after %s", limit)
		}
		return took, string(got), nil
	}

	t.Run("headers", func(t *testing.T) {
		t.Parallel()
		const conns = 20
		began := time.Now()
		stop := make(chan struct{})
		defer close(stop)
		results := make(chan string, conns)
		for range conns {
			c := dial(t)
			if _, err := io.WriteString(c, "POST /track HTTP/1.1\r\nHost: tracker\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
			go trickle(c, []byte("abcdefgh"), 300*time.Millisecond, stop)
			go func() {
				took, _, err := closedWithin(c, began, readHeaderTimeout+slowMargin)
				if err != nil {
					results <- err.Error()
					return
				}
				results <- took.Round(100 * time.Millisecond).String()
			}()
		}
		// Meanwhile everyone else is served.
		resp, err := http.Get(fn.URL + "/health/liveness")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("liveness while %d clients trickle headers: %v %v", conns, resp, err)
		} else {
			resp.Body.Close()
		}
		var out []string
		for range conns {
			out = append(out, <-results)
		}
		for _, r := range out {
			if strings.HasPrefix(r, "still open") {
				t.Errorf("a connection trickling its headers is %s, want it closed by ReadHeaderTimeout (%s)", r, readHeaderTimeout)
				break
			}
		}
		t.Logf("%d connections trickling headers closed after %v", conns, out)
	})

	t.Run("body", func(t *testing.T) {
		t.Parallel()
		c := dial(t)
		began := time.Now()
		if _, err := io.WriteString(c, "POST /track HTTP/1.1\r\nHost: tracker\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go trickle(c, []byte(` "username": "slow"`), 500*time.Millisecond, stop)
		took, got, err := closedWithin(c, began, readTimeout+slowMargin)
		if err != nil {
			t.Fatalf("a connection trickling its body: %v, want it cut off by ReadTimeout (%s)", err, readTimeout)
		}
		status, _, _ := strings.Cut(got, "\r\n")
		t.Logf("a connection trickling its body was cut off after %s (answer: %q)", took.Round(100*time.Millisecond), status)
	})

	t.Run("endless body", func(t *testing.T) {
		t.Parallel()
		c := dial(t)
		began := time.Now()
		if _, err := io.WriteString(c, "POST /track HTTP/1.1\r\nHost: tracker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		var sent atomic.Int64
		chunk := fmt.Appendf(nil, "%x\r\n%s\r\n", 64<<10, bytes.Repeat([]byte(" "), 64<<10))
		go func() {
			for {
				n, err := c.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
		_ = c.SetReadDeadline(began.Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer to an endless body within 10s: %v", err)
		}
		atAnswer := sent.Load()
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		req := httptest.NewRequest(http.MethodPost, "/track", nil)
		if err := checker.Check(req, resp.StatusCode, resp.Header, body); err != nil {
			t.Error(err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("endless body: got %d %s, want 413", resp.StatusCode, body)
		}
		t.Logf("an endless body got %d after %s, when the client had written %d KiB (TRACK_MAX_BODY_BYTES 1024 KiB; the rest sits in socket buffers)",
			resp.StatusCode, time.Since(began).Round(time.Millisecond), atAnswer>>10)
	})
}
