package function

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/kelseyhightower/envconfig"
)

// Config is the function's whole configuration, read from the environment.
// The variable names in the tags are the contract with the manifests in
// knative/ and with func.yaml; a test pins them.
type Config struct {
	// CassandraHosts are the contact points, host or host:port, comma separated.
	CassandraHosts []string `envconfig:"CASSANDRA_HOSTS" default:"127.0.0.1:9042"`
	// CassandraKeyspace holds the event tables.
	CassandraKeyspace string `envconfig:"CASSANDRA_KEYSPACE" default:"tracking"`
	// CassandraConsistency is the consistency level of every write and read.
	CassandraConsistency gocql.Consistency `envconfig:"CASSANDRA_CONSISTENCY" default:"LOCAL_QUORUM"`
	// CassandraLocalDC, when set, keeps queries in this data center.
	CassandraLocalDC string `envconfig:"CASSANDRA_LOCAL_DC"`
	// CassandraUsername and CassandraPassword enable password authentication when the username is set.
	CassandraUsername string `envconfig:"CASSANDRA_USERNAME"`
	CassandraPassword string `envconfig:"CASSANDRA_PASSWORD"`
	// CassandraTimeout bounds one query, including the driver's wait for a connection.
	CassandraTimeout time.Duration `envconfig:"CASSANDRA_TIMEOUT" default:"2s"`
	// CassandraConnectTimeout bounds one attempt to open a connection.
	CassandraConnectTimeout time.Duration `envconfig:"CASSANDRA_CONNECT_TIMEOUT" default:"5s"`
	// CassandraSchemaCreate creates the keyspace and tables at start when they are missing.
	CassandraSchemaCreate bool `envconfig:"CASSANDRA_SCHEMA_CREATE" default:"true"`
	// CassandraReplication is the CQL replication map used when the keyspace is created.
	CassandraReplication string `envconfig:"CASSANDRA_REPLICATION" default:"{'class': 'SimpleStrategy', 'replication_factor': 1}"`

	// TrackMaxBodyBytes is the largest request body read, in bytes.
	TrackMaxBodyBytes int64 `envconfig:"TRACK_MAX_BODY_BYTES" default:"1048576"`
	// TrackMaxBatchEvents is the largest number of events in one request.
	TrackMaxBatchEvents int `envconfig:"TRACK_MAX_BATCH_EVENTS" default:"500"`
	// TrackMaxInflight bounds the events being written to Cassandra at once
	// by this process; past it requests get 503 at once instead of queueing.
	TrackMaxInflight int `envconfig:"TRACK_MAX_INFLIGHT" default:"2000"`
	// TrackCORSOrigins are the web origins whose pages may send events
	// with fetch (scheme://host[:port], comma separated), or "*" for any.
	TrackCORSOrigins []string `envconfig:"TRACK_CORS_ORIGINS" default:"*"`

	// LogLevel is debug, info, warn or error.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info"`
	// LogFormat is json or text.
	LogFormat string `envconfig:"LOG_FORMAT" default:"json"`
}

// placeholder matches a value that func run passes through unresolved, such
// as "{{ secret:tracker:password }}".
var placeholder = regexp.MustCompile(`^\s*\{\{.*\}\}\s*$`)

// LoadConfig reads the configuration from the process environment (func-go
// hands Start the same variables as a map; envconfig reads them directly).
// It returns the first value that does not parse, naming the variable and the
// value, or else every problem Validate finds. A variable whose value is an
// unresolved func template is unset first, so that local runs under func run
// fall back to the default, and is reported in ignored.
func LoadConfig() (cfg Config, ignored []string, err error) {
	for _, name := range EnvNames() {
		if v, ok := os.LookupEnv(name); ok && placeholder.MatchString(v) {
			os.Unsetenv(name)
			ignored = append(ignored, name)
		}
	}
	if err := envconfig.Process("", &cfg); err != nil {
		var perr *envconfig.ParseError
		if errors.As(err, &perr) {
			return cfg, ignored, fmt.Errorf("%s: invalid value %q: %v", perr.KeyName, perr.Value, perr.Err)
		}
		return cfg, ignored, err
	}
	return cfg, ignored, cfg.Validate()
}

// EnvNames lists every environment variable the function reads, in the
// order of the Config fields.
func EnvNames() []string {
	t := reflect.TypeOf(Config{})
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("envconfig"); name != "" {
			names = append(names, name)
		}
	}
	return names
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
	switch c.CassandraConsistency {
	case gocql.Serial, gocql.LocalSerial, gocql.Any:
		bad("CASSANDRA_CONSISTENCY", c.CassandraConsistency, "a serial level or ANY cannot be used for plain writes")
	}
	if c.CassandraTimeout <= 0 {
		bad("CASSANDRA_TIMEOUT", c.CassandraTimeout, "must be positive")
	}
	if c.CassandraConnectTimeout <= 0 {
		bad("CASSANDRA_CONNECT_TIMEOUT", c.CassandraConnectTimeout, "must be positive")
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
	return errors.Join(errs...)
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
		slog.Duration("CASSANDRA_TIMEOUT", c.CassandraTimeout),
		slog.Duration("CASSANDRA_CONNECT_TIMEOUT", c.CassandraConnectTimeout),
		slog.Bool("CASSANDRA_SCHEMA_CREATE", c.CassandraSchemaCreate),
		slog.String("CASSANDRA_REPLICATION", c.CassandraReplication),
		slog.Int64("TRACK_MAX_BODY_BYTES", c.TrackMaxBodyBytes),
		slog.Int("TRACK_MAX_BATCH_EVENTS", c.TrackMaxBatchEvents),
		slog.Int("TRACK_MAX_INFLIGHT", c.TrackMaxInflight),
		slog.Any("TRACK_CORS_ORIGINS", c.TrackCORSOrigins),
		slog.String("LOG_LEVEL", c.LogLevel),
		slog.String("LOG_FORMAT", c.LogFormat),
	)
}
