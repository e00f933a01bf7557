package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"tracker/function/telemetry"
)

// metricsPath is where the function serves its metrics
// (function/telemetry).
const metricsPath = "/metrics"

// podMonitorError reports a problem of knative/monitoring/podmonitor.yaml.
func podMonitorError(b *bundle, field, format string, args ...any) error {
	return fieldError(filePodMonitor, "PodMonitor", b.podMonitor.Name, field, format, args...)
}

// metricsPort is the port of METRICS_ADDRESS in the Service's effective
// configuration, where the function serves /metrics.
func metricsPort(b *bundle) (int32, error) {
	cfg, err := effectiveConfig(b)
	if err != nil {
		return 0, err
	}
	if !slices.Contains(cfg.OTelMetricsExporter, "prometheus") {
		return 0, fmt.Errorf("OTEL_METRICS_EXPORTER is %q: without prometheus the function serves no /metrics", strings.Join(cfg.OTelMetricsExporter, ","))
	}
	if cfg.MetricsAddress == "" {
		return 0, errors.New("METRICS_ADDRESS is empty: the function serves no /metrics")
	}
	return listenPort(cfg.MetricsAddress)
}

// prometheusRelabelConfigs turns the Operator's relabelings into
// Prometheus's, as the Operator writes them into the scrape
// configuration: Prometheus's defaults for what is unset, the action in
// lower case.
func prometheusRelabelConfigs(in []monitoringv1.RelabelConfig) ([]*relabel.Config, error) {
	var out []*relabel.Config
	for i, r := range in {
		c := relabel.DefaultRelabelConfig
		for _, l := range r.SourceLabels {
			c.SourceLabels = append(c.SourceLabels, model.LabelName(l))
		}
		if r.Separator != nil {
			c.Separator = *r.Separator
		}
		if r.Regex != "" {
			re, err := relabel.NewRegexp(r.Regex)
			if err != nil {
				return nil, fmt.Errorf("relabelings[%d].regex: %v", i, err)
			}
			c.Regex = re
		}
		c.Modulus = r.Modulus
		c.TargetLabel = r.TargetLabel
		if r.Replacement != nil {
			c.Replacement = *r.Replacement
		}
		if r.Action != "" {
			c.Action = relabel.Action(strings.ToLower(r.Action))
		}
		if err := c.Validate(model.UTF8Validation); err != nil {
			return nil, fmt.Errorf("relabelings[%d]: %v", i, err)
		}
		out = append(out, &c)
	}
	return out, nil
}

// metaLabel is the name Prometheus's Kubernetes discovery gives a pod
// label: __meta_kubernetes_pod_label_ and the label with every character
// other than a letter, a digit or _ made _.
func metaLabel(podLabel string) string {
	return "__meta_kubernetes_pod_label_" + regexp.MustCompile(`[^a-zA-Z0-9_]`).ReplaceAllString(podLabel, "_")
}

