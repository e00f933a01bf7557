package function

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"tracker/function/store"
	"tracker/function/telemetry"
)

// Config is the function's whole configuration, read from the environment
// by LoadConfig. The variable names in the env tags are the contract with
// the manifests in knative/ and with func.yaml; a test pins them. A field
// without a default tag is empty by default.
type Config struct {
	// CassandraHosts are the contact points, host or host:port, comma separated.
	CassandraHosts []string `env:"CASSANDRA_HOSTS" default:"127.0.0.1:9042"`
	// CassandraKeyspace holds the event tables.
	CassandraKeyspace string `env:"CASSANDRA_KEYSPACE" default:"tracking"`
	// CassandraConsistency is the consistency level of every write and read.
	CassandraConsistency store.Consistency `env:"CASSANDRA_CONSISTENCY" default:"LOCAL_QUORUM"`
	// CassandraLocalDC, when set, keeps queries in this data center.
	CassandraLocalDC string `env:"CASSANDRA_LOCAL_DC"`
	// CassandraUsername and CassandraPassword enable password authentication when the username is set.
	CassandraUsername string `env:"CASSANDRA_USERNAME"`
	CassandraPassword string `env:"CASSANDRA_PASSWORD"`
	// CassandraPasswordFile is a file that holds the password (a mounted
	// Secret), read at every new connection; instead of CassandraPassword.
	CassandraPasswordFile string `env:"CASSANDRA_PASSWORD_FILE"`
	// CassandraTLS encrypts the connections to Cassandra with TLS 1.2 or
	// newer, verifying the nodes' certificates.
	CassandraTLS bool `env:"CASSANDRA_TLS" default:"false"`
	// CassandraTLSCAFile is the PEM bundle of the authorities that sign
	// the nodes' certificates; empty trusts the system's roots.
	CassandraTLSCAFile string `env:"CASSANDRA_TLS_CA_FILE"`
	// CassandraTLSCertFile and CassandraTLSKeyFile are the client
	// certificate and its key (PEM) for mutual TLS: both or neither.
	CassandraTLSCertFile string `env:"CASSANDRA_TLS_CERT_FILE"`
	CassandraTLSKeyFile  string `env:"CASSANDRA_TLS_KEY_FILE"`
	// CassandraTLSServerName is the name the nodes' certificates must
	// carry; empty checks each node by the address it is dialled at.
	CassandraTLSServerName string `env:"CASSANDRA_TLS_SERVER_NAME"`
	// CassandraTLSInsecureSkipVerify accepts any node certificate: for
	// tests only, with a warning at every start.
	CassandraTLSInsecureSkipVerify bool `env:"CASSANDRA_TLS_INSECURE_SKIP_VERIFY" default:"false"`
	// CassandraTimeout bounds one query, including the driver's wait for a connection.
	CassandraTimeout time.Duration `env:"CASSANDRA_TIMEOUT" default:"2s"`
	// CassandraConnectTimeout bounds one attempt to open a connection.
	CassandraConnectTimeout time.Duration `env:"CASSANDRA_CONNECT_TIMEOUT" default:"5s"`
	// CassandraSpeculativeDelay is how long a statement waits for its
	// node before it is sent to the next one as well; 0 turns that off.
	CassandraSpeculativeDelay time.Duration `env:"CASSANDRA_SPECULATIVE_DELAY" default:"250ms"`
	// CassandraSchemaCreate creates the keyspace and tables at start when they are missing.
	CassandraSchemaCreate bool `env:"CASSANDRA_SCHEMA_CREATE" default:"true"`
	// CassandraReplication is the CQL replication map used when the keyspace is created.
	CassandraReplication string `env:"CASSANDRA_REPLICATION" default:"{'class': 'SimpleStrategy', 'replication_factor': 1}"`

	// TrackMaxBodyBytes is the largest request body read, in bytes.
	TrackMaxBodyBytes int64 `env:"TRACK_MAX_BODY_BYTES" default:"1048576"`
	// TrackMaxBatchEvents is the largest number of events in one request.
	TrackMaxBatchEvents int `env:"TRACK_MAX_BATCH_EVENTS" default:"500"`
	// TrackMaxInflight bounds the events being written to Cassandra at once
	// by this process; past it requests get 503 at once instead of queueing.
	TrackMaxInflight int `env:"TRACK_MAX_INFLIGHT" default:"2000"`
	// TrackCORSOrigins are the web origins whose pages may send events
	// with fetch (scheme://host[:port], comma separated), or "*" for any.
	TrackCORSOrigins []string `env:"TRACK_CORS_ORIGINS" default:"*"`

	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" default:"info"`
	// LogFormat is json or text.
	LogFormat string `env:"LOG_FORMAT" default:"json"`

	// MetricsAddress is where Prometheus scrapes /metrics, host:port: a
	// listener of its own, never the serving port, which the Knative route
	// makes public. Empty serves no metrics.
	MetricsAddress string `env:"METRICS_ADDRESS" default:"[::]:9464"`
	// OTelMetricsExporter lists where metrics go, comma separated:
	// prometheus (pulled from MetricsAddress), otlp (pushed), or none.
	OTelMetricsExporter []string `env:"OTEL_METRICS_EXPORTER" default:"prometheus"`
	// OTelMetricExportInterval is the time between two OTLP pushes of
	// metrics, in milliseconds.
	OTelMetricExportInterval int `env:"OTEL_METRIC_EXPORT_INTERVAL" default:"60000"`
	// OTelTracesExporter is otlp or none; spans are exported only when an
	// OTLP endpoint is set too.
	OTelTracesExporter string `env:"OTEL_TRACES_EXPORTER" default:"otlp"`
	// OTelExporterOTLPEndpoint is the base URL of an OTLP/HTTP receiver,
	// such as http://otel-collector:4318; the signals' paths are appended.
	OTelExporterOTLPEndpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	// OTelExporterOTLPTracesEndpoint and OTelExporterOTLPMetricsEndpoint,
	// when set, are the whole URL of one signal's receiver.
	OTelExporterOTLPTracesEndpoint  string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	OTelExporterOTLPMetricsEndpoint string `env:"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"`
	// OTelTracesSampler chooses the requests that are traced; see
	// telemetry.Samplers. OTelTracesSamplerArg is the ratio, from 0 to 1,
	// of the traceidratio samplers.
	OTelTracesSampler    string `env:"OTEL_TRACES_SAMPLER" default:"parentbased_always_on"`
	OTelTracesSamplerArg string `env:"OTEL_TRACES_SAMPLER_ARG"`
	// OTelServiceName is the service.name of metrics and spans; empty
	// takes K_SERVICE, then "tracker".
	OTelServiceName string `env:"OTEL_SERVICE_NAME"`
	// OTelResourceAttributes are more resource attributes, key=value
	// comma separated, values percent-encoded.
	OTelResourceAttributes string `env:"OTEL_RESOURCE_ATTRIBUTES"`
	// KService, KConfiguration and KRevision are set by Knative in a
	// revision's pod; metrics and spans carry them as kn.service.name,
	// kn.configuration.name and kn.revision.name, as the queue-proxy's do.
	KService       string `env:"K_SERVICE"`
	KConfiguration string `env:"K_CONFIGURATION"`
	KRevision      string `env:"K_REVISION"`
}

