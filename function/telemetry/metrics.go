package telemetry

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The instruments are named the OpenTelemetry way (dots, a unit); the
// Prometheus exporter turns "tracker.http.requests" with unit "{request}"
// into tracker_http_requests_total, and "tracker.http.request.duration"
// with unit "s" into tracker_http_request_duration_seconds. Names, the
// metric each becomes, and its labels are listed in Exposed, which a test
// holds to the exposition and the manifests' PromQL is checked against.

// Histogram buckets, in the instrument's unit.
var (
	// From 1 ms to 10 s: a write acknowledged in a few ms, a timeout at
	// CASSANDRA_TIMEOUT (2 s by default), and func-go's 30 s bound beyond.
	requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// One Cassandra statement: under a millisecond on a quiet node.
	statementBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	// The wait for a writer is nothing until the writers are all busy.
	waitBuckets = []float64{0.00001, 0.0001, 0.001, 0.01, 0.1, 1}
	// One event is a few hundred bytes; TRACK_MAX_BODY_BYTES is 1 MiB.
	bodyBuckets = []float64{256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304}
)

// Metric is one metric as Prometheus sees it.
type Metric struct {
	// Name is the family's name in the exposition; a histogram's series
	// add _bucket, _sum and _count to it.
	Name string
	// Type is counter, gauge or histogram.
	Type string
	// Labels are the labels the function sets (histograms add le).
	Labels []string
	// Help is the metric's description.
	Help string
}

// Exposed lists every tracker_ metric the function exports, as
// Prometheus names it. The Go runtime's go_* and the process's process_*
// metrics come besides, and OpenTelemetry's target_info with the resource.
var Exposed = []Metric{
	{"tracker_http_requests_total", "counter", []string{"route", "method", "code"}, "HTTP requests answered, by route, method and status code."},
	{"tracker_http_request_duration_seconds", "histogram", []string{"route", "method", "code"}, "Time from a request's arrival to its answer."},
	{"tracker_http_requests_in_flight", "gauge", nil, "HTTP requests being served now."},
	{"tracker_http_request_body_bytes", "histogram", []string{"route"}, "Bytes of request body read."},
	{"tracker_events_received_total", "counter", []string{"format"}, "Events received on POST /track, by input form; received = stored + rejected + failed, per format."},
	{"tracker_events_stored_total", "counter", []string{"format"}, "Events acknowledged by Cassandra and answered 201."},
	{"tracker_events_rejected_total", "counter", []string{"format", "reason"}, "Events answered 4xx, by the reason of the problem body."},
	{"tracker_events_failed_total", "counter", []string{"format", "reason"}, "Events answered 5xx: timeout, unavailable, overloaded, canceled or internal."},
	{"tracker_events_in_flight", "gauge", nil, "Events being written to Cassandra now."},
	{"tracker_events_in_flight_limit", "gauge", nil, "TRACK_MAX_INFLIGHT: past it, requests are answered 503 at once."},
	{"tracker_cassandra_request_duration_seconds", "histogram", []string{"table", "operation", "outcome"}, "Time of one attempt of one Cassandra statement."},
	{"tracker_cassandra_retries_total", "counter", []string{"table", "operation"}, "Attempts of a statement after its first (the driver's retry policy)."},
	{"tracker_cassandra_connect_attempts_total", "counter", []string{"outcome"}, "Attempts to open a connection to a Cassandra node."},
	{"tracker_cassandra_hosts_up", "gauge", nil, "Cassandra nodes the driver counts as up."},
	{"tracker_cassandra_claims_total", "counter", []string{"outcome"}, "Id claims (events with an id and no timestamp): new or existing."},
	{"tracker_store_ready", "gauge", nil, "1 while the store takes writes (readiness), else 0."},
	{"tracker_store_writer_wait_seconds", "histogram", nil, "Time a statement waited for a free writer."},
	{"tracker_build_info", "gauge", []string{"version", "revision", "go_version"}, "Always 1; the labels tell the build."},
}

