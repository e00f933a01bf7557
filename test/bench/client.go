package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// The load generator shares the cores with the function and Cassandra, so
// every microsecond it spends is taken from what it measures. net/http's
// client hands each request between three goroutines (caller, writeLoop,
// readLoop) and cost about 50 µs of CPU per request here; this client is a
// plain keep-alive HTTP/1.1 connection per worker, written and read by the
// worker itself, and costs a fraction of that. Responses are still parsed
// by net/http (http.ReadResponse), chunked bodies included.

// requestTimeout bounds one request, connecting included.
const requestTimeout = 30 * time.Second

// httpConn is one worker's keep-alive connection to the function.
type httpConn struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
	wbuf []byte
}

// header is one request header line.
type header struct{ name, value string }

// post sends one POST and reads the whole answer; it returns the status.
// Any error closes the connection, so the next request dials afresh.
func (c *httpConn) post(ctx context.Context, path string, headers []header, body []byte) (int, error) {
	if c.conn == nil {
		d := net.Dialer{Timeout: requestTimeout}
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return 0, err
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.br.Reset(conn)
		}
	}
	if err := c.conn.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		c.close()
		return 0, err
	}
	w := append(c.wbuf[:0], "POST "...)
	w = append(w, path...)
	w = append(w, " HTTP/1.1\r\nHost: "...)
	w = append(w, c.addr...)
	w = append(w, "\r\nContent-Length: "...)
	w = strconv.AppendInt(w, int64(len(body)), 10)
	w = append(w, "\r\n"...)
	for _, h := range headers {
		w = append(w, h.name...)
		w = append(w, ": "...)
		w = append(w, h.value...)
		w = append(w, "\r\n"...)
	}
	w = append(w, "\r\n"...)
	w = append(w, body...)
	c.wbuf = w
	if _, err := c.conn.Write(w); err != nil {
		c.close()
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode, err
}

func (c *httpConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