// Telemetry is the part of the configuration that metrics, traces and
// logs need.
func (c Config) Telemetry() telemetry.Config {
	return telemetry.Config{
		MetricsAddress:       c.MetricsAddress,
		MetricsExporters:     c.OTelMetricsExporter,
		MetricsPushInterval:  time.Duration(c.OTelMetricExportInterval) * time.Millisecond,
		TracesExporter:       c.OTelTracesExporter,
		OTLPEndpoint:         c.OTelExporterOTLPEndpoint,
		OTLPTracesEndpoint:   c.OTelExporterOTLPTracesEndpoint,
		OTLPMetricsEndpoint:  c.OTelExporterOTLPMetricsEndpoint,
		Sampler:              c.OTelTracesSampler,
		SamplerArg:           c.OTelTracesSamplerArg,
		ServiceName:          c.OTelServiceName,
		ResourceAttributes:   c.OTelResourceAttributes,
		KnativeService:       c.KService,
		KnativeConfiguration: c.KConfiguration,
		KnativeRevision:      c.KRevision,
	}
}

// Store is the part of the configuration the event store needs.
func (c Config) Store() store.Config {
	return store.Config{
		Hosts:            c.CassandraHosts,
		Keyspace:         c.CassandraKeyspace,
		Consistency:      c.CassandraConsistency,
		LocalDC:          c.CassandraLocalDC,
		Username:         c.CassandraUsername,
		Password:         c.CassandraPassword,
		PasswordFile:     c.CassandraPasswordFile,
		TLS:              c.tlsConfig(),
		Timeout:          c.CassandraTimeout,
		ConnectTimeout:   c.CassandraConnectTimeout,
		SpeculativeDelay: c.CassandraSpeculativeDelay,
		SchemaCreate:     c.CassandraSchemaCreate,
		Replication:      c.CassandraReplication,
	}
}