// The values of the labels that come from fixed sets.
var (
	// Formats are the input forms, as the format label has them; unknown
	// is a request whose form could not be told (a 403 before the body
	// was read, a 415, a body over the limit).
	Formats = []string{"plain", "plain_batch", "ce_binary", "ce_structured", "ce_batch", "unknown"}
	// FailedReasons are the reasons of tracker_events_failed_total.
	FailedReasons = []string{"timeout", "unavailable", "overloaded", "canceled", "internal"}
	// methods are the request methods told apart; others count as other,
	// so that a client cannot make up label values.
	methods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
)

// instruments are the metrics the function records.
type instruments struct {
	requests      metric.Int64Counter
	duration      metric.Float64Histogram
	inFlight      metric.Int64UpDownCounter
	bodyBytes     metric.Float64Histogram
	received      metric.Int64Counter
	stored        metric.Int64Counter
	rejected      metric.Int64Counter
	failed        metric.Int64Counter
	statement     metric.Float64Histogram
	retries       metric.Int64Counter
	connects      metric.Int64Counter
	claims        metric.Int64Counter
	writerWait    metric.Float64Histogram
	attrs         attrCache
	noAttrs       []metric.AddOption
	noAttrsRecord []metric.RecordOption
}

func buildInstruments(m metric.Meter, src Sources, build BuildInfo) (*instruments, error) {
	var (
		in   = &instruments{}
		errs []error
		must = func(err error) { errs = append(errs, err) }
		err  error
	)
	in.requests, err = m.Int64Counter("tracker.http.requests", metric.WithUnit("{request}"), metric.WithDescription(help("tracker_http_requests_total")))
	must(err)
	in.duration, err = m.Float64Histogram("tracker.http.request.duration", metric.WithUnit("s"), metric.WithDescription(help("tracker_http_request_duration_seconds")), metric.WithExplicitBucketBoundaries(requestBuckets...))
	must(err)
	in.inFlight, err = m.Int64UpDownCounter("tracker.http.requests.in_flight", metric.WithUnit("{request}"), metric.WithDescription(help("tracker_http_requests_in_flight")))
	must(err)
	in.bodyBytes, err = m.Float64Histogram("tracker.http.request.body", metric.WithUnit("By"), metric.WithDescription(help("tracker_http_request_body_bytes")), metric.WithExplicitBucketBoundaries(bodyBuckets...))
	must(err)
	in.received, err = m.Int64Counter("tracker.events.received", metric.WithUnit("{event}"), metric.WithDescription(help("tracker_events_received_total")))
	must(err)
	in.stored, err = m.Int64Counter("tracker.events.stored", metric.WithUnit("{event}"), metric.WithDescription(help("tracker_events_stored_total")))
	must(err)
	in.rejected, err = m.Int64Counter("tracker.events.rejected", metric.WithUnit("{event}"), metric.WithDescription(help("tracker_events_rejected_total")))
	must(err)
	in.failed, err = m.Int64Counter("tracker.events.failed", metric.WithUnit("{event}"), metric.WithDescription(help("tracker_events_failed_total")))
	must(err)
	in.statement, err = m.Float64Histogram("tracker.cassandra.request.duration", metric.WithUnit("s"), metric.WithDescription(help("tracker_cassandra_request_duration_seconds")), metric.WithExplicitBucketBoundaries(statementBuckets...))
	must(err)
	in.retries, err = m.Int64Counter("tracker.cassandra.retries", metric.WithUnit("{attempt}"), metric.WithDescription(help("tracker_cassandra_retries_total")))
	must(err)
	in.connects, err = m.Int64Counter("tracker.cassandra.connect_attempts", metric.WithUnit("{attempt}"), metric.WithDescription(help("tracker_cassandra_connect_attempts_total")))
	must(err)
	in.claims, err = m.Int64Counter("tracker.cassandra.claims", metric.WithUnit("{claim}"), metric.WithDescription(help("tracker_cassandra_claims_total")))
	must(err)
	in.writerWait, err = m.Float64Histogram("tracker.store.writer_wait", metric.WithUnit("s"), metric.WithDescription(help("tracker_store_writer_wait_seconds")), metric.WithExplicitBucketBoundaries(waitBuckets...))
	must(err)

	_, err = m.Int64ObservableGauge("tracker.events.in_flight", metric.WithUnit("{event}"), metric.WithDescription(help("tracker_events_in_flight")),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			if src.EventsInFlight != nil {
				o.Observe(src.EventsInFlight())
			} else {
				o.Observe(0)
			}
			return nil
		}))
	must(err)
	limit := int64(src.EventsInFlightLimit)
	_, err = m.Int64ObservableGauge("tracker.events.in_flight_limit", metric.WithUnit("{event}"), metric.WithDescription(help("tracker_events_in_flight_limit")),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(limit)
			return nil
		}))
	must(err)
	_, err = m.Int64ObservableGauge("tracker.cassandra.hosts_up", metric.WithUnit("{node}"), metric.WithDescription(help("tracker_cassandra_hosts_up")),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			up := 0
			if src.HostsUp != nil {
				up = src.HostsUp()
			}
			o.Observe(int64(up))
			return nil
		}))
	must(err)
	_, err = m.Int64ObservableGauge("tracker.store.ready", metric.WithDescription(help("tracker_store_ready")),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			var ready int64
			if src.Ready != nil && src.Ready() {
				ready = 1
			}
			o.Observe(ready)
			return nil
		}))
	must(err)
	buildAttrs := metric.WithAttributes(attribute.String("version", build.Version), attribute.String("revision", build.Revision), attribute.String("go_version", build.GoVersion))
	_, err = m.Int64ObservableGauge("tracker.build.info", metric.WithDescription(help("tracker_build_info")),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(1, buildAttrs)
			return nil
		}))
	must(err)
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	in.noAttrs = []metric.AddOption{}
	in.noAttrsRecord = []metric.RecordOption{}
	return in, nil
}

