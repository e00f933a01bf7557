package manifests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// findPromtool finds promtool through lookPath (exec.LookPath). The tests
// never skip: without promtool they fail, saying how to install it.
func findPromtool(lookPath func(string) (string, error)) (string, error) {
	path, err := lookPath("promtool")
	if err != nil {
		return "", fmt.Errorf("promtool not found (%v): it checks and unit-tests the alerts of %s; install Debian's prometheus package: apt-get install prometheus", err, filePrometheusRule)
	}
	return path, nil
}

// writePromtoolFiles writes what promtool reads into dir: the
// PrometheusRule's spec.groups as a plain rule file, under the name that
// the unit test file's rule_files gives, and the unit test file beside it.
// It returns the two files' paths.
func writePromtoolFiles(b *bundle, dir string) (rules, tests string, err error) {
	if len(b.alertTests.RuleFiles) != 1 {
		return "", "", fmt.Errorf("%s: rule_files: got %v, want one file", fileAlertTests, b.alertTests.RuleFiles)
	}
	data, err := yaml.Marshal(struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}{b.prometheusRule.Spec.Groups})
	if err != nil {
		return "", "", err
	}
	rules = filepath.Join(dir, filepath.Base(b.alertTests.RuleFiles[0]))
	if err := os.WriteFile(rules, data, 0o644); err != nil {
		return "", "", err
	}
	text, err := os.ReadFile(filepath.Join(b.root, fileAlertTests))
	if err != nil {
		return "", "", err
	}
	tests = filepath.Join(dir, filepath.Base(fileAlertTests))
	if err := os.WriteFile(tests, text, 0o644); err != nil {
		return "", "", err
	}
	return rules, tests, nil
}

// runPromtool runs promtool with args in dir and returns an error with
// its output when it fails.
func runPromtool(ctx context.Context, bin, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// checkWithPromtool runs `promtool check rules` on the PrometheusRule's
// groups and `promtool test rules` on the unit tests of
// knative/monitoring/alerts.test.yaml.
func checkWithPromtool(ctx context.Context, bin string, b *bundle, dir string) error {
	rules, tests, err := writePromtoolFiles(b, dir)
	if err != nil {
		return err
	}
	var errs []error
	if _, err := runPromtool(ctx, bin, dir, "check", "rules", rules); err != nil {
		errs = append(errs, fmt.Errorf("%s: spec.groups: %w", filePrometheusRule, err))
	}
	if _, err := runPromtool(ctx, bin, dir, "test", "rules", tests); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", fileAlertTests, err))
	}
	return errors.Join(errs...)
}

// TestPromtool checks the alerting rules with Prometheus's own promtool
// and runs their unit tests; then that a broken rule fails them.
func TestPromtool(t *testing.T) {
	t.Parallel()
	bin, err := findPromtool(exec.LookPath)
	if err != nil {
		t.Fatal(err)
	}
	b := load(t)
	if err := checkWithPromtool(t.Context(), bin, b, t.TempDir()); err != nil {
		t.Fatalf("got errors, want none:\n%v", err)
	}

	tests := []struct {
		name    string
		corrupt func(t *testing.T, b *bundle)
		want    []string
	}{
		{"threshold the tests do not expect", func(t *testing.T, b *bundle) {
			editAlertExpr(t, b, "TrackerEventsNotStored", "> 0.01", "> 0.5")
		}, []string{fileAlertTests, "promtool test rules", "TrackerEventsNotStored"}},
		{"alert that fires on no traffic", func(t *testing.T, b *bundle) {
			alertRule(t, b, "TrackerServerErrors").Expr = intstr.FromString(`sum by (namespace) (rate(tracker_http_requests_total{code=~"5.."}[5m])) >= 0`)
		}, []string{fileAlertTests, "TrackerServerErrors", "pods without traffic"}},
		{"annotation template that does not parse", func(t *testing.T, b *bundle) {
			alertRule(t, b, "TrackerNotReady").Annotations["summary"] = "pod {{ $labels.pod "
		}, []string{filePrometheusRule, "promtool check rules", "TrackerNotReady"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := load(t)
			tt.corrupt(t, b)
			err := checkWithPromtool(t.Context(), bin, b, t.TempDir())
			if err == nil {
				t.Fatalf("got no error, want one naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}

	t.Run("promtool missing", func(t *testing.T) {
		t.Parallel()
		_, err := findPromtool(func(string) (string, error) { return "", exec.ErrNotFound })
		if err == nil || !strings.Contains(err.Error(), "apt-get install prometheus") {
			t.Errorf("got %v, want an error that says to install Debian's prometheus package", err)
		}
	})
}