// tlsConfig is the store's TLS settings; nil without CASSANDRA_TLS.
func (c Config) tlsConfig() *store.TLSConfig {
	if !c.CassandraTLS {
		return nil
	}
	return &store.TLSConfig{
		CAFile: c.CassandraTLSCAFile, CertFile: c.CassandraTLSCertFile, KeyFile: c.CassandraTLSKeyFile,
		ServerName: c.CassandraTLSServerName, InsecureSkipVerify: c.CassandraTLSInsecureSkipVerify,
	}
}

// placeholder matches a value that func run passes through unresolved, such
// as "{{ secret:tracker:password }}".
var placeholder = regexp.MustCompile(`^\s*\{\{.*\}\}\s*$`)

// LoadConfig reads the configuration through lookup, which answers like
// os.LookupEnv (Start passes the environment func-go hands it). It returns
// the first value that does not parse, naming the variable and the value,
// or else every problem Validate finds. A value that is an unresolved func
// template counts as unset, so that local runs under func run fall back to
// the default; such variables are listed in ignored. LoadConfig reads
// nothing else and changes nothing.
func LoadConfig(lookup func(name string) (string, bool)) (cfg Config, ignored []string, err error) {
	resolved := func(name string) (string, bool) {
		v, ok := lookup(name)
		if ok && placeholder.MatchString(v) {
			ignored = append(ignored, name)
			return "", false
		}
		return v, ok
	}
	if err := decodeEnv(&cfg, resolved); err != nil {
		return cfg, ignored, err
	}
	return cfg, ignored, cfg.Validate()
}

// LookupIn answers lookups from env, a map of variables such as the one
// func-go hands Start.
func LookupIn(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(name string, value any, why string) {
		errs = append(errs, fmt.Errorf("%s: invalid value %q: %s", name, fmt.Sprint(value), why))
	}
	if len(c.CassandraHosts) == 0 {
		bad("CASSANDRA_HOSTS", "", "at least one host is required")
	}
	for _, h := range c.CassandraHosts {
		if _, _, err := splitHostPort(h); err != nil {
			bad("CASSANDRA_HOSTS", h, err.Error())
		}
	}
	if !cqlIdentifier.MatchString(c.CassandraKeyspace) {
		bad("CASSANDRA_KEYSPACE", c.CassandraKeyspace, "must be a CQL identifier: a letter, then letters, digits or underscores, at most 48")
	}
	switch c.CassandraConsistency.String() {
	case "SERIAL", "LOCAL_SERIAL", "ANY":
		bad("CASSANDRA_CONSISTENCY", c.CassandraConsistency, "a serial level or ANY cannot be used for plain writes")
	}
	errs = append(errs, c.validateCredentials()...)
	if c.CassandraTimeout <= 0 {
		bad("CASSANDRA_TIMEOUT", c.CassandraTimeout, "must be positive")
	}
	if c.CassandraConnectTimeout <= 0 {
		bad("CASSANDRA_CONNECT_TIMEOUT", c.CassandraConnectTimeout, "must be positive")
	}
	if c.CassandraSpeculativeDelay < 0 || c.CassandraTimeout > 0 && c.CassandraSpeculativeDelay >= c.CassandraTimeout {
		bad("CASSANDRA_SPECULATIVE_DELAY", c.CassandraSpeculativeDelay, "must be 0 (off) or positive and shorter than CASSANDRA_TIMEOUT")
	}
	if r := strings.TrimSpace(c.CassandraReplication); !strings.HasPrefix(r, "{") || !strings.HasSuffix(r, "}") || strings.ContainsAny(r, ";") {
		bad("CASSANDRA_REPLICATION", c.CassandraReplication, "must be a CQL map such as {'class': 'SimpleStrategy', 'replication_factor': 1}")
	}
	if c.TrackMaxBodyBytes < 1024 {
		bad("TRACK_MAX_BODY_BYTES", c.TrackMaxBodyBytes, "must be at least 1024")
	}
	if c.TrackMaxBatchEvents < 1 {
		bad("TRACK_MAX_BATCH_EVENTS", c.TrackMaxBatchEvents, "must be at least 1")
	}
	if c.TrackMaxInflight < c.TrackMaxBatchEvents {
		bad("TRACK_MAX_INFLIGHT", c.TrackMaxInflight, fmt.Sprintf("must be at least TRACK_MAX_BATCH_EVENTS (%d), or a full batch could never be written", c.TrackMaxBatchEvents))
	}
	if len(c.TrackCORSOrigins) == 0 {
		bad("TRACK_CORS_ORIGINS", "", "must list at least one origin, or be * for any")
	}
	for _, o := range c.TrackCORSOrigins {
		if o == "*" && len(c.TrackCORSOrigins) > 1 {
			bad("TRACK_CORS_ORIGINS", strings.Join(c.TrackCORSOrigins, ","), `"*" allows every origin and must stand alone`)
		} else if o != "*" && !validOrigin(o) {
			bad("TRACK_CORS_ORIGINS", o, "must be * or origins such as https://shop.example or http://localhost:3000: a scheme, a host and an optional port, nothing more")
		}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("LOG_LEVEL", c.LogLevel, err.Error())
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("LOG_FORMAT", c.LogFormat, "must be json or text")
	}
	errs = append(errs, c.validateTelemetry()...)
	return errors.Join(errs...)
}