// checkScrape checks the PodMonitor: it selects the pods of the Knative
// Service's revisions, takes the one target of the user container's port
// (which Knative names user-port), and its relabelings rewrite that
// target's address, IPv4 or IPv6, to the port of METRICS_ADDRESS, which
// must not be the public serving port; it scrapes /metrics, and keeps the
// revision as a label.
func checkScrape(b *bundle) error {
	pm := b.podMonitor
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, podMonitorError(b, field, format, args...))
	}
	podLabels := map[string]string{serving.ServiceLabelKey: b.service.Name}
	for k, v := range b.service.Spec.Template.Labels {
		podLabels[k] = v
	}
	sel := pm.Spec.Selector
	if sel.MatchLabels[serving.ServiceLabelKey] != b.service.Name {
		bad("spec.selector.matchLabels["+serving.ServiceLabelKey+"]", "got %q, want %q: Knative puts it on every pod of the Service's revisions", sel.MatchLabels[serving.ServiceLabelKey], b.service.Name)
	}
	for k, v := range sel.MatchLabels {
		if podLabels[k] != v {
			bad("spec.selector.matchLabels["+k+"]", "got %q, but the Service's pods have %q", v, podLabels[k])
		}
	}
	if len(sel.MatchExpressions) > 0 {
		bad("spec.selector.matchExpressions", "set; want matchLabels only, which this check can follow")
	}
	if ns := pm.Spec.NamespaceSelector; ns.Any || len(ns.MatchNames) > 0 {
		bad("spec.namespaceSelector", "set; want the PodMonitor's own namespace, where kustomize puts the Service")
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		bad("spec.podMetricsEndpoints", "got %d endpoints, want 1", len(pm.Spec.PodMetricsEndpoints))
		return errors.Join(errs...)
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	const at = "spec.podMetricsEndpoints[0]"
	if ep.Port == nil || *ep.Port != servingv1.UserPortName || ep.PortNumber != nil || ep.TargetPort != nil {
		bad(at+".port", "got port %s, portNumber %s, want port %q only: Knative renames the container's one declared port to it, and the queue-proxy's ports must not be scraped", ptrString(ep.Port), ptrString(ep.PortNumber), servingv1.UserPortName)
	}
	if ep.Path != metricsPath {
		bad(at+".path", "got %q, want %q, where the function serves its metrics", ep.Path, metricsPath)
	}
	if ep.Scheme != nil && strings.ToLower(string(*ep.Scheme)) != "http" {
		bad(at+".scheme", "got %q, want http: the metrics listener has no TLS", *ep.Scheme)
	}
	if _, err := scrapeInterval(b); err != nil {
		bad(at+".interval", "%v", err)
	}

	port, err := metricsPort(b)
	if err != nil {
		bad(at+".relabelings", "cannot tell the metrics port: %s: %v", fileService, err)
		return errors.Join(errs...)
	}
	if slices.Contains(containerPorts(b.service), port) {
		bad(at+".relabelings", "METRICS_ADDRESS has port %d, the serving port: the Knative route would make /metrics public", port)
	}
	cfgs, err := prometheusRelabelConfigs(ep.RelabelConfigs)
	if err != nil {
		bad(at+".relabelings", "%v", err)
		return errors.Join(errs...)
	}
	servingPort := int32(8080)
	if p := containerPorts(b.service); len(p) == 1 {
		servingPort = p[0]
	}
	const revision = "tracker-00042"
	for i, ip := range []string{"10.244.1.7", "fd00:10:244::7"} {
		// The target Prometheus's pod discovery makes for the user port.
		lb := labels.NewBuilder(labels.FromStrings(
			model.AddressLabel, net.JoinHostPort(ip, strconv.Itoa(int(servingPort))),
			model.MetricsPathLabel, metricsPath,
			"__meta_kubernetes_pod_ip", ip,
			"__meta_kubernetes_pod_container_port_name", servingv1.UserPortName,
			"__meta_kubernetes_pod_container_port_number", strconv.Itoa(int(servingPort)),
			metaLabel(serving.RevisionLabelKey), revision,
			metaLabel(serving.ServiceLabelKey), b.service.Name,
		))
		if !relabel.ProcessBuilder(lb, cfgs...) {
			bad(at+".relabelings", "drop the target %s", net.JoinHostPort(ip, strconv.Itoa(int(servingPort))))
			continue
		}
		got := lb.Labels()
		want := net.JoinHostPort(ip, strconv.Itoa(int(port)))
		if a := got.Get(model.AddressLabel); a != want {
			bad(at+".relabelings", "turn the target %s into %q; want %q, on the port of METRICS_ADDRESS (%d), where the function serves /metrics", net.JoinHostPort(ip, strconv.Itoa(int(servingPort))), a, want, port)
		}
		if r := got.Get("revision"); r != revision && i == 0 {
			bad(at+".relabelings", "set the label revision to %q, want the pod's %s label %q", r, serving.RevisionLabelKey, revision)
		}
	}
	return errors.Join(errs...)
}

