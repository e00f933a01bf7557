package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// ErrConnect marks an error of Open that came from connecting to the
// nodes (TLS, credentials, a node away); Logs has said why already.
var ErrConnect = errors.New("cannot connect to Cassandra")

// Logs is what the store writes to the log, kept across the stores that
// Open makes (the connect loop calls it again after each failure), so that
// what repeats is written once: why connections to a node fail, once per
// node and cause, and the driver's lines that repeat an error, at most
// once a minute each.
type Logs struct {
	log    *slog.Logger
	user   string
	tlsOn  bool
	driver *gocqlLogger

	mu     sync.Mutex
	causes map[string]string // by node: why its last connection failed; absent after a success
}

// NewLogs returns the logs of the stores of cfg, written to log.
func NewLogs(log *slog.Logger, cfg Config) *Logs {
	return &Logs{log: log, user: cfg.Username, tlsOn: cfg.TLS != nil, driver: newGocqlLogger(log.With("component", "gocql")),
		causes: map[string]string{}}
}

// connect records one attempt to connect to host: a line when the cause
// of its failures changes, and one when it connects again.
func (l *Logs) connect(host string, err error) {
	cause := ""
	if err != nil {
		cause = ConnectFailure(err)
	}
	l.mu.Lock()
	last := l.causes[host]
	if cause == "" {
		delete(l.causes, host)
	} else {
		if len(l.causes) >= maxRemembered && last == "" {
			clear(l.causes)
		}
		l.causes[host] = cause
	}
	l.mu.Unlock()
	switch {
	case cause == last:
	case cause != "":
		l.log.Warn("cannot connect to Cassandra: "+describe(cause, l.user, l.tlsOn), "node", host, "cause", cause, "error", err.Error())
	default:
		l.log.Info("connected to Cassandra again", "node", host, "after", last)
	}
}

// gocqlLogger sends the driver's log lines to slog. While a node is away
// the driver logs the same few errors every second or two; a line with an
// error is written at most once a minute, the next one counting those
// left out. Lines without an error (a node up or down, added or removed)
// are state changes, and always written.
type gocqlLogger struct {
	log  *slog.Logger
	mu   sync.Mutex
	seen map[string]*repeated
	now  func() time.Time
}

type repeated struct {
	last       time.Time
	suppressed int
}

// repeatEvery is how often one driver line may be written.
const repeatEvery = time.Minute

// maxRemembered bounds the lines and nodes remembered; past it they are
// forgotten.
const maxRemembered = 256

func newGocqlLogger(log *slog.Logger) *gocqlLogger {
	return &gocqlLogger{log: log, seen: map[string]*repeated{}, now: time.Now}
}

func (l *gocqlLogger) Error(msg string, fields ...gocql.LogField) {
	l.write(slog.LevelError, msg, fields)
}

func (l *gocqlLogger) Warning(msg string, fields ...gocql.LogField) {
	l.write(slog.LevelWarn, msg, fields)
}

func (l *gocqlLogger) Info(msg string, fields ...gocql.LogField) {
	l.write(slog.LevelInfo, msg, fields)
}

func (l *gocqlLogger) Debug(msg string, fields ...gocql.LogField) {
	l.write(slog.LevelDebug, msg, fields)
}

func (l *gocqlLogger) write(level slog.Level, msg string, fields []gocql.LogField) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]any, 0, len(fields)+1)
	key, hasErr := msg, false
	for _, f := range fields {
		v := f.Value.String()
		attrs = append(attrs, slog.String(f.Name, v))
		key += "\x00" + f.Name + "=" + v
		hasErr = hasErr || f.Name == "err"
	}
	if hasErr {
		now := l.now()
		l.mu.Lock()
		r := l.seen[key]
		if r != nil && now.Sub(r.last) < repeatEvery {
			r.suppressed++
			l.mu.Unlock()
			return
		}
		if r == nil {
			if len(l.seen) >= maxRemembered {
				clear(l.seen)
			}
			r = &repeated{}
			l.seen[key] = r
		}
		suppressed := r.suppressed
		r.last, r.suppressed = now, 0
		l.mu.Unlock()
		if suppressed > 0 {
			attrs = append(attrs, slog.Int("suppressed", suppressed))
		}
	}
	l.log.Log(context.Background(), level, msg, attrs...)
}
