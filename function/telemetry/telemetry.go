// Package telemetry is what an operator sees of the tracker: Prometheus
// metrics on a listener of their own (or pushed over OTLP), OpenTelemetry
// traces of each request and each Cassandra statement, and one log stream
// for the function, func-go and the standard library. The function builds
// one Telemetry at start (New), wraps its API in Handler, and hands the
// store Telemetry's Observer. Its settings come in Config; only the OTLP
// exporters read the process environment themselves, for the standard
// OTEL_EXPORTER_OTLP_* variables that Config does not carry (headers,
// timeout, compression, certificates).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config is what telemetry needs, and nothing else. The function fills it
// from its environment (OTEL_* follow OpenTelemetry's own variables).
type Config struct {
	// MetricsAddress is where /metrics is served for Prometheus to scrape,
	// host:port; empty serves nothing.
	MetricsAddress string
	// MetricsExporters lists where metrics go: prometheus (pulled from
	// MetricsAddress) and otlp (pushed every MetricsPushInterval), or none.
	MetricsExporters []string
	// MetricsPushInterval is the time between two OTLP pushes.
	MetricsPushInterval time.Duration
	// TracesExporter is otlp or none: spans are exported over OTLP/HTTP
	// when it is otlp and an endpoint is set.
	TracesExporter string
	// OTLPEndpoint is the base URL of an OTLP/HTTP receiver (/v1/traces and
	// /v1/metrics are appended); OTLPTracesEndpoint and
	// OTLPMetricsEndpoint, when set, are the whole URL of one signal.
	OTLPEndpoint, OTLPTracesEndpoint, OTLPMetricsEndpoint string
	// Sampler and SamplerArg choose which traces are recorded, as
	// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG do.
	Sampler, SamplerArg string
	// ServiceName is the service.name of metrics and spans; empty takes
	// KnativeService, then "tracker".
	ServiceName string
	// ResourceAttributes are more resource attributes, key=value pairs
	// separated by commas, values percent-encoded.
	ResourceAttributes string
	// KnativeService, KnativeConfiguration and KnativeRevision are the
	// names Knative gives the pod (K_SERVICE, ...); empty elsewhere.
	KnativeService, KnativeConfiguration, KnativeRevision string
}

// TracesURL is the URL spans are sent to; empty when tracing is off.
func (c Config) TracesURL() string {
	if c.TracesExporter != "otlp" {
		return ""
	}
	return signalURL(c.OTLPTracesEndpoint, c.OTLPEndpoint, "v1/traces")
}

// MetricsURL is the URL metrics are pushed to; empty when they are not.
func (c Config) MetricsURL() string {
	if !slices.Contains(c.MetricsExporters, "otlp") {
		return ""
	}
	return signalURL(c.OTLPMetricsEndpoint, c.OTLPEndpoint, "v1/metrics")
}

// PullMetrics reports whether /metrics is served.
func (c Config) PullMetrics() bool {
	return c.MetricsAddress != "" && slices.Contains(c.MetricsExporters, "prometheus")
}

// signalURL is OpenTelemetry's rule: a signal's own endpoint is used as
// it is; the base endpoint gets the signal's path appended.
func signalURL(signal, base, path string) string {
	switch {
	case signal != "":
		return signal
	case base != "":
		if base[len(base)-1] != '/' {
			base += "/"
		}
		return base + path
	}
	return ""
}

// Sources are the gauges' readings, taken when metrics are collected.
// A nil function reads as zero.
type Sources struct {
	// HostsUp is how many Cassandra nodes the driver counts as up.
	HostsUp func() int
	// Ready is whether the store takes writes (without probing).
	Ready func() bool
	// EventsInFlight is how many events are being written now.
	EventsInFlight func() int64
	// EventsInFlightLimit is TRACK_MAX_INFLIGHT.
	EventsInFlightLimit int
}

// Telemetry holds the meter and tracer providers, the instruments, and
// the metrics listener. Its methods are safe for concurrent use.
type Telemetry struct {
	log     *slog.Logger
	limit   *limiter
	now     func() time.Time // the limiter's clock
	inst    *instruments     // nil when metrics go nowhere
	tracer  trace.Tracer
	tracing bool

	meters  *sdkmetric.MeterProvider // pushes over OTLP; nil when metrics are not pushed
	tracers *sdktrace.TracerProvider // nil when tracing is off
	server  *http.Server             // nil when /metrics is not served
	served  chan struct{}            // closed when server's Serve returns
	addr    string                   // where server listens
}

// scopeName names the instrumentation scope of every span.
const scopeName = "tracker"

// The budgets of Shutdown: the HTTP drain and the store have had their
// share of func-go's 30 s for Stop, and an exporter whose collector is
// away would retry for a minute.
const (
	listenerShutdown = 2 * time.Second
	exportShutdown   = 10 * time.Second
)

