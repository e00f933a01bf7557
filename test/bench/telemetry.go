package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"tracker/test/internal/harness"
)

// variant is one telemetry setting of the cost phases.
type variant struct {
	name, title string
	env         func(sink string) []string
}

// variants are what the cost phases compare, in the order they run in
// each round: everything off, the default (metrics served for
// Prometheus, logs at info, no tracing), and the default with every
// request traced and its spans sent over OTLP.
var variants = []variant{
	{"off", "off: no metrics listener, no tracing; LOG_LEVEL=error", func(string) []string {
		return []string{"METRICS_ADDRESS=", "OTEL_METRICS_EXPORTER=none", "OTEL_TRACES_EXPORTER=none", "LOG_LEVEL=error"}
	}},
	{"metrics", "metrics on (the default), tracing off; LOG_LEVEL=info", func(string) []string {
		return []string{"OTEL_TRACES_EXPORTER=none", "LOG_LEVEL=info"}
	}},
	{"tracing", "metrics on, every request traced (always_on) to an OTLP sink; LOG_LEVEL=info", func(sink string) []string {
		return []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + sink, "OTEL_TRACES_SAMPLER=always_on", "LOG_LEVEL=info"}
	}},
}

// otlpSink takes OTLP/HTTP trace exports, counts their spans and answers
// success, as a collector would, at the least cost to the shared cores.
type otlpSink struct {
	srv   *http.Server
	url   string
	spans atomic.Int64
}

func startSink() (*otlpSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + l.Addr().String() + "/v1/traces"}
	s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err != nil || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		var n int64
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				n += int64(len(ss.GetSpans()))
			}
		}
		s.spans.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})}
	go s.srv.Serve(l)
	return s, nil
}

func (s *otlpSink) close() { _ = s.srv.Close() }

// telemetryPhases measures plain single events at each concurrency with
// every variant, rounds times, the variants alternating so that the
// machine's drift hits each alike. It returns the phases and the spans
// the sink received.
func (b *bench) telemetryPhases(ctx context.Context, concurrency []int, rounds int) ([]phase, int64, error) {
	sink, err := startSink()
	if err != nil {
		return nil, 0, err
	}
	defer sink.close()
	plain := modes(b.opts.batch)[slices.IndexFunc(modes(b.opts.batch), func(m mode) bool { return m.name == "plain" })]
	var out []phase
	for _, c := range concurrency {
		for round := 1; round <= rounds; round++ {
			for _, v := range variants {
				logf("telemetry cost: %s, concurrency %d, round %d of %d", v.name, c, round, rounds)
				p, err := b.withFunction(b.bin, v.env(sink.url), func(fn *harness.Function) phase {
					var before, after cpuSnapshot
					res := closedLoop(ctx, c, b.opts.warmup, b.opts.duration, httpSender(fn.Addr, plain, b.events), &b.ackHTTP,
						b.marks(fn.PID(), &before, &after))
					return phase{kind: "telemetry", mode: plain, conc: c, res: res, cpu: before.until(after)}
				})
				if err != nil {
					return nil, 0, err
				}
				p.variant = v.name
				out = append(out, p)
				if ctx.Err() != nil {
					return nil, 0, ctx.Err()
				}
			}
		}
	}
	return out, sink.spans.Load(), nil
}

// telemetryCost is one variant at one concurrency over the rounds.
type telemetryCost struct {
	variant                 variant
	conc                    int
	eventsPerSecond, cpuPer []float64 // per round; CPU in ms per 1k events
	p99                     []time.Duration
}