// validateCredentials checks the variables of authentication and TLS
// against each other; CheckFiles reads the files they name.
func (c Config) validateCredentials() []error {
	var errs []error
	bad := func(name, why string) { errs = append(errs, fmt.Errorf("%s: %s", name, why)) }
	if c.CassandraPassword != "" && c.CassandraPasswordFile != "" {
		bad("CASSANDRA_PASSWORD_FILE", "set together with CASSANDRA_PASSWORD; set one of them")
	}
	if c.CassandraUsername == "" && (c.CassandraPassword != "" || c.CassandraPasswordFile != "") {
		bad("CASSANDRA_USERNAME", "empty while a password is set; set the role to log in as")
	}
	if !c.CassandraTLS {
		for name, v := range map[string]bool{
			"CASSANDRA_TLS_CA_FILE": c.CassandraTLSCAFile != "", "CASSANDRA_TLS_CERT_FILE": c.CassandraTLSCertFile != "",
			"CASSANDRA_TLS_KEY_FILE": c.CassandraTLSKeyFile != "", "CASSANDRA_TLS_SERVER_NAME": c.CassandraTLSServerName != "",
			"CASSANDRA_TLS_INSECURE_SKIP_VERIFY": c.CassandraTLSInsecureSkipVerify,
		} {
			if v {
				bad(name, "set while CASSANDRA_TLS is not true: the connections would not use it")
			}
		}
	}
	if (c.CassandraTLSCertFile == "") != (c.CassandraTLSKeyFile == "") {
		bad("CASSANDRA_TLS_CERT_FILE", "CASSANDRA_TLS_CERT_FILE and CASSANDRA_TLS_KEY_FILE go together: set both for mutual TLS, or neither")
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// CheckFiles reads the files the configuration names, as the store will
// at each connection: the CA bundle, the client certificate and its key
// (they must match, and the certificate must be valid now) and the
// password file. Each problem names its variable; none shows a secret.
// It returns the client certificate, for the configuration's log line.
func (c Config) CheckFiles(now time.Time) (*x509.Certificate, error) {
	var errs []error
	var leaf *x509.Certificate
	if c.CassandraTLS && c.CassandraTLSCAFile != "" {
		if _, err := store.ReadCA(c.CassandraTLSCAFile); err != nil {
			errs = append(errs, fmt.Errorf("CASSANDRA_TLS_CA_FILE: %s: %w", c.CassandraTLSCAFile, err))
		}
	}
	if c.CassandraTLS && c.CassandraTLSCertFile != "" && c.CassandraTLSKeyFile != "" {
		var err error
		if _, leaf, err = store.ReadKeyPair(c.CassandraTLSCertFile, c.CassandraTLSKeyFile, now); err != nil {
			errs = append(errs, fmt.Errorf("CASSANDRA_TLS_CERT_FILE, CASSANDRA_TLS_KEY_FILE: %s, %s: %w", c.CassandraTLSCertFile, c.CassandraTLSKeyFile, err))
		}
	}
	if c.CassandraPasswordFile != "" {
		if _, err := store.ReadPassword(c.CassandraPasswordFile); err != nil {
			errs = append(errs, fmt.Errorf("CASSANDRA_PASSWORD_FILE: %s: %w", c.CassandraPasswordFile, err))
		}
	}
	return leaf, errors.Join(errs...)
}

// knativeReservedPorts are the ports of a Knative revision's pod that the
// queue-proxy and Knative's probes use; the metrics listener must not take
// one.
var knativeReservedPorts = []int{8008, 8012, 8013, 8022, 8112, 9090, 9091}

// validateTelemetry checks the variables of metrics and traces.
func (c Config) validateTelemetry() []error {
	var errs []error
	bad := func(name string, value any, why string) {
		errs = append(errs, fmt.Errorf("%s: invalid value %q: %s", name, fmt.Sprint(value), why))
	}
	if c.MetricsAddress != "" {
		_, p, err := net.SplitHostPort(c.MetricsAddress)
		port, perr := strconv.Atoi(p)
		switch {
		case err != nil || perr != nil || port < 0 || port > 65535:
			bad("METRICS_ADDRESS", c.MetricsAddress, "must be host:port, such as [::]:9464, or empty for no metrics listener")
		case slices.Contains(knativeReservedPorts, port):
			bad("METRICS_ADDRESS", c.MetricsAddress, fmt.Sprintf("port %d is reserved by Knative in a revision's pod (%v)", port, knativeReservedPorts))
		}
	}
	for _, e := range c.OTelMetricsExporter {
		switch {
		case e != "prometheus" && e != "otlp" && e != "none":
			bad("OTEL_METRICS_EXPORTER", strings.Join(c.OTelMetricsExporter, ","), "must list prometheus, otlp, or be none")
		case e == "none" && len(c.OTelMetricsExporter) > 1:
			bad("OTEL_METRICS_EXPORTER", strings.Join(c.OTelMetricsExporter, ","), "none must stand alone")
		case e == "otlp" && c.OTelExporterOTLPEndpoint == "" && c.OTelExporterOTLPMetricsEndpoint == "":
			bad("OTEL_METRICS_EXPORTER", strings.Join(c.OTelMetricsExporter, ","), "otlp needs OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
		}
	}
	if c.OTelMetricExportInterval < 1000 {
		bad("OTEL_METRIC_EXPORT_INTERVAL", c.OTelMetricExportInterval, "must be at least 1000 (milliseconds)")
	}
	if c.OTelTracesExporter != "otlp" && c.OTelTracesExporter != "none" {
		bad("OTEL_TRACES_EXPORTER", c.OTelTracesExporter, "must be otlp or none")
	}
	for name, u := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":         c.OTelExporterOTLPEndpoint,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":  c.OTelExporterOTLPTracesEndpoint,
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": c.OTelExporterOTLPMetricsEndpoint,
	} {
		if u != "" {
			if err := telemetry.CheckEndpoint(u); err != nil {
				bad(name, redactURL(u), err.Error())
			}
		}
	}
	if _, err := telemetry.NewSampler(c.OTelTracesSampler, c.OTelTracesSamplerArg); err != nil {
		name := "OTEL_TRACES_SAMPLER"
		if slices.Contains(telemetry.Samplers, c.OTelTracesSampler) {
			name = "OTEL_TRACES_SAMPLER_ARG"
		}
		bad(name, c.OTelTracesSampler+" "+c.OTelTracesSamplerArg, err.Error())
	}
	if _, err := telemetry.ParseResourceAttributes(c.OTelResourceAttributes); err != nil {
		bad("OTEL_RESOURCE_ATTRIBUTES", c.OTelResourceAttributes, err.Error())
	}
	return errs
}

// redactURL drops the user information (a password, a token) from a URL
// that is logged. A value that does not parse as a URL may hold one
// anywhere, so none of it is shown.
func redactURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "REDACTED (not a URL)"
	case u.User == nil:
		return s
	}
	u.User = url.User("REDACTED")
	return u.String()
}