// New builds the telemetry of cfg: it makes the exporters and
// instruments but opens nothing; ServeMetrics opens the listener.
func New(cfg Config, log *slog.Logger, src Sources) (*Telemetry, error) {
	t := &Telemetry{log: log, limit: newLimiter(time.Second), now: time.Now}
	// Exporting fails while a collector is away; say so once a minute,
	// not at every batch. The SDK reports to one handler per process.
	exportLimit := newLimiter(time.Minute)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		if ok, suppressed := exportLimit.allow("export", time.Now()); ok {
			log.Warn("telemetry export failed", "error", err, "suppressed", suppressed)
		}
	}))
	res, err := newResource(cfg)
	if err != nil {
		return nil, err
	}
	// The metrics live in a Prometheus registry, which /metrics serves and
	// OpenTelemetry's bridge reads for each OTLP push; with neither, no
	// metric is recorded at all.
	pull, push := cfg.PullMetrics(), cfg.MetricsURL()
	var registry *prometheus.Registry
	if pull || push != "" {
		registry = prometheus.NewRegistry()
		registry.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
		t.inst = newInstruments(registry, src, Build())
	}
	if push != "" {
		exp, err := otlpmetrichttp.New(context.Background(), otlpmetrichttp.WithEndpointURL(push))
		if err != nil {
			return nil, fmt.Errorf("OTLP metrics exporter: %w", err)
		}
		reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(cfg.MetricsPushInterval),
			sdkmetric.WithProducer(otelprom.NewMetricProducer(otelprom.WithGatherer(registry))))
		t.meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
	}

	t.tracer = noop.NewTracerProvider().Tracer(scopeName)
	if u := cfg.TracesURL(); u != "" {
		sampler, err := NewSampler(cfg.Sampler, cfg.SamplerArg)
		if err != nil {
			return nil, err
		}
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(u))
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		limits := sdktrace.NewSpanLimits()
		// A value the code did not cut (a driver's error text) stays short.
		limits.AttributeValueLengthLimit = maxAttributeBytes
		t.tracers = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sampler), sdktrace.WithResource(res),
			sdktrace.WithSpanLimits(limits))
		t.tracer, t.tracing = t.tracers.Tracer(scopeName), true
	}
	if pull {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{
			ErrorLog: promLogger{log}, ErrorHandling: promhttp.ContinueOnError,
		}))
		t.server = &http.Server{
			Addr: cfg.MetricsAddress, Handler: mux,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		}
	}
	return t, nil
}

// ServeMetrics opens the metrics listener and serves /metrics on it until
// Shutdown. It returns at once; an address that cannot be listened on is
// its error. Without a listener configured it does nothing.
func (t *Telemetry) ServeMetrics() error {
	if t.server == nil {
		return nil
	}
	l, err := net.Listen("tcp", t.server.Addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	t.served, t.addr = make(chan struct{}), l.Addr().String()
	go func() {
		defer close(t.served)
		if err := t.server.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			t.log.Error("the metrics listener stopped", "error", err)
		}
	}()
	t.log.Info("serving metrics", "address", l.Addr().String(), "path", "/metrics")
	return nil
}

// Shutdown closes the metrics listener, then sends what is left (spans,
// a last push of metrics), the traces and the metrics at once, each within
// its budget and ctx. The function calls it last, after the HTTP server
// has drained and the store is closed.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.server != nil && t.served != nil {
		lctx, cancel := context.WithTimeout(ctx, listenerShutdown)
		errs = append(errs, t.server.Shutdown(lctx))
		cancel()
		<-t.served
	}
	ectx, cancel := context.WithTimeout(ctx, exportShutdown)
	defer cancel()
	var traces error
	var wg sync.WaitGroup
	if t.tracers != nil {
		wg.Go(func() { traces = t.tracers.Shutdown(ectx) })
	}
	if t.meters != nil {
		errs = append(errs, t.meters.Shutdown(ectx))
	}
	wg.Wait()
	return errors.Join(append(errs, traces)...)
}

// MetricsAddr is the address /metrics is served on, once ServeMetrics
// has opened it (with port 0, the port it got); empty otherwise.
func (t *Telemetry) MetricsAddr() string { return t.addr }

// newResource describes this process to metrics and trace backends.
func newResource(cfg Config) (*resource.Resource, error) {
	extra, err := ParseResourceAttributes(cfg.ResourceAttributes)
	if err != nil {
		return nil, err
	}
	name := cfg.ServiceName
	if name == "" {
		name = cfg.KnativeService
	}
	if name == "" {
		name = "tracker"
	}
	build := Build()
	attrs := append(extra, semconv.ServiceName(name), semconv.ServiceVersion(build.Version))
	if host, err := os.Hostname(); err == nil {
		// The pod's name in Kubernetes: one series per pod when metrics
		// are pushed.
		attrs = append(attrs, semconv.ServiceInstanceID(host))
	}
	// The names Knative's queue-proxy gives the same revision's metrics.
	for key, value := range map[string]string{
		"kn.service.name":       cfg.KnativeService,
		"kn.configuration.name": cfg.KnativeConfiguration,
		"kn.revision.name":      cfg.KnativeRevision,
	} {
		if value != "" {
			attrs = append(attrs, attribute.String(key, value))
		}
	}
	return resource.NewWithAttributes(semconv.SchemaURL, attrs...), nil
}

// BuildInfo is what tracker_build_info tells.
type BuildInfo struct {
	Version, Revision, GoVersion string
}

// Build reads the binary's build information: its module version
// ("(devel)" for a local build), its VCS revision when go build recorded
// one, and the Go release.
func Build() BuildInfo {
	b := BuildInfo{Version: "(devel)", Revision: "unknown", GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			b.Revision = s.Value
		}
	}
	return b
}

// promLogger sends the Prometheus handler's errors to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Error("metrics exposition", "error", fmt.Sprint(v...)) }
