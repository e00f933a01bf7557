package main

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"tracker/function/event"
	"tracker/function/store"
)

// mode is one input form of POST /track.
type mode struct {
	// name is the flag value and the key in the report.
	name string
	// title describes the form in the report.
	title string
	// batch is the number of events in one request.
	batch int
	// contentType of the request.
	contentType string
	// binaryCE sends a binary-mode CloudEvent: ce-* headers and the data as the body.
	binaryCE bool
	// appendBody appends the body of one request to buf.
	appendBody func(buf []byte, g *eventSource, n int) []byte
}

// eventSource numbers events so that every event of a run has its own id.
type eventSource struct {
	// run prefixes plain ids and names the CloudEvents source.
	run    string
	source string
	next   atomic.Int64
}

func newEventSource(run string) *eventSource {
	return &eventSource{run: run, source: "https://bench.example/" + run}
}

// take reserves n consecutive event numbers and returns the first.
func (g *eventSource) take(n int) int64 { return g.next.Add(int64(n)) - int64(n) }

// The events vary over 1,000 users and 100 targets, a quarter of them
// clicks, so that writes spread over many partitions as real traffic does.
const (
	users   = 1000
	targets = 100
)

func username(n int64) string { return "user-" + strconv.FormatInt(n%users, 10) }
func target(n int64) string {
	return "https://example.com/page/" + strconv.FormatInt(n%targets, 10)
}
func description(n int64) string {
	if n%4 == 0 {
		return "CLICK"
	}
	return "VIEW"
}

// appendData appends the impression fields, the data of every form.
func appendData(buf []byte, n int64) []byte {
	buf = append(buf, `"username":"user-`...)
	buf = strconv.AppendInt(buf, n%users, 10)
	buf = append(buf, `","target":"https://example.com/page/`...)
	buf = strconv.AppendInt(buf, n%targets, 10)
	buf = append(buf, `","description":"`...)
	buf = append(buf, description(n)...)
	return append(buf, '"')
}

// appendPlain appends one plain event with a client id and timestamp, the
// form an SDK that retries sends.
func appendPlain(buf []byte, g *eventSource, n int64, now time.Time) []byte {
	buf = append(buf, `{"id":"`...)
	buf = append(buf, g.run...)
	buf = append(buf, '-')
	buf = strconv.AppendInt(buf, n, 10)
	buf = append(buf, `","timestamp":"`...)
	buf = now.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `",`...)
	buf = appendData(buf, n)
	return append(buf, '}')
}

// appendUntimed appends one plain event with a client id and no
// timestamp.
func appendUntimed(buf []byte, g *eventSource, n int64) []byte {
	buf = append(buf, `{"id":"`...)
	buf = append(buf, g.run...)
	buf = append(buf, '-')
	buf = strconv.AppendInt(buf, n, 10)
	buf = append(buf, `",`...)
	buf = appendData(buf, n)
	return append(buf, '}')
}

// appendV7 appends one plain event whose client id is a UUIDv7 made now,
// and no timestamp: the id's time is the event's.
func appendV7(buf []byte, n int64) []byte {
	buf = append(buf, `{"id":"`...)
	buf = append(buf, uuid.Must(uuid.NewV7()).String()...)
	buf = append(buf, `",`...)
	buf = appendData(buf, n)
	return append(buf, '}')
}

// appendOneUserArray appends a batch of count plain events of one user
// (a page's events: one events_by_user partition), each with its own id,
// timestamp and target.
func appendOneUserArray(buf []byte, g *eventSource, count int) []byte {
	first := g.take(count)
	now := time.Now().UTC()
	buf = append(buf, '[')
	for i := range count {
		n := first + int64(i)
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"id":"`...)
		buf = append(buf, g.run...)
		buf = append(buf, '-')
		buf = strconv.AppendInt(buf, n, 10)
		buf = append(buf, `","timestamp":"`...)
		buf = now.Add(time.Duration(i)*time.Millisecond).AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, `","username":"user-`...)
		buf = strconv.AppendInt(buf, first%users, 10)
		buf = append(buf, `","target":"https://example.com/page/`...)
		buf = strconv.AppendInt(buf, n%targets, 10)
		buf = append(buf, `","description":"`...)
		buf = append(buf, description(n)...)
		buf = append(buf, `"}`...)
	}
	return append(buf, ']')
}

// appendStructured appends one structured-mode CloudEvent.
func appendStructured(buf []byte, g *eventSource, n int64, now time.Time) []byte {
	buf = append(buf, `{"specversion":"1.0","id":"`...)
	buf = strconv.AppendInt(buf, n, 10)
	buf = append(buf, `","source":"`...)
	buf = append(buf, g.source...)
	buf = append(buf, `","type":"dev.tracker.impression","time":"`...)
	buf = now.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","datacontenttype":"application/json","data":{`...)
	buf = appendData(buf, n)
	return append(buf, "}}"...)
}