// scrapeInterval is the PodMonitor's scrape interval.
func scrapeInterval(b *bundle) (time.Duration, error) {
	if len(b.podMonitor.Spec.PodMetricsEndpoints) == 0 {
		return 0, errors.New("no endpoint")
	}
	iv := b.podMonitor.Spec.PodMetricsEndpoints[0].Interval
	if iv == "" {
		return 0, errors.New("missing; want it explicit, as the rules' rate windows depend on it")
	}
	d, err := model.ParseDuration(string(iv))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("got %q, want a duration", iv)
	}
	return time.Duration(d), nil
}

// requiredAlerts are the alerts the tracker must have, each with metrics
// its expression must read.
var requiredAlerts = map[string][]string{
	// Valid events not stored: stored / (stored + failed) below 0.99.
	"TrackerEventsNotStored": {"tracker_events_stored_total", "tracker_events_failed_total"},
	// Rejections (4xx), kept apart from the events not stored.
	"TrackerEventsRejected": {"tracker_events_rejected_total", "tracker_events_received_total"},
	// The share of 5xx answers.
	"TrackerServerErrors": {"tracker_http_requests_total"},
	// p99 of POST /track.
	"TrackerTrackLatencyHigh": {"tracker_http_request_duration_seconds_bucket"},
	// No Cassandra node up, or events failing for Cassandra.
	"TrackerCassandraUnavailable": {"tracker_cassandra_hosts_up", "tracker_events_failed_total"},
	// A pod's store not ready.
	"TrackerNotReady": {"tracker_store_ready"},
	// Events turned away as overloaded.
	"TrackerEventsOverloaded": {"tracker_events_failed_total"},
}

// severities are the values of an alert's severity label.
var severities = []string{"critical", "warning", "info"}

// absenceFunctions fire on missing series, which a Service scaled to
// zero always has.
var absenceFunctions = []string{"absent", "absent_over_time"}

// ruleError reports a problem of the PrometheusRule.
func ruleError(b *bundle, field, format string, args ...any) error {
	return fieldError(filePrometheusRule, "PrometheusRule", b.prometheusRule.Name, field, format, args...)
}

// alertRules lists the PrometheusRule's alerting rules by name, with
// where each is.
func alertRules(b *bundle) map[string]string {
	out := map[string]string{}
	for gi, g := range b.prometheusRule.Spec.Groups {
		for ri, r := range g.Rules {
			if r.Alert != "" {
				out[r.Alert] = fmt.Sprintf("spec.groups[%d].rules[%d]", gi, ri)
			}
		}
	}
	return out
}

// checkRules checks the PrometheusRule: the alerts the tracker needs are
// there and read the metrics they are about; every alert has a severity,
// a summary, a description and a for: duration; every expression parses
// and names only metrics and labels the function exports; none fires on
// absent series (scale-to-zero); and every rate window holds at least
// four scrapes.
func checkRules(b *bundle) error {
	var errs []error
	exported, err := exportedMetrics()
	if err != nil {
		return err
	}
	scrape := scrapeLabels(b)
	interval, ierr := scrapeInterval(b)
	// Recording rules make series of their own.
	for _, g := range b.prometheusRule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				exported[r.Record] = exportedMetric{family: r.Record, anyLabels: true}
			}
		}
	}
	if len(b.prometheusRule.Spec.Groups) == 0 {
		errs = append(errs, ruleError(b, "spec.groups", "empty"))
	}
	read := map[string][]string{} // metrics by alert
	for gi, g := range b.prometheusRule.Spec.Groups {
		for ri, r := range g.Rules {
			at := fmt.Sprintf("spec.groups[%d].rules[%d]", gi, ri)
			if r.Alert != "" {
				at = fmt.Sprintf("spec.groups[%d].rules[%s]", gi, r.Alert)
			}
			bad := func(field, format string, args ...any) {
				errs = append(errs, ruleError(b, at+field, format, args...))
			}
			facts, err := checkQuery(r.Expr.String(), exported, scrape)
			if err != nil {
				bad(".expr", "%v", err)
			}
			for _, f := range facts.functions {
				if slices.Contains(absenceFunctions, f) {
					bad(".expr", "calls %s(): with scale-to-zero no series is the normal state, and alerts must not fire on absence", f)
				}
			}
			if ierr == nil {
				for _, d := range facts.ranges {
					if d < 4*interval {
						bad(".expr", "a range of %s: want at least 4 scrape intervals (%s), or a rate misses samples", model.Duration(d), model.Duration(4*interval))
					}
				}
			}
			if r.Alert == "" {
				continue
			}
			read[r.Alert] = facts.metrics
			if !slices.Contains(severities, r.Labels["severity"]) {
				bad(".labels.severity", "got %q, want one of %v", r.Labels["severity"], severities)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					bad(".annotations."+a, "missing")
				}
			}
			if r.For == nil {
				bad(".for", "missing; want how long the condition must hold, explained in a comment")
			} else if d, err := model.ParseDuration(string(*r.For)); err != nil || d <= 0 {
				bad(".for", "got %q, want a positive duration", *r.For)
			}
		}
	}
	have := alertRules(b)
	for _, name := range slices.Sorted(maps.Keys(requiredAlerts)) {
		if _, ok := have[name]; !ok {
			errs = append(errs, ruleError(b, "spec.groups", "no alert %s; want it, reading %v", name, requiredAlerts[name]))
			continue
		}
		for _, m := range requiredAlerts[name] {
			if !slices.Contains(read[name], m) {
				errs = append(errs, ruleError(b, have[name]+".expr", "alert %s does not read %s", name, m))
			}
		}
	}
	return errors.Join(errs...)
}

