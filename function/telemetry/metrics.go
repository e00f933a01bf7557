package telemetry

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics are Prometheus client_golang collectors: recording one is an
// atomic add, where the OpenTelemetry SDK's instruments cost several
// hundred nanoseconds each, which came to more than the 3 % of an event's
// CPU that telemetry may take (BENCHMARKS.md, "Changes and their
// effect"). OpenTelemetry's Prometheus bridge pushes the same registry
// over OTLP. Exposed lists them; a test holds it to the exposition, and
// the manifests' PromQL is checked against it.

// Histogram buckets, in the metric's unit.
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
// metrics come besides.
var Exposed = []Metric{
	{"tracker_http_requests_total", "counter", []string{"route", "method", "code"}, "HTTP requests answered, by route, method and status code."},
	{"tracker_http_request_duration_seconds", "histogram", []string{"route", "method", "code"}, "Time from a request's arrival to its answer."},
	{"tracker_http_requests_in_flight", "gauge", nil, "HTTP requests being served now."},
	{"tracker_http_request_body_bytes", "histogram", []string{"route"}, "Bytes of request body read."},
	{"tracker_events_received_total", "counter", []string{"format"}, "Events received on POST /track, by input form; received = stored + rejected + failed, per format."},
	{"tracker_events_stored_total", "counter", []string{"format"}, "Events acknowledged by Cassandra: answered 201, or the others of a request answered 409."},
	{"tracker_events_rejected_total", "counter", []string{"format", "reason"}, "Events answered 4xx, by the reason of the problem body."},
	{"tracker_events_failed_total", "counter", []string{"format", "reason"}, "Events answered 5xx: timeout, unavailable, overloaded, canceled or internal."},
	{"tracker_events_in_flight", "gauge", nil, "Events being written to Cassandra now."},
	{"tracker_events_in_flight_limit", "gauge", nil, "TRACK_MAX_INFLIGHT: past it, requests are answered 503 at once."},
	{"tracker_cassandra_request_duration_seconds", "histogram", []string{"table", "operation", "outcome"}, "Time of one attempt of one Cassandra statement."},
	{"tracker_cassandra_retries_total", "counter", []string{"table", "operation"}, "Attempts of a statement after its first (the driver's retry policy)."},
	{"tracker_cassandra_connect_attempts_total", "counter", []string{"outcome"}, "Attempts to open a connection to a Cassandra node, TLS handshake and authentication included: ok, or why it failed."},
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

// instruments are the metrics the function records, with the series of
// each label set resolved once (cache): looking a series up by its label
// values hashes them on every call.
type instruments struct {
	// inFlight counts the requests being served; a gauge reads it.
	inFlight atomic.Int64

	requests, received, stored, rejected, failed, retries, connects, claims *prometheus.CounterVec
	duration, bodyBytes, statement                                          *prometheus.HistogramVec
	writerWait                                                              prometheus.Histogram

	requestSeries   cache[requestKey, requestSeries]
	routeSeries     cache[string, prometheus.Observer]
	receivedSeries  cache[string, prometheus.Counter]
	storedSeries    cache[string, prometheus.Counter]
	reasonSeries    cache[[3]string, prometheus.Counter] // metric, format, reason
	statementSeries cache[[3]string, prometheus.Observer]
	retrySeries     cache[[2]string, prometheus.Counter]
	outcomeSeries   cache[[2]string, prometheus.Counter] // metric, outcome
}

type requestKey struct {
	route, method string
	code          int
}

type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// newInstruments makes the metrics and registers them, with the gauges
// that read src, in reg.
func newInstruments(reg prometheus.Registerer, src Sources, build BuildInfo) *instruments {
	in := &instruments{}
	counter := func(name string) *prometheus.CounterVec {
		m := exposed(name)
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: m.Name, Help: m.Help}, m.Labels)
		reg.MustRegister(v)
		return v
	}
	histogram := func(name string, buckets []float64) *prometheus.HistogramVec {
		m := exposed(name)
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: m.Name, Help: m.Help, Buckets: buckets}, m.Labels)
		reg.MustRegister(v)
		return v
	}
	gauge := func(name string, read func() float64) {
		m := exposed(name)
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: m.Name, Help: m.Help}, read))
	}
	in.requests = counter("tracker_http_requests_total")
	in.duration = histogram("tracker_http_request_duration_seconds", requestBuckets)
	in.bodyBytes = histogram("tracker_http_request_body_bytes", bodyBuckets)
	in.received = counter("tracker_events_received_total")
	in.stored = counter("tracker_events_stored_total")
	in.rejected = counter("tracker_events_rejected_total")
	in.failed = counter("tracker_events_failed_total")
	in.statement = histogram("tracker_cassandra_request_duration_seconds", statementBuckets)
	in.retries = counter("tracker_cassandra_retries_total")
	in.connects = counter("tracker_cassandra_connect_attempts_total")
	in.claims = counter("tracker_cassandra_claims_total")
	wait := exposed("tracker_store_writer_wait_seconds")
	in.writerWait = prometheus.NewHistogram(prometheus.HistogramOpts{Name: wait.Name, Help: wait.Help, Buckets: waitBuckets})
	reg.MustRegister(in.writerWait)

	gauge("tracker_http_requests_in_flight", func() float64 { return float64(in.inFlight.Load()) })
	gauge("tracker_events_in_flight", func() float64 {
		if src.EventsInFlight == nil {
			return 0
		}
		return float64(src.EventsInFlight())
	})
	limit := float64(src.EventsInFlightLimit)
	gauge("tracker_events_in_flight_limit", func() float64 { return limit })
	gauge("tracker_cassandra_hosts_up", func() float64 {
		if src.HostsUp == nil {
			return 0
		}
		return float64(src.HostsUp())
	})
	gauge("tracker_store_ready", func() float64 {
		if src.Ready != nil && src.Ready() {
			return 1
		}
		return 0
	})
	info := exposed("tracker_build_info")
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: info.Name, Help: info.Help,
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "go_version": build.GoVersion}},
		func() float64 { return 1 }))

	in.requestSeries.make = func(k requestKey) requestSeries {
		code := strconv.Itoa(k.code)
		return requestSeries{in.requests.WithLabelValues(k.route, k.method, code), in.duration.WithLabelValues(k.route, k.method, code)}
	}
	in.routeSeries.make = func(route string) prometheus.Observer { return in.bodyBytes.WithLabelValues(route) }
	in.receivedSeries.make = func(format string) prometheus.Counter { return in.received.WithLabelValues(format) }
	in.storedSeries.make = func(format string) prometheus.Counter { return in.stored.WithLabelValues(format) }
	in.reasonSeries.make = func(k [3]string) prometheus.Counter {
		if k[0] == "failed" {
			return in.failed.WithLabelValues(k[1], k[2])
		}
		return in.rejected.WithLabelValues(k[1], k[2])
	}
	in.statementSeries.make = func(k [3]string) prometheus.Observer { return in.statement.WithLabelValues(k[0], k[1], k[2]) }
	in.retrySeries.make = func(k [2]string) prometheus.Counter { return in.retries.WithLabelValues(k[0], k[1]) }
	in.outcomeSeries.make = func(k [2]string) prometheus.Counter {
		if k[0] == "claims" {
			return in.claims.WithLabelValues(k[1])
		}
		return in.connects.WithLabelValues(k[1])
	}
	return in
}

// exposed is the entry of Exposed named name.
func exposed(name string) Metric {
	for _, m := range Exposed {
		if m.Name == name {
			return m
		}
	}
	panic("telemetry: no metric " + name + " in Exposed")
}

// cache holds the series of a metric by their label values. Every value
// comes from a fixed set, so it stays small and soon stops growing:
// reads take no lock (a map replaced whole on each addition).
type cache[K comparable, V any] struct {
	m    atomic.Pointer[map[K]V]
	mu   sync.Mutex // serializes additions
	make func(K) V
}

func (c *cache[K, V]) get(k K) V {
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
	v := c.make(k)
	next := make(map[K]V, 1)
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
