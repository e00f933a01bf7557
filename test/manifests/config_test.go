package manifests

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tracker/function"
)

// TestDecodeConfigMatchesTheFunction pins decodeConfig, which the checks
// use to read the Service's configuration without touching the process
// environment, to the function's own LoadConfig: both must read the
// Service's resolved environment (and the defaults of what it leaves out)
// into the same Config. Not parallel: it sets the process environment.
func TestDecodeConfigMatchesTheFunction(t *testing.T) {
	b := load(t)
	env := resolvedEnv(b)
	for _, name := range function.EnvNames() {
		if v, ok := env[name]; ok {
			t.Setenv(name, v)
		} else {
			t.Setenv(name, "") // restores the variable afterwards
			os.Unsetenv(name)
		}
	}
	want, ignored, err := function.LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if len(ignored) > 0 {
		t.Errorf("LoadConfig ignored %v, want every value used", ignored)
	}
	got, err := decodeConfig(env)
	if err != nil {
		t.Fatalf("decodeConfig: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decodeConfig differs from LoadConfig (-LoadConfig +decodeConfig):\n%s", diff)
	}
}