// grafanaDashboard is the part of a Grafana dashboard's JSON model that
// the checks read; Grafana's model has many more fields, which are left
// alone.
type grafanaDashboard struct {
	Title      string         `json:"title"`
	UID        string         `json:"uid"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
}

// grafanaPanel is a panel, or a row that may hold panels.
type grafanaPanel struct {
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource,omitempty"`
	Targets    []grafanaTarget `json:"targets,omitempty"`
	Panels     []grafanaPanel  `json:"panels,omitempty"`
}

// grafanaTarget is one query of a panel.
type grafanaTarget struct {
	RefID      string          `json:"refId"`
	Expr       string          `json:"expr"`
	Datasource json.RawMessage `json:"datasource,omitempty"`
}

// grafanaVariable is one template variable.
type grafanaVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query,omitempty"`
	Datasource json.RawMessage `json:"datasource,omitempty"`
}

// parseDashboard decodes a dashboard's JSON.
func parseDashboard(file string, data []byte) (*grafanaDashboard, error) {
	d := new(grafanaDashboard)
	if err := json.Unmarshal(data, d); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return d, nil
}

// allPanels lists the dashboard's panels, those inside rows too, with
// their place.
func allPanels(panels []grafanaPanel, at string) (out []grafanaPanel, where []string) {
	for i, p := range panels {
		here := fmt.Sprintf("%s[%d]", at, i)
		out = append(out, p)
		where = append(where, here)
		inner, innerWhere := allPanels(p.Panels, here+".panels")
		out = append(out, inner...)
		where = append(where, innerWhere...)
	}
	return out, where
}

// grafanaBuiltins are Grafana's own variables, each with what the checks
// put in its place before parsing.
var grafanaBuiltins = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "30s",
	"__range":         "1h",
	"__range_s":       "3600",
	"__range_ms":      "3600000",
}

// grafanaVariableRef matches $name, ${name} and ${name:format}.
var grafanaVariableRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// substituteVariables replaces the dashboard's variables in a query:
// Grafana's time variables by durations, the dashboard's own by a value.
// It returns the variables that are neither.
func substituteVariables(expr string, defined []string) (string, []string) {
	var unknown []string
	out := grafanaVariableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := grafanaVariableRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		if v, ok := grafanaBuiltins[name]; ok {
			return v
		}
		if slices.Contains(defined, name) {
			return "value"
		}
		unknown = append(unknown, ref)
		return ref
	})
	return out, unknown
}

