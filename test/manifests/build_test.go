package manifests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerfileBuildsTheFunction runs the Dockerfile's own `go build`
// line from the repository root and checks that the binary is the function
// in func-go's runtime; a Dockerfile that points at a wrong package fails.
func TestDockerfileBuildsTheFunction(t *testing.T) {
	t.Parallel()
	b := load(t)
	ctx := t.Context()
	bin, err := buildFromDockerfile(ctx, b.root, b.dockerfile, t.TempDir())
	if err != nil {
		t.Fatalf("got error, want the Dockerfile's go build to succeed:\n%v", err)
	}
	if err := checkBinary(ctx, bin, b.goMod); err != nil {
		t.Errorf("got errors, want none:\n%v", err)
	}

	t.Run("wrong package fails the build", func(t *testing.T) {
		t.Parallel()
		b := load(t)
		editDockerfile(t, b, "./function/cmd/tracker", "./function/cmd/trackr")
		_, err := buildFromDockerfile(ctx, b.root, b.dockerfile, t.TempDir())
		if err == nil {
			t.Fatal("got no error, want the build of a missing package to fail")
		}
		for _, w := range []string{fileDockerfile, "RUN go build", "trackr"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("got error:\n%v\nwant it to contain %q", err, w)
			}
		}
	})

	t.Run("func-go version other than go.mod's", func(t *testing.T) {
		t.Parallel()
		err := checkBinary(ctx, bin, []byte("module tracker\n\nrequire knative.dev/func-go v0.21.3\n"))
		if err == nil || !strings.Contains(err.Error(), "knative.dev/func-go in the binary") {
			t.Errorf("got %v, want an error about the func-go version", err)
		}
	})

	t.Run("main that is not the function", func(t *testing.T) {
		t.Parallel()
		bin := buildStub(ctx, t)
		err := checkBinary(ctx, bin, b.goMod)
		if err == nil {
			t.Fatal("got no error, want the stub binary rejected")
		}
		for _, w := range []string{"knative.dev/func-go/http.Start", "tracker/function.(*Function).Handle"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("got error:\n%v\nwant it to contain %q", err, w)
			}
		}
	})
}

// buildStub builds a main package of a module also named tracker that
// does not start the function.
func buildStub(ctx context.Context, t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range map[string]string{
		"go.mod":  "module tracker\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() {}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "stub")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the stub: %v\n%s", err, out)
	}
	return bin
}
