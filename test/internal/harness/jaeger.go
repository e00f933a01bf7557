package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Jaeger is a Jaeger v2 of a test's own (test/jaeger's go tool: the
// OpenTelemetry Collector with Jaeger's storage and query extensions) that
// keeps the traces it receives over OTLP/HTTP in memory and answers
// queries for them.
type Jaeger struct {
	OTLPAddr  string // 127.0.0.1:port, the OTLP/HTTP receiver
	QueryAddr string // 127.0.0.1:port, the query service's HTTP API
	Dir       string // jaeger.yaml and jaeger.log

	d *daemon
}

// Span is one span of a trace as Jaeger stored it. Identifiers are
// lower-case hex; attribute values are strings: numbers and booleans as
// OTLP JSON writes them (1.5, true), arrays and maps as compact OTLP JSON.
// A span without attributes has nil Attributes.
type Span struct {
	TraceID       string
	SpanID        string
	ParentSpanID  string // empty for a root span
	Name          string
	Kind          string // unspecified, internal, server, client, producer or consumer
	Service       string // the resource's service.name
	Start         time.Time
	Duration      time.Duration
	Attributes    map[string]string
	StatusCode    string // unset, ok or error
	StatusMessage string
	Events        []SpanEvent
	Links         []SpanLink
}

// SpanEvent is an event of a span, such as the exception of RecordError.
type SpanEvent struct {
	Name       string
	Attributes map[string]string
}

// SpanLink is a span's link to another span, in its trace or in another.
type SpanLink struct {
	TraceID    string
	SpanID     string
	Attributes map[string]string
}

// jaegerTool is the directory of the module whose go.mod names Jaeger as
// a tool, relative to Root; it keeps Jaeger's dependencies out of test/.
const jaegerTool = "test/jaeger"

var jaegerBuild struct {
	sync.Mutex
	path string
}

// jaegerBinary builds Jaeger once per process. go tool -n builds the tool
// and keeps the linked binary in the Go build cache, so a later process
// (or a test package beside this one) finds it there in seconds; only the
// first build on a machine compiles it, which takes minutes.
func jaegerBinary(ctx context.Context) (string, error) {
	jaegerBuild.Lock()
	defer jaegerBuild.Unlock()
	if jaegerBuild.path != "" {
		return jaegerBuild.path, nil
	}
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", "jaeger")
	cmd.Dir = filepath.Join(Root(), jaegerTool)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build jaeger (go tool -n jaeger in %s): %v\n%s", jaegerTool, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	path := strings.TrimSpace(lines[len(lines)-1])
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("build jaeger: go tool -n printed %q: %v", out, err)
	}
	jaegerBuild.path = path
	return path, nil
}

// jaegerConfig is Jaeger's whole configuration. It names every listener,
// so that nothing listens beyond the three loopback ports chosen here:
// without a config file Jaeger runs its all-in-one set, which listens on
// fixed ports (4317, 4318, 5778, 5779, 6831, 6832, 9411, 13133, 14250,
// 14268, 16685, 16686, 8888 and more). Its own metrics (level none) and
// the query service's tracing of itself are off; there is no batch
// processor, so a span is queryable as soon as the receiver has answered.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: %[1]s
    # The query service always serves gRPC too; it gets a port of its own.
    grpc:
      endpoint: %[2]s
