package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"tracker/test/internal/harness"
)

// profile is the CPU and allocation profile of one mode under load.
type profile struct {
	mode  string
	conc  int
	res   phase
	cpu   string // go tool pprof -top output
	alloc string
	parts []part // where the CPU went, by component
}

// part is one component's share of the CPU samples.
type part struct {
	name  string
	share string // pprof's cum%, such as "38.38%"
}

// components are the frames that stand for the parts of the function, in
// the report's order: goroutine roots first, then costs spread over them.
var components = []struct{ frame, name string }{
	{"net/http.(*conn).serve", "HTTP server goroutines (read, parse, handler, write)"},
	{"tracker/function.(*handler).handleTrack", "· the handler, POST /track"},
	{"tracker/function.(*handler).decode", "· · reading, decoding and validating the body"},
	{"tracker/function/store.(*Store).Save", "· · Save: building rows, handing them to writers, waiting"},
	{"tracker/function.writeJSON", "· · writing the 201"},
	{"tracker/function/store.(*Store).writer", "writer goroutines (gocql query execution)"},
	{"github.com/apache/cassandra-gocql-driver/v2.(*writeCoalescer).writeFlusher", "gocql write coalescer (flushing frames)"},
	{"github.com/apache/cassandra-gocql-driver/v2.(*Conn).serve", "gocql connection readers (parsing responses)"},
	{"runtime.gcBgMarkWorker", "garbage collector, background marking"},
	{"runtime.findRunnable", "scheduler looking for work"},
	{"runtime.gcAssistAlloc", "(spread) garbage-collector assists in allocating goroutines"},
	{"runtime.mallocgc", "(spread) allocation"},
	{"internal/runtime/syscall/linux.Syscall6", "(spread) system calls: socket reads and writes"},
}

// breakdown picks the components out of pprof -top -cum output.
func breakdown(cumTop string) []part {
	cum := map[string]string{}
	for _, line := range strings.Split(cumTop, "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && strings.HasSuffix(f[4], "%") {
			cum[f[5]] = f[4]
		}
	}
	var out []part
	for _, c := range components {
		if share, ok := cum[c.frame]; ok {
			out = append(out, part{c.name, share})
		}
	}
	return out
}

// profile builds trackerprof (the standalone main plus runtime/pprof) and
// runs the plain single and plain batch modes against it, keeping pprof's
// summary of where the function spent CPU and what it allocated.
func (b *bench) profile(ctx context.Context) ([]profile, error) {
	dir := b.tmp
	if b.opts.profileDir != "" {
		dir = b.opts.profileDir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	logf("building the profiling variant")
	bin, err := harness.Build(dir, "test", "./bench/trackerprof", "trackerprof")
	if err != nil {
		return nil, err
	}
	var out []profile
	for _, m := range modes(b.opts.batch) {
		if m.name != "plain" && m.name != "plain-batch" {
			continue
		}
		cpuPath := filepath.Join(dir, "cpu-"+m.name+".pprof")
		allocPath := filepath.Join(dir, "alloc-"+m.name+".pprof")
		logf("profile: %s at concurrency %d", m.name, b.opts.profileConc)
		ph, err := b.withFunction(bin, []string{"TRACKER_CPU_PROFILE=" + cpuPath, "TRACKER_ALLOC_PROFILE=" + allocPath}, func(p *harness.Function) phase {
			var before, after cpuSnapshot
			res := closedLoop(ctx, b.opts.profileConc, b.opts.warmup, b.opts.duration, httpSender(p.Addr, m, b.events), &b.ackHTTP,
				b.marks(p.PID(), &before, &after))
			return phase{kind: "closed", mode: m, conc: b.opts.profileConc, res: res, cpu: before.until(after)}
		})
		if err != nil {
			return nil, err
		}
		cpuTop, err := goTool("pprof", "-top", "-nodecount=30", bin, cpuPath)
		if err != nil {
			return nil, fmt.Errorf("pprof: %w: %s", err, cpuTop)
		}
		allocTop, err := goTool("pprof", "-top", "-nodecount=15", "-sample_index=alloc_space", bin, allocPath)
		if err != nil {
			return nil, fmt.Errorf("pprof: %w: %s", err, allocTop)
		}
		cumTop, err := goTool("pprof", "-top", "-cum", "-nodecount=1000", bin, cpuPath)
		if err != nil {
			return nil, fmt.Errorf("pprof: %w: %s", err, cumTop)
		}
		out = append(out, profile{mode: m.name, conc: b.opts.profileConc, res: ph, cpu: trimPprof(cpuTop), alloc: trimPprof(allocTop),
			parts: breakdown(cumTop)})
	}
	return out, nil
}

// trimPprof drops pprof's header lines that name local files.
func trimPprof(s string) string {
	var keep []string
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}
