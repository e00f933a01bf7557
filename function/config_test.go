package function

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/google/go-cmp/cmp"
)

// The names are the contract with the manifests; renaming one breaks
// deployments, so it must be a conscious change here too.
func TestEnvNamesArePinned(t *testing.T) {
	t.Parallel()
	want := []string{
		"CASSANDRA_HOSTS", "CASSANDRA_KEYSPACE", "CASSANDRA_CONSISTENCY", "CASSANDRA_LOCAL_DC",
		"CASSANDRA_USERNAME", "CASSANDRA_PASSWORD", "CASSANDRA_PASSWORD_FILE", "CASSANDRA_TLS", "CASSANDRA_TLS_CA_FILE",
		"CASSANDRA_TLS_CERT_FILE", "CASSANDRA_TLS_KEY_FILE", "CASSANDRA_TLS_SERVER_NAME", "CASSANDRA_TLS_INSECURE_SKIP_VERIFY",
		"CASSANDRA_TIMEOUT", "CASSANDRA_CONNECT_TIMEOUT", "CASSANDRA_SPECULATIVE_DELAY",
		"CASSANDRA_SCHEMA_CREATE", "CASSANDRA_REPLICATION", "TRACK_MAX_BODY_BYTES", "TRACK_MAX_BATCH_EVENTS",
		"TRACK_MAX_INFLIGHT", "TRACK_CORS_ORIGINS", "LOG_LEVEL", "LOG_FORMAT",
		"METRICS_ADDRESS", "OTEL_METRICS_EXPORTER", "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_TRACES_EXPORTER",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"K_SERVICE", "K_CONFIGURATION", "K_REVISION",
	}
	if diff := cmp.Diff(want, EnvNames()); diff != "" {
		t.Errorf("EnvNames (-want +got):\n%s", diff)
	}
}

// none is an environment without any variable.
func none(string) (string, bool) { return "", false }

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, ignored, err := LoadConfig(none)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		CassandraHosts:            []string{"127.0.0.1:9042"},
		CassandraKeyspace:         "tracking",
		CassandraConsistency:      gocql.LocalQuorum,
		CassandraTimeout:          2 * time.Second,
		CassandraConnectTimeout:   5 * time.Second,
		CassandraSpeculativeDelay: 250 * time.Millisecond,
		CassandraSchemaCreate:     true,
		CassandraReplication:      "{'class': 'SimpleStrategy', 'replication_factor': 1}",
		TrackMaxBodyBytes:         1 << 20,
		TrackMaxBatchEvents:       500,
		TrackMaxInflight:          2000,
		TrackCORSOrigins:          []string{"*"},
		LogLevel:                  "info",
		LogFormat:                 "json",

		MetricsAddress:           "[::]:9464",
		OTelMetricsExporter:      []string{"prometheus"},
		OTelMetricExportInterval: 60000,
		OTelTracesExporter:       "otlp",
		OTelTracesSampler:        "parentbased_always_on",
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if len(ignored) != 0 {
		t.Errorf("ignored: got %v, want none", ignored)
	}
}