func appendArray(buf []byte, g *eventSource, count int, one func([]byte, *eventSource, int64, time.Time) []byte) []byte {
	first := g.take(count)
	now := time.Now().UTC()
	buf = append(buf, '[')
	for i := range count {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = one(buf, g, first+int64(i), now)
	}
	return append(buf, ']')
}

// modes lists the input forms the benchmark measures, by name.
func modes(batch int) []mode {
	return []mode{
		{
			name: "plain", title: "plain JSON, 1 event", batch: 1, contentType: "application/json",
			appendBody: func(buf []byte, g *eventSource, _ int) []byte {
				return appendPlain(buf, g, g.take(1), time.Now().UTC())
			},
		},
		{
			// Not in the default -modes: the path of a client that sends an
			// id but no timestamp, where each new event claims its
			// events_by_id row with a lightweight transaction.
			name: "plain-untimed", title: "plain JSON, 1 event, id without timestamp", batch: 1, contentType: "application/json",
			appendBody: func(buf []byte, g *eventSource, _ int) []byte {
				return appendUntimed(buf, g, g.take(1))
			},
		},
		{
			// Not in the default -modes: an untimed event whose id is a
			// UUIDv7, which gives its time, so no transaction.
			name: "plain-v7", title: "plain JSON, 1 event, UUIDv7 id without timestamp", batch: 1, contentType: "application/json",
			appendBody: func(buf []byte, g *eventSource, _ int) []byte {
				return appendV7(buf, g.take(1))
			},
		},
		{
			name: "plain-batch", title: "plain JSON batch, " + strconv.Itoa(batch) + " events", batch: batch, contentType: "application/json",
			appendBody: func(buf []byte, g *eventSource, n int) []byte { return appendArray(buf, g, n, appendPlain) },
		},
		{
			// Not in the default -modes: a batch of one user's events,
			// whose events_by_user rows are one partition.
			name: "plain-batch-user", title: "plain JSON batch, " + strconv.Itoa(batch) + " events of one user", batch: batch, contentType: "application/json",
			appendBody: func(buf []byte, g *eventSource, n int) []byte { return appendOneUserArray(buf, g, n) },
		},
		{
			name: "ce-binary", title: "binary CloudEvent, 1 event", batch: 1, contentType: "application/json", binaryCE: true,
		},
		{
			name: "ce-batch", title: "CloudEvents batch, " + strconv.Itoa(batch) + " events", batch: batch, contentType: "application/cloudevents-batch+json",
			appendBody: func(buf []byte, g *eventSource, n int) []byte { return appendArray(buf, g, n, appendStructured) },
		},
	}
}

// httpSender returns the sendFunc that POSTs one request of mode m to
// the function at addr.
func httpSender(addr string, m mode, g *eventSource) sendFunc {
	return func(ctx context.Context, w *worker) outcome {
		w.conn.addr = addr
		w.headers = append(w.headers[:0], header{"Content-Type", m.contentType})
		if m.binaryCE {
			n := g.take(1)
			w.headers = append(w.headers,
				header{"Ce-Specversion", "1.0"},
				header{"Ce-Id", strconv.FormatInt(n, 10)},
				header{"Ce-Source", g.source},
				header{"Ce-Type", "dev.tracker.impression"},
				header{"Ce-Time", time.Now().UTC().Format(time.RFC3339Nano)},
			)
			w.buf = append(appendData(append(w.buf[:0], '{'), n), '}')
		} else {
			w.buf = m.appendBody(w.buf[:0], g, m.batch)
		}
		status, err := w.conn.post(ctx, "/track", w.headers, w.buf)
		o := outcome{events: m.batch, ok: err == nil && status >= 200 && status < 300}
		switch {
		case err != nil:
			o.why = err.Error()
		case !o.ok:
			o.why = strconv.Itoa(status)
		}
		return o
	}
}

// directSender returns the sendFunc of the ceiling: the same events as the
// plain form, saved through the function's own Store with no HTTP, under
// the same per-request deadline as the handler's.
func directSender(ceiling *store.Store, g *eventSource, batch int, timeout time.Duration) sendFunc {
	return func(ctx context.Context, _ *worker) outcome {
		first := g.take(batch)
		now := time.Now().UTC()
		occurred := now.Truncate(time.Millisecond)
		events := make([]event.Event, batch)
		for i := range events {
			n := first + int64(i)
			events[i] = event.Event{
				ID:          g.run + "-" + strconv.FormatInt(n, 10),
				Retryable:   true,
				Username:    username(n),
				Target:      target(n),
				Description: description(n),
				OccurredAt:  occurred,
				ReceivedAt:  now,
			}
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		err := ceiling.Save(ctx, events)
		o := outcome{events: batch, ok: err == nil}
		if err != nil {
			o.why = err.Error()
		}
		return o
	}
}