// telemetryCosts gathers the telemetry phases by concurrency and variant.
func (r report) telemetryCosts() []telemetryCost {
	var out []telemetryCost
	for _, c := range r.telemetryConc() {
		for _, v := range variants {
			tc := telemetryCost{variant: v, conc: c}
			for _, p := range r.phases {
				if p.kind != "telemetry" || p.conc != c || p.variant != v.name || p.res.events == 0 {
					continue
				}
				tc.eventsPerSecond = append(tc.eventsPerSecond, p.res.eventsPerSecond())
				tc.cpuPer = append(tc.cpuPer, p.cpu.function/float64(p.res.events)*1e6)
				tc.p99 = append(tc.p99, p.res.percentile(99))
			}
			if len(tc.eventsPerSecond) > 0 {
				out = append(out, tc)
			}
		}
	}
	return out
}

func (r report) telemetryConc() []int {
	var out []int
	for _, p := range r.phases {
		if p.kind == "telemetry" && !slices.Contains(out, p.conc) {
			out = append(out, p.conc)
		}
	}
	return out
}

// medianOf is the median of v (the mean of the middle two for an even
// count).
func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// costOf is the median events/s and CPU of variant name at c, relative to
// off: how much throughput it costs and how much more CPU per event.
func (r report) costOf(name string, c int) (throughput, cpu float64, ok bool) {
	var base, this *telemetryCost
	costs := r.telemetryCosts()
	for i := range costs {
		if costs[i].conc != c {
			continue
		}
		switch costs[i].variant.name {
		case "off":
			base = &costs[i]
		case name:
			this = &costs[i]
		}
	}
	if base == nil || this == nil {
		return 0, 0, false
	}
	throughput = 1 - medianOf(this.eventsPerSecond)/medianOf(base.eventsPerSecond)
	cpu = medianOf(this.cpuPer)/medianOf(base.cpuPer) - 1
	return throughput, cpu, true
}

// renderTelemetry writes the section of the cost phases.
func (r report) renderTelemetry(p func(string, ...any)) {
	costs := r.telemetryCosts()
	if len(costs) == 0 {
		return
	}
	p("## Cost of telemetry")
	p("")
	p("Plain single events (id and timestamp) in a closed loop, each variant on a fresh function, the")
	p("three variants alternating %d times at each concurrency; medians over the rounds, with the", r.opts.telemetryRounds)
	p("range in brackets. Nothing scrapes `/metrics` during the window (a scrape every 15 s or more costs")
	p("a few ms of CPU). The traced variant sends its spans to an OTLP/HTTP sink in the load generator")
	p("that decodes and counts them: %s spans arrived over the traced phases, warm-ups included,", thousands(float64(r.spans)))
	p("against %s events in their measured windows (a server span and three client spans per event).", thousands(float64(r.tracedEvents())))
	p("")
	p("| c | telemetry | events/s | p99 | function CPU ms per 1k events | throughput lost vs off | CPU per event vs off |")
	p("|---:|---|---:|---:|---:|---:|---:|")
	for _, tc := range costs {
		lost, cpu := "–", "–"
		if tc.variant.name != "off" {
			if l, c, ok := r.costOf(tc.variant.name, tc.conc); ok {
				lost, cpu = fmt.Sprintf("%.1f %%", l*100), fmt.Sprintf("%+.1f %%", c*100)
			}
		}
		p("| %d | %s | %s (%s–%s) | %s | %.0f (%.0f–%.0f) | %s | %s |", tc.conc, tc.variant.title,
			thousands(medianOf(tc.eventsPerSecond)), thousands(slices.Min(tc.eventsPerSecond)), thousands(slices.Max(tc.eventsPerSecond)),
			ms(time.Duration(medianOf(durations(tc.p99)))), medianOf(tc.cpuPer), slices.Min(tc.cpuPer), slices.Max(tc.cpuPer), lost, cpu)
	}
	p("")
}

func durations(d []time.Duration) []float64 {
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	return out
}

// tracedEvents is the events of the traced phases' windows.
func (r report) tracedEvents() int64 {
	var events int64
	for _, p := range r.phases {
		if p.kind == "telemetry" && p.variant == "tracing" {
			events += p.res.events
		}
	}
	return events
}