receivers:
  otlp:
    protocols:
      http:
        endpoint: %[3]s
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// StartJaeger builds Jaeger (once per process, from the Go build cache
// after the first time on a machine) and starts it in dir, with its
// OTLP/HTTP receiver and query API on free loopback ports. It returns when
// both answer, or fails with the tail of Jaeger's log when they do not
// before ctx ends. Give ctx room for a first build: it takes minutes.
func StartJaeger(ctx context.Context, dir string) (*Jaeger, error) {
	bin, err := jaegerBinary(ctx)
	if err != nil {
		return nil, err
	}
	var addrs [3]string
	for i := range addrs {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		addrs[i] = "127.0.0.1:" + strconv.Itoa(port)
	}
	configPath := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(configPath, fmt.Appendf(nil, jaegerConfig, addrs[0], addrs[1], addrs[2]), 0o644); err != nil {
		return nil, err
	}
	d, err := startDaemon("jaeger", dir, filepath.Join(dir, "jaeger.log"), bin, "--config="+configPath)
	if err != nil {
		return nil, err
	}
	j := &Jaeger{QueryAddr: addrs[0], OTLPAddr: addrs[2], Dir: dir, d: d}
	if err := d.waitHTTP(ctx, "query API and OTLP receiver answering", func(ctx context.Context) error {
		if err := getStatus(ctx, "http://"+j.QueryAddr+"/api/v3/services", http.StatusOK); err != nil {
			return err
		}
		// The receiver takes only POST; a 405 to a GET shows it serves.
		return getStatus(ctx, j.OTLPEndpoint()+"/v1/traces", http.StatusMethodNotAllowed)
	}); err != nil {
		_ = d.stop(5 * time.Second)
		return nil, d.failed(err)
	}
	return j, nil
}

// OTLPEndpoint is the receiver's base URL, http://127.0.0.1:port, as
// OTEL_EXPORTER_OTLP_ENDPOINT takes it: the exporter appends /v1/traces.
func (j *Jaeger) OTLPEndpoint() string { return "http://" + j.OTLPAddr }