// labelValuesQuery matches Grafana's label_values(selector, label).
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\((.*),\s*(\w+)\s*\)\s*$`)

// checkDatasource checks that a datasource reference uses the dashboard's
// datasource variable: a uid of its own would not exist in another
// Grafana.
func checkDatasource(raw json.RawMessage, variable string) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	ref := []string{"$" + variable, "${" + variable + "}"}
	var name string
	if json.Unmarshal(raw, &name) == nil {
		if !slices.Contains(ref, name) {
			return fmt.Errorf("got datasource %q, want %q", name, ref[1])
		}
		return nil
	}
	var ds struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	if err := json.Unmarshal(raw, &ds); err != nil {
		return fmt.Errorf("datasource %s: %v", raw, err)
	}
	if !slices.Contains(ref, ds.UID) {
		return fmt.Errorf("got datasource uid %q, want %q, the datasource variable", ds.UID, ref[1])
	}
	if ds.Type != "" && ds.Type != "prometheus" {
		return fmt.Errorf("got datasource type %q, want prometheus", ds.Type)
	}
	return nil
}

// checkDashboard checks the Grafana dashboard: a datasource variable of
// type prometheus that every panel, query and variable uses; every query,
// once its variables are substituted, parses and names only metrics and
// labels the function exports; every variable a query uses is defined;
// and every tracker_ metric of telemetry.Exposed is shown somewhere.
func checkDashboard(b *bundle) error {
	d := b.dashboard
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldError(fileDashboard, "dashboard", d.Title, field, format, args...))
	}
	if d.Title == "" || d.UID == "" {
		bad("title, uid", "got %q and %q, want both set (the uid keeps links stable across imports)", d.Title, d.UID)
	}
	exported, err := exportedMetrics()
	if err != nil {
		return err
	}
	scrape := scrapeLabels(b)
	dsVar := ""
	var defined []string
	for _, v := range d.Templating.List {
		defined = append(defined, v.Name)
		if v.Type == "datasource" {
			var q string
			if json.Unmarshal(v.Query, &q) != nil || q != "prometheus" {
				bad("templating.list["+v.Name+"].query", "got %s, want \"prometheus\"", v.Query)
			}
			dsVar = v.Name
		}
	}
	if dsVar == "" {
		bad("templating.list", "no variable of type datasource; want one, so that the dashboard works with any Prometheus datasource")
		return errors.Join(errs...)
	}
	shown := map[string]bool{}
	query := func(field, expr string) {
		text, unknown := substituteVariables(expr, defined)
		if len(unknown) > 0 {
			bad(field, "uses %v, which is no variable of the dashboard (%v) nor Grafana's", unknown, defined)
			return
		}
		facts, err := checkQuery(text, exported, scrape)
		if err != nil {
			bad(field, "%q: %v", expr, err)
		}
		for _, m := range facts.metrics {
			shown[exported[m].family] = true
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		at := "templating.list[" + v.Name + "]"
		if err := checkDatasource(v.Datasource, dsVar); err != nil {
			bad(at+".datasource", "%v", err)
		}
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) != nil {
			_ = json.Unmarshal(v.Query, &q.Query)
		}
		if m := labelValuesQuery.FindStringSubmatch(q.Query); m != nil {
			query(at+".query", m[1])
		} else {
			query(at+".query", q.Query)
		}
	}
	panels, where := allPanels(d.Panels, "panels")
	for i, p := range panels {
		if p.Type == "row" {
			continue
		}
		at := fmt.Sprintf("%s(%q)", where[i], p.Title)
		if len(p.Targets) == 0 {
			bad(at+".targets", "empty")
		}
		if err := checkDatasource(p.Datasource, dsVar); err != nil {
			bad(at+".datasource", "%v", err)
		}
		for _, t := range p.Targets {
			if err := checkDatasource(t.Datasource, dsVar); err != nil {
				bad(at+".targets["+t.RefID+"].datasource", "%v", err)
			}
			query(at+".targets["+t.RefID+"].expr", t.Expr)
		}
	}
	for _, m := range telemetry.Exposed {
		if !shown[m.Name] {
			bad("panels", "no query reads %s; want every metric of telemetry.Exposed on the dashboard", m.Name)
		}
	}
	return errors.Join(errs...)
}

// promtoolTests is a promtool unit test file (promtool test rules), as
// Prometheus 2.42 reads it.
type promtoolTests struct {
	RuleFiles          []string            `json:"rule_files"`
	EvaluationInterval string              `json:"evaluation_interval,omitempty"`
	GroupEvalOrder     []string            `json:"group_eval_order,omitempty"`
	Tests              []promtoolTestGroup `json:"tests"`
}

// promtoolTestGroup is one test of a promtool unit test file: input
// series and what the alerts and queries give over them.
type promtoolTestGroup struct {
	Name           string              `json:"name,omitempty"`
	Interval       string              `json:"interval,omitempty"`
	InputSeries    []promtoolSeries    `json:"input_series"`
	AlertRuleTests []promtoolAlertTest `json:"alert_rule_test,omitempty"`
	PromQLTests    []json.RawMessage   `json:"promql_expr_test,omitempty"`
	ExternalLabels map[string]string   `json:"external_labels,omitempty"`
	ExternalURL    string              `json:"external_url,omitempty"`
}

// promtoolSeries is one input series.
type promtoolSeries struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

// promtoolAlertTest is what one alert gives at one time.
type promtoolAlertTest struct {
	EvalTime  string             `json:"eval_time"`
	Alertname string             `json:"alertname"`
	ExpAlerts []promtoolExpAlert `json:"exp_alerts"`
}

// promtoolExpAlert is one alert expected to fire.
type promtoolExpAlert struct {
	ExpLabels      map[string]string `json:"exp_labels,omitempty"`
	ExpAnnotations map[string]string `json:"exp_annotations,omitempty"`
}

// checkAlertTests checks that the promtool unit tests cover every alert
// of the PrometheusRule, firing and quiet; that a test with no series at
// all (the Service scaled to zero) expects every alert quiet; that they
// test no alert that does not exist; and that their input series are
// metrics the function exports. promtool itself runs them in
// TestPromtool.
func checkAlertTests(b *bundle) error {
	at := b.alertTests
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", fileAlertTests, field, fmt.Sprintf(format, args...)))
	}
	if len(at.RuleFiles) != 1 {
		bad("rule_files", "got %v, want one file, which TestPromtool writes from %s", at.RuleFiles, filePrometheusRule)
	}
	alerts := alertRules(b)
	exported, err := exportedMetrics()
	if err != nil {
		return err
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	zeroQuiet := false
	for gi, g := range at.Tests {
		gat := fmt.Sprintf("tests[%d](%q)", gi, g.Name)
		for si, s := range g.InputSeries {
			ms, err := promqlParser.ParseMetricSelector(s.Series)
			if err != nil {
				bad(fmt.Sprintf("%s.input_series[%d]", gat, si), "%q: %v", s.Series, err)
				continue
			}
			for _, m := range ms {
				if m.Name == labels.MetricName {
					if _, ok := exported[m.Value]; !ok {
						bad(fmt.Sprintf("%s.input_series[%d]", gat, si), "metric %s: not exported by the function", m.Value)
					}
				}
			}
		}
		quietHere := map[string]bool{}
		for ti, t := range g.AlertRuleTests {
			if _, ok := alerts[t.Alertname]; !ok {
				bad(fmt.Sprintf("%s.alert_rule_test[%d].alertname", gat, ti), "%q is no alert of %s", t.Alertname, filePrometheusRule)
			}
			if len(t.ExpAlerts) > 0 {
				firing[t.Alertname] = true
			} else {
				quiet[t.Alertname] = true
				quietHere[t.Alertname] = true
			}
		}
		if len(g.InputSeries) == 0 && len(quietHere) == len(alerts) && len(alerts) > 0 {
			zeroQuiet = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(alerts)) {
		if !firing[name] {
			bad("tests", "no test where %s fires", name)
		}
		if !quiet[name] {
			bad("tests", "no test where %s stays quiet", name)
		}
	}
	if !zeroQuiet {
		bad("tests", "no test without input series that expects every alert quiet; with scale-to-zero, no series is the normal state")
	}
	return errors.Join(errs...)
}