var cqlIdentifier = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

// splitHostPort accepts host or host:port (IPv6 in brackets) and fills in
// Cassandra's default port.
func splitHostPort(h string) (host string, port int, err error) {
	if h == "" {
		return "", 0, errors.New("empty host")
	}
	host, p, err := net.SplitHostPort(h)
	if err != nil {
		// No port: the whole value is the host, a bare IPv6 address included.
		host, p = strings.Trim(h, "[]"), "9042"
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	if host == "" {
		return "", 0, errors.New("empty host")
	}
	return host, port, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, errors.New("must be debug, info, warn or error")
	}
	return l, nil
}

// LogValue logs the effective configuration with the password redacted.
func (c Config) LogValue() slog.Value {
	password := ""
	if c.CassandraPassword != "" {
		password = "REDACTED"
	}
	return slog.GroupValue(
		slog.Any("CASSANDRA_HOSTS", c.CassandraHosts),
		slog.String("CASSANDRA_KEYSPACE", c.CassandraKeyspace),
		slog.String("CASSANDRA_CONSISTENCY", c.CassandraConsistency.String()),
		slog.String("CASSANDRA_LOCAL_DC", c.CassandraLocalDC),
		slog.String("CASSANDRA_USERNAME", c.CassandraUsername),
		slog.String("CASSANDRA_PASSWORD", password),
		slog.String("CASSANDRA_PASSWORD_FILE", c.CassandraPasswordFile),
		slog.Bool("CASSANDRA_TLS", c.CassandraTLS),
		slog.String("CASSANDRA_TLS_CA_FILE", c.CassandraTLSCAFile),
		slog.String("CASSANDRA_TLS_CERT_FILE", c.CassandraTLSCertFile),
		slog.String("CASSANDRA_TLS_KEY_FILE", c.CassandraTLSKeyFile),
		slog.String("CASSANDRA_TLS_SERVER_NAME", c.CassandraTLSServerName),
		slog.Bool("CASSANDRA_TLS_INSECURE_SKIP_VERIFY", c.CassandraTLSInsecureSkipVerify),
		slog.Duration("CASSANDRA_TIMEOUT", c.CassandraTimeout),
		slog.Duration("CASSANDRA_CONNECT_TIMEOUT", c.CassandraConnectTimeout),
		slog.Duration("CASSANDRA_SPECULATIVE_DELAY", c.CassandraSpeculativeDelay),
		slog.Bool("CASSANDRA_SCHEMA_CREATE", c.CassandraSchemaCreate),
		slog.String("CASSANDRA_REPLICATION", c.CassandraReplication),
		slog.Int64("TRACK_MAX_BODY_BYTES", c.TrackMaxBodyBytes),
		slog.Int("TRACK_MAX_BATCH_EVENTS", c.TrackMaxBatchEvents),
		slog.Int("TRACK_MAX_INFLIGHT", c.TrackMaxInflight),
		slog.Any("TRACK_CORS_ORIGINS", c.TrackCORSOrigins),
		slog.String("LOG_LEVEL", c.LogLevel),
		slog.String("LOG_FORMAT", c.LogFormat),
		slog.String("METRICS_ADDRESS", c.MetricsAddress),
		slog.Any("OTEL_METRICS_EXPORTER", c.OTelMetricsExporter),
		slog.Int("OTEL_METRIC_EXPORT_INTERVAL", c.OTelMetricExportInterval),
		slog.String("OTEL_TRACES_EXPORTER", c.OTelTracesExporter),
		slog.String("OTEL_EXPORTER_OTLP_ENDPOINT", redactURL(c.OTelExporterOTLPEndpoint)),
		slog.String("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", redactURL(c.OTelExporterOTLPTracesEndpoint)),
		slog.String("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", redactURL(c.OTelExporterOTLPMetricsEndpoint)),
		slog.String("OTEL_TRACES_SAMPLER", c.OTelTracesSampler),
		slog.String("OTEL_TRACES_SAMPLER_ARG", c.OTelTracesSamplerArg),
		slog.String("OTEL_SERVICE_NAME", c.OTelServiceName),
		slog.String("OTEL_RESOURCE_ATTRIBUTES", c.OTelResourceAttributes),
		slog.String("K_SERVICE", c.KService),
		slog.String("K_CONFIGURATION", c.KConfiguration),
		slog.String("K_REVISION", c.KRevision),
	)
}