func TestLoadConfigReadsEveryVariable(t *testing.T) {
	t.Parallel()
	set := map[string]string{
		"CASSANDRA_HOSTS":             "cassandra-0.cassandra:9042,cassandra-1.cassandra",
		"CASSANDRA_KEYSPACE":          "ks1",
		"CASSANDRA_CONSISTENCY":       "QUORUM",
		"CASSANDRA_LOCAL_DC":          "dc1",
		"CASSANDRA_USERNAME":          "tracker",
		"CASSANDRA_PASSWORD":          "s3cret",
		"CASSANDRA_TIMEOUT":           "750ms",
		"CASSANDRA_CONNECT_TIMEOUT":   "3s",
		"CASSANDRA_SPECULATIVE_DELAY": "100ms",
		"CASSANDRA_SCHEMA_CREATE":     "false",
		"CASSANDRA_REPLICATION":       "{'class': 'NetworkTopologyStrategy', 'dc1': 3}",
		"TRACK_MAX_BODY_BYTES":        "2048",
		"TRACK_MAX_BATCH_EVENTS":      "10",
		"TRACK_MAX_INFLIGHT":          "40",
		"TRACK_CORS_ORIGINS":          "https://shop.example,http://localhost:3000",
		"LOG_LEVEL":                   "debug",
		"LOG_FORMAT":                  "text",

		"METRICS_ADDRESS":                     "127.0.0.1:9100",
		"OTEL_METRICS_EXPORTER":               "prometheus,otlp",
		"OTEL_METRIC_EXPORT_INTERVAL":         "10000",
		"OTEL_TRACES_EXPORTER":                "none",
		"OTEL_EXPORTER_OTLP_ENDPOINT":         "https://collector:4318",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":  "http://jaeger:4318/v1/traces",
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:4318/v1/metrics",
		"OTEL_TRACES_SAMPLER":                 "parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG":             "0.25",
		"OTEL_SERVICE_NAME":                   "tracker-eu",
		"OTEL_RESOURCE_ATTRIBUTES":            "deployment.environment.name=prod,team=web%20analytics",
		"K_SERVICE":                           "tracker",
		"K_CONFIGURATION":                     "tracker",
		"K_REVISION":                          "tracker-00007",
	}
	cfg, _, err := LoadConfig(LookupIn(set))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		CassandraHosts:            []string{"cassandra-0.cassandra:9042", "cassandra-1.cassandra"},
		CassandraKeyspace:         "ks1",
		CassandraConsistency:      gocql.Quorum,
		CassandraLocalDC:          "dc1",
		CassandraUsername:         "tracker",
		CassandraPassword:         "s3cret",
		CassandraTimeout:          750 * time.Millisecond,
		CassandraConnectTimeout:   3 * time.Second,
		CassandraSpeculativeDelay: 100 * time.Millisecond,
		CassandraReplication:      "{'class': 'NetworkTopologyStrategy', 'dc1': 3}",
		TrackMaxBodyBytes:         2048,
		TrackMaxBatchEvents:       10,
		TrackMaxInflight:          40,
		TrackCORSOrigins:          []string{"https://shop.example", "http://localhost:3000"},
		LogLevel:                  "debug",
		LogFormat:                 "text",

		MetricsAddress:                  "127.0.0.1:9100",
		OTelMetricsExporter:             []string{"prometheus", "otlp"},
		OTelMetricExportInterval:        10000,
		OTelTracesExporter:              "none",
		OTelExporterOTLPEndpoint:        "https://collector:4318",
		OTelExporterOTLPTracesEndpoint:  "http://jaeger:4318/v1/traces",
		OTelExporterOTLPMetricsEndpoint: "http://metrics:4318/v1/metrics",
		OTelTracesSampler:               "parentbased_traceidratio",
		OTelTracesSamplerArg:            "0.25",
		OTelServiceName:                 "tracker-eu",
		OTelResourceAttributes:          "deployment.environment.name=prod,team=web%20analytics",
		KService:                        "tracker",
		KConfiguration:                  "tracker",
		KRevision:                       "tracker-00007",
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if strings.Contains(fmtLogValue(cfg), "s3cret") {
		t.Errorf("logged config shows the password: %s", fmtLogValue(cfg))
	}
}

func TestLoadConfigNamesTheBadVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		want        []string // substrings of the error
	}{
		{"CASSANDRA_TIMEOUT", "soon", []string{"CASSANDRA_TIMEOUT", `"soon"`}},
		{"CASSANDRA_CONSISTENCY", "MOST", []string{"CASSANDRA_CONSISTENCY", `"MOST"`}},
		{"CASSANDRA_CONSISTENCY", "SERIAL", []string{"CASSANDRA_CONSISTENCY", `"SERIAL"`}},
		{"CASSANDRA_SCHEMA_CREATE", "maybe", []string{"CASSANDRA_SCHEMA_CREATE", `"maybe"`}},
		{"TRACK_MAX_BATCH_EVENTS", "0", []string{"TRACK_MAX_BATCH_EVENTS", `"0"`}},
		{"TRACK_MAX_BODY_BYTES", "12", []string{"TRACK_MAX_BODY_BYTES", `"12"`}},
		{"CASSANDRA_KEYSPACE", "drop table", []string{"CASSANDRA_KEYSPACE", `"drop table"`}},
		{"CASSANDRA_HOSTS", "db:99999", []string{"CASSANDRA_HOSTS", `"db:99999"`}},
		{"CASSANDRA_REPLICATION", "3", []string{"CASSANDRA_REPLICATION", `"3"`}},
		{"TRACK_MAX_INFLIGHT", "100", []string{"TRACK_MAX_INFLIGHT", `"100"`, "TRACK_MAX_BATCH_EVENTS"}},
		{"TRACK_CORS_ORIGINS", "https://shop.example/", []string{"TRACK_CORS_ORIGINS", `"https://shop.example/"`}},
		{"TRACK_CORS_ORIGINS", "shop.example", []string{"TRACK_CORS_ORIGINS", `"shop.example"`}},
		{"TRACK_CORS_ORIGINS", "*,https://shop.example", []string{"TRACK_CORS_ORIGINS", `"*" allows every origin`}},
		{"TRACK_CORS_ORIGINS", "ftp://shop.example", []string{"TRACK_CORS_ORIGINS", `"ftp://shop.example"`}},
		{"TRACK_CORS_ORIGINS", "", []string{"TRACK_CORS_ORIGINS", "at least one origin"}},
		{"CASSANDRA_HOSTS", " , ", []string{"CASSANDRA_HOSTS", "at least one host"}},
		{"LOG_LEVEL", "loud", []string{"LOG_LEVEL", `"loud"`}},
		{"LOG_FORMAT", "xml", []string{"LOG_FORMAT", `"xml"`}},
		{"CASSANDRA_TIMEOUT", "-1s", []string{"CASSANDRA_TIMEOUT", `"-1s"`}},
		{"METRICS_ADDRESS", "9464", []string{"METRICS_ADDRESS", `"9464"`}},
		{"CASSANDRA_SPECULATIVE_DELAY", "-1ms", []string{"CASSANDRA_SPECULATIVE_DELAY", "shorter than CASSANDRA_TIMEOUT"}},
		{"CASSANDRA_SPECULATIVE_DELAY", "2s", []string{"CASSANDRA_SPECULATIVE_DELAY", "shorter than CASSANDRA_TIMEOUT"}},
		{"METRICS_ADDRESS", "[::]:9090", []string{"METRICS_ADDRESS", "reserved by Knative"}},
		{"OTEL_METRICS_EXPORTER", "statsd", []string{"OTEL_METRICS_EXPORTER", `"statsd"`}},
		{"OTEL_METRICS_EXPORTER", "otlp", []string{"OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"}},
		{"OTEL_METRICS_EXPORTER", "none,prometheus", []string{"OTEL_METRICS_EXPORTER", "stand alone"}},
		{"OTEL_METRIC_EXPORT_INTERVAL", "10", []string{"OTEL_METRIC_EXPORT_INTERVAL", `"10"`}},
		{"OTEL_METRIC_EXPORT_INTERVAL", "10s", []string{"OTEL_METRIC_EXPORT_INTERVAL", `"10s"`}},
		{"OTEL_TRACES_EXPORTER", "zipkin", []string{"OTEL_TRACES_EXPORTER", `"zipkin"`}},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", []string{"OTEL_EXPORTER_OTLP_ENDPOINT", `"collector:4318"`}},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://x", []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}},
		{"OTEL_TRACES_SAMPLER", "sometimes", []string{"OTEL_TRACES_SAMPLER", "sometimes"}},
		{"OTEL_RESOURCE_ATTRIBUTES", "team", []string{"OTEL_RESOURCE_ATTRIBUTES", `"team"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			_, _, err := LoadConfig(LookupIn(map[string]string{tt.name: tt.value}))
			if err == nil {
				t.Fatalf("%s=%s: got no error, want one", tt.name, tt.value)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// TestEndpointCredentialsAreRefusedUnseen: an OTLP endpoint with
// credentials is refused (the exporter would drop them), and the error
// does not show them, even when the value does not parse as a URL.
func TestEndpointCredentialsAreRefusedUnseen(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://user:t0ken@collector:4318", "http://user:t0ken%zz@collector:4318", "http://user:t0 ken@collector"} {
		_, _, err := LoadConfig(LookupIn(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": u}))
		if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") {
			t.Errorf("%q: got %v, want an error naming OTEL_EXPORTER_OTLP_ENDPOINT", u, err)
		} else if strings.Contains(err.Error(), "t0") {
			t.Errorf("%q: the error shows the credentials: %v", u, err)
		}
	}
}

// TestCredentialVariablesGoTogether: TLS files without CASSANDRA_TLS, a
// certificate without its key, and two passwords are refused at start.
func TestCredentialVariablesGoTogether(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CASSANDRA_TLS_CA_FILE": "/ca.crt"}, "CASSANDRA_TLS_CA_FILE: set while CASSANDRA_TLS is not true"},
		{map[string]string{"CASSANDRA_TLS_SERVER_NAME": "cassandra"}, "CASSANDRA_TLS_SERVER_NAME: set while CASSANDRA_TLS is not true"},
		{map[string]string{"CASSANDRA_TLS": "true", "CASSANDRA_TLS_CERT_FILE": "/tls.crt"}, "CASSANDRA_TLS_KEY_FILE go together"},
		{map[string]string{"CASSANDRA_TLS": "true", "CASSANDRA_TLS_KEY_FILE": "/tls.key"}, "CASSANDRA_TLS_KEY_FILE go together"},
		{map[string]string{"CASSANDRA_USERNAME": "tracker", "CASSANDRA_PASSWORD": "p", "CASSANDRA_PASSWORD_FILE": "/p"}, "set together with CASSANDRA_PASSWORD"},
		{map[string]string{"CASSANDRA_PASSWORD_FILE": "/p"}, "CASSANDRA_USERNAME: empty while a password is set"},
	} {
		t.Run(c.want, func(t *testing.T) {
			_, _, err := LoadConfig(LookupIn(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: got %v, want an error with %q", c.env, err, c.want)
			}
		})
	}
	cfg, _, err := LoadConfig(LookupIn(map[string]string{"CASSANDRA_TLS": "true", "CASSANDRA_TLS_CA_FILE": "/ca.crt",
		"CASSANDRA_TLS_CERT_FILE": "/tls.crt", "CASSANDRA_TLS_KEY_FILE": "/tls.key", "CASSANDRA_TLS_SERVER_NAME": "cassandra",
		"CASSANDRA_USERNAME": "tracker", "CASSANDRA_PASSWORD_FILE": "/password"}))
	if err != nil {
		t.Fatalf("a whole TLS configuration: %v", err)
	}
	if tls := cfg.Store().TLS; tls == nil || tls.CAFile != "/ca.crt" || tls.ServerName != "cassandra" || cfg.Store().PasswordFile != "/password" {
		t.Errorf("store config: TLS %+v, password file %q", tls, cfg.Store().PasswordFile)
	}
}

// TestCheckFilesNamesTheVariable: a file that cannot serve stops the start
// with the variable's name, and never with a secret.
func TestCheckFilesNamesTheVariable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.crt")
	empty := filepath.Join(dir, "password")
	for path, content := range map[string]string{notPEM: "not a certificate", empty: "\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{CassandraTLS: true, CassandraTLSCAFile: notPEM, CassandraTLSCertFile: filepath.Join(dir, "missing.crt"),
		CassandraTLSKeyFile: filepath.Join(dir, "missing.key"), CassandraUsername: "tracker", CassandraPasswordFile: empty}
	_, err := cfg.CheckFiles(time.Now())
	if err == nil {
		t.Fatal("got no error")
	}
	for _, want := range []string{"CASSANDRA_TLS_CA_FILE: " + notPEM + ": no PEM certificate", "CASSANDRA_TLS_CERT_FILE, CASSANDRA_TLS_KEY_FILE", "no such file",
		"CASSANDRA_PASSWORD_FILE: " + empty + ": the file is empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	cfg.CassandraPasswordFile = filepath.Join(dir, "real-password")
	if err := os.WriteFile(cfg.CassandraPasswordFile, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CassandraTLSCAFile = filepath.Join(dir, "missing-ca.crt")
	if _, err := cfg.CheckFiles(time.Now()); err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "CASSANDRA_PASSWORD_FILE") {
		t.Errorf("got %v; want the missing files named, the readable password file not, and no password", err)
	}
}

func TestLoadConfigNamesTheBadSamplerArg(t *testing.T) {
	t.Parallel()
	_, _, err := LoadConfig(LookupIn(map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}))
	if err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER_ARG") {
		t.Fatalf("got %v, want an error naming OTEL_TRACES_SAMPLER_ARG", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	err := Config{CassandraKeyspace: "1x", TrackMaxBatchEvents: 0, TrackMaxBodyBytes: 1, LogLevel: "info", LogFormat: "json",
		CassandraTimeout: time.Second, CassandraConnectTimeout: time.Second, CassandraHosts: []string{"h"},
		CassandraReplication: "{}", OTelMetricExportInterval: 1000, OTelTracesExporter: "none",
		OTelTracesSampler: "always_on"}.Validate()
	if err == nil {
		t.Fatal("got no error, want three")
	}
	for _, name := range []string{"CASSANDRA_KEYSPACE", "TRACK_MAX_BATCH_EVENTS", "TRACK_MAX_BODY_BYTES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestLoadConfigIgnoresFuncTemplates(t *testing.T) {
	t.Parallel()
	cfg, ignored, err := LoadConfig(LookupIn(map[string]string{
		"CASSANDRA_PASSWORD": "{{ secret:tracker-cassandra:password }}",
		"CASSANDRA_TIMEOUT":  "{{ configMap:tracker:CASSANDRA_TIMEOUT }}",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CassandraPassword != "" || cfg.CassandraTimeout != 2*time.Second {
		t.Errorf("got password %q timeout %s, want empty and the 2s default", cfg.CassandraPassword, cfg.CassandraTimeout)
	}
	if diff := cmp.Diff([]string{"CASSANDRA_PASSWORD", "CASSANDRA_TIMEOUT"}, ignored); diff != "" {
		t.Errorf("ignored (-want +got):\n%s", diff)
	}
}

// TestLoadConfigSplitsLists reads the list variables as cassandra/local.sh
// documents them: separated by commas, white space, or both.
func TestLoadConfigSplitsLists(t *testing.T) {
	t.Parallel()
	want := []string{"127.0.0.1:9042", "127.0.0.2:9042", "127.0.0.3"}
	for _, hosts := range []string{"127.0.0.1:9042,127.0.0.2:9042,127.0.0.3", "127.0.0.1:9042 127.0.0.2:9042 127.0.0.3", " 127.0.0.1:9042, 127.0.0.2:9042 ,127.0.0.3 "} {
		cfg, _, err := LoadConfig(LookupIn(map[string]string{"CASSANDRA_HOSTS": hosts}))
		if err != nil {
			t.Fatalf("CASSANDRA_HOSTS=%q: %v", hosts, err)
		}
		if diff := cmp.Diff(want, cfg.CassandraHosts); diff != "" {
			t.Errorf("CASSANDRA_HOSTS=%q (-want +got):\n%s", hosts, diff)
		}
	}
}

// TestLoadConfigLeavesTheEnvironmentAlone: a template value in the
// process environment is ignored by the configuration but stays where it
// is, for whatever else reads it.
func TestLoadConfigLeavesTheEnvironmentAlone(t *testing.T) {
	const template = "{{ secret:tracker-cassandra:password }}"
	t.Setenv("CASSANDRA_PASSWORD", template)
	if _, ignored, err := LoadConfig(os.LookupEnv); err != nil || len(ignored) != 1 {
		t.Fatalf("LoadConfig: ignored %v, error %v; want CASSANDRA_PASSWORD ignored", ignored, err)
	}
	if got := os.Getenv("CASSANDRA_PASSWORD"); got != template {
		t.Errorf("CASSANDRA_PASSWORD after LoadConfig: got %q, want %q", got, template)
	}
}

func fmtLogValue(cfg Config) string {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("configuration", "config", cfg)
	return buf.String()
}
