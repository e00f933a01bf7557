package manifests

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"tracker/function/telemetry"
)

// exportedMetric is one series name that the function's /metrics holds,
// with the labels the function sets on it.
type exportedMetric struct {
	family string   // the family in telemetry.Exposed, or the collector's
	labels []string // the function's own labels (le for buckets)
	// values are the only values some labels take (format, reason of
	// failed events), from telemetry.
	values map[string][]string
	// anyLabels: the labels are not known here (the collectors' own,
	// such as go_info's version), so matchers are not checked.
	anyLabels bool
}

// otelMetrics is the name Prometheus adds to every target.
var otelMetrics = []string{"up"}

var (
	runtimeOnce    sync.Once
	runtimeMetrics []string
	runtimeErr     error
)

// runtimeMetricNames are the go_* and process_* series names of the two
// client_golang collectors the function registers (telemetry.go: the Go
// collector and the process collector with default options), gathered
// from the collectors themselves.
func runtimeMetricNames() ([]string, error) {
	runtimeOnce.Do(func() {
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			runtimeErr = err
			return
		}
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			runtimeErr = err
			return
		}
		families, err := reg.Gather()
		if err != nil {
			runtimeErr = err
			return
		}
		for _, f := range families {
			name := f.GetName()
			runtimeMetrics = append(runtimeMetrics, name)
			switch f.GetType().String() {
			case "HISTOGRAM":
				runtimeMetrics = append(runtimeMetrics, name+"_bucket", name+"_sum", name+"_count")
			case "SUMMARY":
				runtimeMetrics = append(runtimeMetrics, name+"_sum", name+"_count")
			}
		}
	})
	return runtimeMetrics, runtimeErr
}

// exportedMetrics maps every series name the function exports to what
// is known of its labels: the tracker_* families of telemetry.Exposed
// (a histogram as _bucket, _sum and _count), the runtime collectors'
// go_* and process_* series, and up.
func exportedMetrics() (map[string]exportedMetric, error) {
	out := map[string]exportedMetric{}
	values := map[string][]string{"format": telemetry.Formats}
	for _, m := range telemetry.Exposed {
		v := values
		if m.Name == "tracker_events_failed_total" {
			v = map[string][]string{"format": telemetry.Formats, "reason": telemetry.FailedReasons}
		}
		switch m.Type {
		case "histogram":
			out[m.Name+"_bucket"] = exportedMetric{family: m.Name, labels: append(slices.Clone(m.Labels), "le"), values: v}
			out[m.Name+"_sum"] = exportedMetric{family: m.Name, labels: m.Labels, values: v}
			out[m.Name+"_count"] = exportedMetric{family: m.Name, labels: m.Labels, values: v}
		case "counter", "gauge":
			out[m.Name] = exportedMetric{family: m.Name, labels: m.Labels, values: v}
		default:
			return nil, fmt.Errorf("telemetry.Exposed: %s has type %q, want counter, gauge or histogram", m.Name, m.Type)
		}
	}
	runtime, err := runtimeMetricNames()
	if err != nil {
		return nil, fmt.Errorf("gathering the runtime collectors: %w", err)
	}
	for _, name := range runtime {
		out[name] = exportedMetric{family: name, anyLabels: true}
	}
	for _, name := range otelMetrics {
		out[name] = exportedMetric{family: name, anyLabels: true}
	}
	return out, nil
}

// scrapeLabels are the labels every scraped series gets besides the
// function's own: Prometheus's job and instance, the Operator's
// namespace, pod, container and endpoint, and the target labels the
// PodMonitor's relabelings write.
func scrapeLabels(b *bundle) []string {
	out := []string{"job", "instance", "namespace", "pod", "container", "endpoint"}
	for _, ep := range b.podMonitor.Spec.PodMetricsEndpoints {
		for _, r := range ep.RelabelConfigs {
			if r.TargetLabel != "" && !strings.HasPrefix(r.TargetLabel, "__") {
				out = append(out, r.TargetLabel)
			}
		}
	}
	return out
}

// queryFacts is what checkQuery learnt of one expression.
type queryFacts struct {
	metrics   []string        // series names, sorted, once each
	functions []string        // functions called
	ranges    []time.Duration // ranges of range selectors and subqueries
}

var promqlParser = parser.NewParser(parser.Options{})

// checkQuery parses a PromQL expression and checks each of its selectors:
// it names a metric by name, one the function exports, with label
// matchers only on labels that metric has (its own, le for buckets, the
// scrape's) and, for labels of a fixed set of values, only those values.
func checkQuery(expr string, exported map[string]exportedMetric, scrape []string) (queryFacts, error) {
	var facts queryFacts
	node, err := promqlParser.ParseExpr(expr)
	if err != nil {
		return facts, fmt.Errorf("does not parse: %v", err)
	}
	var errs []error
	seen := map[string]bool{}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.Call:
			facts.functions = append(facts.functions, n.Func.Name)
		case *parser.MatrixSelector:
			facts.ranges = append(facts.ranges, n.Range)
		case *parser.SubqueryExpr:
			facts.ranges = append(facts.ranges, n.Range)
		case *parser.VectorSelector:
			name := n.Name
			if name == "" {
				errs = append(errs, fmt.Errorf("selector %s: want a metric name, not a selector of any name", n))
				return nil
			}
			m, ok := exported[name]
			if !ok {
				errs = append(errs, fmt.Errorf("metric %s: not exported by the function (telemetry.Exposed, the Go and process collectors, up)", name))
				return nil
			}
			if !seen[name] {
				seen[name] = true
				facts.metrics = append(facts.metrics, name)
			}
			if m.anyLabels {
				return nil
			}
			for _, lm := range n.LabelMatchers {
				if lm.Name == labels.MetricName {
					continue
				}
				if !slices.Contains(m.labels, lm.Name) && !slices.Contains(scrape, lm.Name) {
					errs = append(errs, fmt.Errorf("metric %s: label %q: the metric has no such label; want one of %v or the scrape's %v", name, lm.Name, m.labels, scrape))
					continue
				}
				if allowed, ok := m.values[lm.Name]; ok {
					if bad := matcherValues(lm, allowed); len(bad) > 0 {
						errs = append(errs, fmt.Errorf("metric %s: label %s: %q is not among the values %v", name, lm.Name, bad, allowed))
					}
				}
			}
		}
		return nil
	})
	sort.Strings(facts.metrics)
	return facts, errors.Join(errs...)
}

// literalAlternatives matches a regular expression that is only literal
// alternatives, such as timeout|unavailable.
var literalAlternatives = regexp.MustCompile(`^[a-z0-9_]+(\|[a-z0-9_]+)*$`)

// matcherValues returns the values an equality or literal-alternatives
// matcher names that are not among allowed.
func matcherValues(lm *labels.Matcher, allowed []string) []string {
	var values []string
	switch {
	case lm.Type == labels.MatchEqual || lm.Type == labels.MatchNotEqual:
		values = []string{lm.Value}
	case literalAlternatives.MatchString(lm.Value):
		values = strings.Split(lm.Value, "|")
	}
	var bad []string
	for _, v := range values {
		if !slices.Contains(allowed, v) {
			bad = append(bad, v)
		}
	}
	return bad
}
