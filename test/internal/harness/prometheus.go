package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Prometheus is a Prometheus server of a test's own, run from Debian's
// prometheus package, that scrapes the targets it was started with.
type Prometheus struct {
	URL string // http://127.0.0.1:port, its web API
	Dir string // prometheus.yml, data/ (the TSDB) and prometheus.log

	d *daemon
}

// Sample is one series of an instant vector.
type Sample struct {
	Labels map[string]string // __name__ included
	Value  float64
}

// Vector is the answer to an instant query.
type Vector []Sample

// StartPrometheus runs the prometheus server from PATH in dir, scraping
// targets (host:port, path /metrics) every interval, with its web API on a
// free loopback port and its TSDB in dir. It returns when the server is
// ready, or fails with the tail of its log when it is not ready before ctx
// ends.
func StartPrometheus(ctx context.Context, dir string, interval time.Duration, targets ...string) (*Prometheus, error) {
	bin, err := lookPath("prometheus", "prometheus")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// The scrape timeout defaults to 10 s, and Prometheus refuses one longer
	// than the interval.
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = strconv.Quote(t)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
scrape_configs:
  - job_name: test
    static_configs:
      - targets: [%[2]s]
`, promDuration(interval), strings.Join(quoted, ", "))
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	d, err := startDaemon("prometheus", dir, filepath.Join(dir, "prometheus.log"), bin,
		"--config.file="+configPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
	)
	if err != nil {
		return nil, err
	}
	p := &Prometheus{URL: "http://" + addr, Dir: dir, d: d}
	if err := d.waitHTTP(ctx, "ready", func(ctx context.Context) error {
		return getStatus(ctx, p.URL+"/-/ready", http.StatusOK)
	}); err != nil {
		_ = d.stop(5 * time.Second)
		return nil, d.failed(err)
	}
	return p, nil
}

// promDuration writes d as a Prometheus duration, which takes no
// fractions: 1.5s is 1500ms.
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(max(1, d.Milliseconds()), 10) + "ms"
}

// Query runs an instant query of expr at the present time.
func (p *Prometheus) Query(ctx context.Context, expr string) (Vector, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"` // [unix seconds, "value"]
		} `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: a %s, want a vector", expr, data.ResultType)
	}
	v := make(Vector, 0, len(data.Result))
	for _, r := range data.Result {
		s, ok := r.Value[1].(string)
		if !ok {
			return nil, fmt.Errorf("query %s: value %v is not a string", expr, r.Value[1])
		}
		// ParseFloat reads Prometheus's NaN, +Inf and -Inf too.
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		v = append(v, Sample{Labels: r.Metric, Value: f})
	}
	return v, nil
}

// WaitScraped polls the server's targets until target (host:port, as
// given to StartPrometheus) has been scraped and is up, or ctx ends; then
// the error carries the target's last scrape error. Prometheus hands its
// targets to the scrapers about 5 s after it starts (its discovery
// manager's update period), so give ctx more than that.
func (p *Prometheus) WaitScraped(ctx context.Context, target string) error {
	last := "not among the active targets"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"` // unknown until the first scrape, then up or down
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		// An error of ctx's end would hide what the target said last.
		if err := p.get(ctx, "/api/v1/targets?state=active", &data); err != nil && ctx.Err() == nil {
			last = err.Error()
		}
		for _, t := range data.ActiveTargets {
			if t.Labels["instance"] != target {
				continue
			}
			if t.Health == "up" {
				return nil
			}
			last = "health " + t.Health
			if t.LastError != "" {
				last += ", last error: " + t.LastError
			}
		}
		select {
		case <-p.d.exited:
			return p.d.failed(fmt.Errorf("prometheus exited while waiting for %s: %v", target, p.d.err))
		case <-ctx.Done():
			return fmt.Errorf("target %s was not scraped: %w; %s", target, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// get reads the data of a successful API answer into data.
func (p *Prometheus) get(ctx context.Context, path string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	var answer struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("%s: %s: %.200s", path, resp.Status, body)
	}
	if answer.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, answer.Error)
	}
	return json.Unmarshal(answer.Data, data)
}

// Stop stops the server: SIGTERM, on which it closes its TSDB.
func (p *Prometheus) Stop() error { return p.d.stop(30 * time.Second) }

// LogTail returns the last n lines of the server's log.
func (p *Prometheus) LogTail(n int) string { return p.d.logTail(n) }

// Promtool runs promtool from PATH with args, such as ("check", "config",
// path), and returns what it printed.
func Promtool(ctx context.Context, args ...string) (string, error) {
	return PromtoolInput(ctx, "", args...)
}

// PromtoolInput is Promtool with input on promtool's standard input, which
// is where ("check", "metrics") reads an exposition from.
func PromtoolInput(ctx context.Context, input string, args ...string) (string, error) {
	bin, err := lookPath("promtool", "prometheus")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("promtool %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
