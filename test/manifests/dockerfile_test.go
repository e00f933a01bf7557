package manifests

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// dockerfile is a parsed Dockerfile: the instructions of each stage.
type dockerfile struct {
	file   string
	text   string
	stages []dockerStage
}

// dockerStage is one FROM and the instructions that follow it.
type dockerStage struct {
	from         string
	name         string
	instructions []dockerInstruction
}

// dockerInstruction is one instruction, continuation lines joined.
type dockerInstruction struct {
	line int    // where it starts, for messages
	cmd  string // upper case: RUN, COPY, ...
	args string
}

// parseDockerfile reads the instructions of a Dockerfile: comment lines
// are dropped and lines ending in a backslash are joined, as Docker does.
func parseDockerfile(file string, data []byte) (*dockerfile, error) {
	d := &dockerfile{file: file, text: string(data)}
	var cur strings.Builder
	start := 0
	add := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := dockerInstruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			d.stages = append(d.stages, st)
			return nil
		}
		if len(d.stages) == 0 {
			if in.cmd != "ARG" {
				return fmt.Errorf("%s:%d: %s before the first FROM", file, in.line, in.cmd)
			}
			return nil
		}
		st := &d.stages[len(d.stages)-1]
		st.instructions = append(st.instructions, in)
		return nil
	}
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\") + " ")
			continue
		}
		cur.WriteString(t)
		if err := add(); err != nil {
			return nil, err
		}
	}
	if err := add(); err != nil {
		return nil, err
	}
	if len(d.stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", file)
	}
	return d, nil
}

// final is the stage that becomes the image.
func (d *dockerfile) final() *dockerStage {
	return &d.stages[len(d.stages)-1]
}

// all returns the instructions of a stage with the given command.
func (s *dockerStage) all(cmd string) []dockerInstruction {
	var out []dockerInstruction
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// goBuild is the `go build` command of the Dockerfile, split into its
// environment assignments and its arguments.
type goBuild struct {
	line int
	env  []string // KEY=VALUE before `go`
	args []string // after `go`, starting with "build"
}

// findGoBuild returns the one `go build` command in the Dockerfile's RUN
// instructions. The line must be plain words (no quotes, no variables), so
// that the test runs exactly what Docker runs.
func findGoBuild(d *dockerfile) (goBuild, error) {
	var found []goBuild
	for _, st := range d.stages {
		for _, in := range st.all("RUN") {
			for _, part := range strings.Split(in.args, "&&") {
				words := strings.Fields(part)
				for len(words) > 0 && strings.HasPrefix(words[0], "--") {
					words = words[1:] // RUN flags such as --mount=...
				}
				i := slices.Index(words, "go")
				if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
					continue
				}
				gb := goBuild{line: in.line, env: words[:i], args: words[i+1:]}
				for _, w := range gb.env {
					if !strings.Contains(w, "=") {
						return goBuild{}, fmt.Errorf("%s:%d: RUN: %q before go build is not an environment assignment", d.file, in.line, w)
					}
				}
				if strings.ContainsAny(strings.Join(words, " "), "'\"$`;|") {
					return goBuild{}, fmt.Errorf("%s:%d: RUN: the go build line uses quotes, variables or pipes; keep it plain words so the tests can run it", d.file, in.line)
				}
				found = append(found, gb)
			}
		}
	}
	if len(found) != 1 {
		return goBuild{}, fmt.Errorf("%s: RUN: got %d `go build` commands, want 1", d.file, len(found))
	}
	return found[0], nil
}

// output is the value of the build's -o flag.
func (gb goBuild) output() string {
	for i, a := range gb.args {
		if a == "-o" && i+1 < len(gb.args) {
			return gb.args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "-o="); ok {
			return v
		}
	}
	return ""
}