// Trace reads the trace with traceID (32 hex digits) from the query API:
// every span Jaeger has of it, as it was received (raw, without the query
// service's clock-skew and deduplication adjustments). It returns nil and
// no error while Jaeger has no span of the trace; spans arrive as the
// sender's batches do, so a test polls, as WaitTrace does.
//
// It reads API v3, which answers OTLP JSON: the v1 API (/api/traces/{id})
// turns links into FOLLOWS_FROM references and drops their attributes.
func (j *Jaeger) Trace(ctx context.Context, traceID string) ([]Span, error) {
	url := "http://" + j.QueryAddr + "/api/v3/traces/" + traceID + "?raw_traces=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("trace %s: %s: %.300s", traceID, resp.Status, body)
	}
	var answer struct {
		Result otlpTraces `json:"result"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("trace %s: %w", traceID, err)
	}
	return answer.Result.spans()
}

// WaitTrace polls Trace until it has at least n spans, and returns them;
// when ctx ends first, the error says how many there were.
func (j *Jaeger) WaitTrace(ctx context.Context, traceID string, n int) ([]Span, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		spans, err := j.Trace(ctx, traceID)
		if err == nil && len(spans) >= n {
			return spans, nil
		}
		select {
		case <-j.d.exited:
			return nil, j.d.failed(fmt.Errorf("jaeger exited while waiting for trace %s: %v", traceID, j.d.err))
		case <-ctx.Done():
			if err != nil {
				return spans, fmt.Errorf("trace %s: %w; last error: %v", traceID, ctx.Err(), err)
			}
			return spans, fmt.Errorf("trace %s has %d spans, want %d or more: %w", traceID, len(spans), n, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop stops Jaeger; the traces it kept are gone with it.
func (j *Jaeger) Stop() error { return j.d.stop(10 * time.Second) }

// LogTail returns the last n lines of Jaeger's log.
func (j *Jaeger) LogTail(n int) string { return j.d.logTail(n) }

// otlpTraces is the part of OTLP JSON (TracesData) that Span carries.
// Integers of 64 bits are strings in it, enums numbers.
type otlpTraces struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []otlpKeyValue `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []struct {
				TraceID      string         `json:"traceId"`
				SpanID       string         `json:"spanId"`
				ParentSpanID string         `json:"parentSpanId"`
				Name         string         `json:"name"`
				Kind         int            `json:"kind"`
				Start        string         `json:"startTimeUnixNano"`
				End          string         `json:"endTimeUnixNano"`
				Attributes   []otlpKeyValue `json:"attributes"`
				Events       []struct {
					Name       string         `json:"name"`
					Attributes []otlpKeyValue `json:"attributes"`
				} `json:"events"`
				Links []struct {
					TraceID    string         `json:"traceId"`
					SpanID     string         `json:"spanId"`
					Attributes []otlpKeyValue `json:"attributes"`
				} `json:"links"`
				Status struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"status"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpKeyValue struct {
	Key   string                     `json:"key"`
	Value map[string]json.RawMessage `json:"value"` // one of stringValue, intValue, ...
}

// OTLP's SpanKind and StatusCode, by number.
var (
	spanKinds   = []string{"unspecified", "internal", "server", "client", "producer", "consumer"}
	statusCodes = []string{"unset", "ok", "error"}
)

func (t otlpTraces) spans() ([]Span, error) {
	var spans []Span
	for _, rs := range t.ResourceSpans {
		resource, err := attributes(rs.Resource.Attributes)
		if err != nil {
			return nil, err
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				start, err := unixNano(s.Start)
				if err != nil {
					return nil, fmt.Errorf("span %s: start: %w", s.SpanID, err)
				}
				end, err := unixNano(s.End)
				if err != nil {
					return nil, fmt.Errorf("span %s: end: %w", s.SpanID, err)
				}
				if s.Kind < 0 || s.Kind >= len(spanKinds) || s.Status.Code < 0 || s.Status.Code >= len(statusCodes) {
					return nil, fmt.Errorf("span %s: kind %d or status code %d unknown", s.SpanID, s.Kind, s.Status.Code)
				}
				span := Span{
					TraceID:       s.TraceID,
					SpanID:        s.SpanID,
					ParentSpanID:  s.ParentSpanID,
					Name:          s.Name,
					Kind:          spanKinds[s.Kind],
					Service:       resource["service.name"],
					Start:         start,
					Duration:      end.Sub(start),
					StatusCode:    statusCodes[s.Status.Code],
					StatusMessage: s.Status.Message,
				}
				if span.Attributes, err = attributes(s.Attributes); err != nil {
					return nil, fmt.Errorf("span %s: %w", s.SpanID, err)
				}
				for _, e := range s.Events {
					a, err := attributes(e.Attributes)
					if err != nil {
						return nil, fmt.Errorf("span %s: event %s: %w", s.SpanID, e.Name, err)
					}
					span.Events = append(span.Events, SpanEvent{Name: e.Name, Attributes: a})
				}
				for _, l := range s.Links {
					a, err := attributes(l.Attributes)
					if err != nil {
						return nil, fmt.Errorf("span %s: link: %w", s.SpanID, err)
					}
					span.Links = append(span.Links, SpanLink{TraceID: l.TraceID, SpanID: l.SpanID, Attributes: a})
				}
				spans = append(spans, span)
			}
		}
	}
	return spans, nil
}

func unixNano(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, n), nil
}

// attributes flattens OTLP key-values into strings.
func attributes(kvs []otlpKeyValue) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		var (
			s   string
			err error
		)
		switch {
		case kv.Value["stringValue"] != nil:
			err = json.Unmarshal(kv.Value["stringValue"], &s)
		case kv.Value["intValue"] != nil:
			// A string in OTLP JSON, a number from some encoders.
			s = strings.Trim(string(kv.Value["intValue"]), `"`)
		case kv.Value["boolValue"] != nil:
			s = string(kv.Value["boolValue"])
		case kv.Value["doubleValue"] != nil:
			// NaN and the infinities are strings.
			s = strings.Trim(string(kv.Value["doubleValue"]), `"`)
		case len(kv.Value) == 0:
			// An empty value.
		default:
			var b []byte
			b, err = json.Marshal(kv.Value)
			s = string(b)
		}
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", kv.Key, err)
		}
		m[kv.Key] = s
	}
	return m, nil
}