func help(name string) string {
	for _, m := range Exposed {
		if m.Name == name {
			return m.Help
		}
	}
	return ""
}

// attrOptions are the options of one attribute set, made once: building
// a set sorts and copies its attributes, which would otherwise cost every
// request.
type attrOptions struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

func newAttrOptions(kv ...attribute.KeyValue) *attrOptions {
	opt := metric.WithAttributeSet(attribute.NewSet(kv...))
	return &attrOptions{add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}}
}

// attrCache holds the attribute sets in use, by their label values. Every
// value comes from a fixed set, so it stays small and soon stops growing:
// reads take no lock (a map replaced whole on each addition), and a
// struct key is not boxed as sync.Map's would be.
type attrCache struct {
	m  atomic.Pointer[map[attrKey]*attrOptions]
	mu sync.Mutex // serializes additions
}

type attrKey struct {
	kind       byte
	a, b, c    string
	statusCode int
}

// Kinds of attrKey.
const (
	keyRequest = iota
	keyRoute
	keyFormat
	keyFormatReason
	keyStatement
	keyTableOperation
	keyOutcome
)

func (c *attrCache) get(k attrKey) *attrOptions {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	var kv []attribute.KeyValue
	switch k.kind {
	case keyRequest:
		kv = []attribute.KeyValue{attribute.String("route", k.a), attribute.String("method", k.b), attribute.String("code", strconv.Itoa(k.statusCode))}
	case keyRoute:
		kv = []attribute.KeyValue{attribute.String("route", k.a)}
	case keyFormat:
		kv = []attribute.KeyValue{attribute.String("format", k.a)}
	case keyFormatReason:
		kv = []attribute.KeyValue{attribute.String("format", k.a), attribute.String("reason", k.b)}
	case keyStatement:
		kv = []attribute.KeyValue{attribute.String("table", k.a), attribute.String("operation", k.b), attribute.String("outcome", k.c)}
	case keyTableOperation:
		kv = []attribute.KeyValue{attribute.String("table", k.a), attribute.String("operation", k.b)}
	case keyOutcome:
		kv = []attribute.KeyValue{attribute.String("outcome", k.a)}
	}
	v := newAttrOptions(kv...)
	next := make(map[attrKey]*attrOptions, 1)
	if old != nil {
		next = maps.Clone(*old)
	}
	next[k] = v
	c.m.Store(&next)
	return v
}

// methodLabel is the method as the method label has it.
func methodLabel(m string) string {
	for _, known := range methods {
		if m == known {
			return known
		}
	}
	return "other"
}
