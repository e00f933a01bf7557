package harness

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMakeRevision checks what Knative's code makes of knative/service.yaml
// for a function on port 41234: the queue-proxy's settings come from the
// manifest, and its readiness probe points at the function's port.
func TestMakeRevision(t *testing.T) {
	rev, err := MakeRevision(41234)
	if err != nil {
		t.Fatal(err)
	}
	env, err := rev.QueueProxyEnv(45678)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		got[name] = value
	}
	want := map[string]string{
		"CONTAINER_CONCURRENCY":    "16",
		"REVISION_TIMEOUT_SECONDS": "30",
		"QUEUE_SERVING_PORT":       "45678",
		"USER_PORT":                "41234",
		"SERVING_READINESS_PROBE":  `{"httpGet":{"path":"/health/readiness","port":41234,"host":"127.0.0.1","scheme":"HTTP"},"successThreshold":1}`,
		"SERVING_SERVICE":          "tracker",
		"SERVING_POD_IP":           queueProxyPodIP,
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %q, want %q", name, got[name], w)
		}
	}
	if rev.ContainerConcurrency() != 16 || rev.QueueDepth() != 160 {
		t.Errorf("containerConcurrency %d, queue depth %d; want 16 and 160", rev.ContainerConcurrency(), rev.QueueDepth())
	}
	hook, err := rev.preStop()
	if err != nil {
		t.Fatal(err)
	}
	if hook.Path != "/wait-for-drain" || hook.Port.IntValue() != queueAdminPort {
		t.Errorf("preStop hook %s:%s, want /wait-for-drain on %d", hook.Path, hook.Port.String(), queueAdminPort)
	}
	fnEnv, err := rev.FunctionEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range fnEnv {
		if strings.HasPrefix(kv, "LISTEN_ADDRESS=") {
			t.Errorf("FunctionEnv sets %s; the harness chooses the address", kv)
		}
	}
}

// TestQueueToolVersion checks that the queue-proxy the harness builds is
// the Knative Serving release whose reconciler code configures it.
func TestQueueToolVersion(t *testing.T) {
	version := func(gomod string) string {
		b, err := os.ReadFile(filepath.Join(Root(), gomod))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^\s*knative\.dev/serving (v\S+)`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s requires no knative.dev/serving", gomod)
		}
		return string(m[1])
	}
	if diff := cmp.Diff(version("test/go.mod"), version(filepath.Join(queueTool, "go.mod"))); diff != "" {
		t.Errorf("knative.dev/serving in test/go.mod and %s/go.mod differ (-test +queue tool):\n%s", queueTool, diff)
	}
}