// checkDockerfile checks the image recipe: a Go builder stage that builds
// a static, path-free binary, and a minimal final stage that runs it as a
// numeric non-root user, stops on SIGTERM and exposes the Service's port
// with the Service's listen address.
func checkDockerfile(b *bundle) error {
	d := b.dockerfile
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", d.file, field, fmt.Sprintf(format, args...)))
	}
	if len(d.stages) < 2 {
		bad("FROM", "got %d stages, want a builder stage and a final stage", len(d.stages))
	}
	if !strings.HasPrefix(d.stages[0].from, "golang:") {
		bad("FROM", "first stage: got %s, want a golang: builder image", d.stages[0].from)
	}
	gb, err := findGoBuild(d)
	if err != nil {
		errs = append(errs, err)
	} else {
		if !slices.Contains(gb.env, "CGO_ENABLED=0") {
			bad("RUN go build", "got environment %v, want CGO_ENABLED=0 (a static binary for a distroless or scratch image)", gb.env)
		}
		if !slices.Contains(gb.args, "-trimpath") {
			bad("RUN go build", "got %v, want -trimpath (no build machine paths in the binary)", gb.args)
		}
		if gb.output() == "" {
			bad("RUN go build", "got %v, want -o naming the binary the final stage copies", gb.args)
		}
	}

	fin := d.final()
	distroless := strings.HasPrefix(fin.from, "gcr.io/distroless/static")
	if !distroless && fin.from != "scratch" {
		bad("FROM", "final stage: got %s, want gcr.io/distroless/static... or scratch", fin.from)
	}
	if fin.from == "scratch" && !slices.ContainsFunc(fin.all("COPY"), func(in dockerInstruction) bool {
		return strings.Contains(in.args, "ca-certificates")
	}) {
		bad("COPY", "final stage from scratch: want the CA certificates copied in")
	}
	users := fin.all("USER")
	if len(users) == 0 {
		bad("USER", "final stage: missing; want a numeric non-root user")
	} else {
		u := users[len(users)-1].args
		uid, _, _ := strings.Cut(u, ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 {
			bad("USER", "got %q, want a numeric non-root uid (Kubernetes' runAsNonRoot cannot verify a name)", u)
		}
	}
	if s := fin.all("STOPSIGNAL"); len(s) == 0 || s[len(s)-1].args != "SIGTERM" {
		got := "none"
		if len(s) > 0 {
			got = s[len(s)-1].args
		}
		bad("STOPSIGNAL", "got %s, want SIGTERM (func-go drains requests on SIGTERM)", got)
	}
	ports := containerPorts(b.service)
	var exposed []string
	for _, in := range fin.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(in.args)...)
	}
	for _, p := range ports {
		if !slices.Contains(exposed, strconv.Itoa(int(p))) {
			bad("EXPOSE", "got %v, want the Service's container port %d", exposed, p)
		}
	}
	listen := ""
	for _, in := range fin.all("ENV") {
		if v, ok := strings.CutPrefix(in.args, "LISTEN_ADDRESS="); ok {
			listen = v
		}
	}
	if want := serviceLiteralEnv(b.service)["LISTEN_ADDRESS"]; listen != want {
		bad("ENV LISTEN_ADDRESS", "got %q, want %q, the Service's", listen, want)
	}
	if len(fin.all("ENTRYPOINT")) == 0 && len(fin.all("CMD")) == 0 {
		bad("ENTRYPOINT", "final stage: missing")
	}
	return errors.Join(errs...)
}

// buildFromDockerfile runs the Dockerfile's `go build` from the repository
// root, with its environment, writing the binary into dir instead of the
// image path. It returns the binary's path.
func buildFromDockerfile(ctx context.Context, root string, d *dockerfile, dir string) (string, error) {
	gb, err := findGoBuild(d)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "tracker")
	args := slices.Clone(gb.args)
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			args[i+1] = out
		} else if strings.HasPrefix(a, "-o=") {
			args[i] = "-o=" + out
		}
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), gb.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s:%d: RUN go %s: %v\n%s", d.file, gb.line, strings.Join(gb.args, " "), err, stderr.String())
	}
	return out, nil
}

// funcGoRequire finds the knative.dev/func-go version that go.mod requires.
var funcGoRequire = regexp.MustCompile(`(?m)^\s*(?:require\s+)?knative\.dev/func-go\s+(v\S+)`)

// checkBinary checks that the binary the Dockerfile builds is the
// function: the root module's main, wrapping the function's Handle in
// func-go's HTTP runtime at the func-go version go.mod requires (so the
// image and `func build` run the same runtime).
func checkBinary(ctx context.Context, path string, goMod []byte) error {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %v", fileDockerfile, err)
	}
	var errs []error
	if info.Main.Path != "tracker" {
		errs = append(errs, fmt.Errorf("%s: RUN go build: main module: got %q, want tracker", fileDockerfile, info.Main.Path))
	}
	m := funcGoRequire.FindSubmatch(goMod)
	if m == nil {
		errs = append(errs, fmt.Errorf("%s: require: knative.dev/func-go not found", fileGoMod))
	} else {
		got := ""
		for _, dep := range info.Deps {
			if dep.Path == "knative.dev/func-go" {
				got = dep.Version
			}
		}
		if got != string(m[1]) {
			errs = append(errs, fmt.Errorf("%s: RUN go build: knative.dev/func-go in the binary: got %q, want %s as in %s", fileDockerfile, got, m[1], fileGoMod))
		}
	}
	nm, err := exec.CommandContext(ctx, "go", "tool", "nm", path).Output()
	if err != nil {
		return fmt.Errorf("go tool nm %s: %v", path, err)
	}
	for _, sym := range []string{
		" knative.dev/func-go/http.Start\n",
		" tracker/function.(*Function).Handle\n",
	} {
		if !bytes.Contains(nm, []byte(sym)) {
			errs = append(errs, fmt.Errorf("%s: RUN go build: the binary lacks %s; want the function started by func-go's http.Start", fileDockerfile, strings.TrimSpace(sym)))
		}
	}
	return errors.Join(errs...)
}
