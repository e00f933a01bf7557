package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"tracker/test/internal/harness"
)

// The -commitlog mode measures what Cassandra's commit-log sync modes
// (cassandra/local.sh's CASSANDRA_COMMITLOG_SYNC) cost the function. Each
// mode gets a Cassandra node of the bench's own, started fresh by local.sh
// in a temporary directory with the shared node's jars and heap, and
// stopped before the next mode's node starts, so that only one of them
// runs at a time; the shared node is not used. On each node, after an
// unmeasured closed loop that lets the node's JIT compile the write path,
// come the same phases, each on a fresh function process: plain single
// events at c=16 and c=64, batches at c=16, and an open loop of single
// events at half the best rate periodic reached, the same rate for every
// mode. Each node's rows are counted against the events it acknowledged.

// syncMode is one commit-log sync setting of local.sh.
type syncMode struct {
	name    string // the value of CASSANDRA_COMMITLOG_SYNC
	setting string // its period or window, for the report
	env     []string
}

// syncModes are the modes measured, periodic (the baseline) first: the
// open loop's rate comes from it. The period and the window are local.sh's
// defaults, spelled out so that the environment cannot change them.
var syncModes = []syncMode{
	{"periodic", "period 10000ms", []string{"CASSANDRA_COMMITLOG_SYNC=periodic", "CASSANDRA_COMMITLOG_SYNC_PERIOD=10000ms"}},
	{"group", "window 15ms", []string{"CASSANDRA_COMMITLOG_SYNC=group", "CASSANDRA_COMMITLOG_SYNC_GROUP_WINDOW=15ms"}},
	{"batch", "sync after sync", []string{"CASSANDRA_COMMITLOG_SYNC=batch"}},
}

// commitLogHeap is the heap of the bench's nodes: local.sh's default, the
// shared node's, so that periodic's figures compare with the main run's.
const commitLogHeap = "1G"

// The closed-loop concurrencies of the mode's phases.
const (
	clSingleConc = 16 // the Service's containerConcurrency
	clHighConc   = 64
	clBatchConc  = 16
	clWarmConc   = 64 // the unmeasured loop that warms each node's JIT up
)

// clPhase is one measured load of the -commitlog mode.
type clPhase struct {
	sync string
	phase
}

// clNode is what one node stored against what it acknowledged.
type clNode struct {
	sync    string
	acked   int64
	counts  map[string]int64
	started time.Duration // local.sh start until CQL answered
}

// commitLogRun runs the -commitlog mode: a node per sync mode, its phases,
// its row count, and then the report.
func (b *bench) commitLogRun(ctx context.Context, started time.Time) error {
	logf("building the function")
	var err error
	if b.bin, err = harness.Build(b.tmp, ".", "./function/cmd/tracker", "tracker"); err != nil {
		return err
	}
	runID := strconv.FormatInt(time.Now().Unix(), 10)
	keyspace := "bench_" + runID
	b.events = newEventSource("b" + runID)
	var single, batch mode
	for _, m := range modes(b.opts.batch) {
		switch m.name {
		case "plain":
			single = m
		case "plain-batch":
			batch = m
		}
	}

	var (
		phases   []clPhase
		nodes    []clNode
		problems []string
		skipped  []string
		openRate float64
	)
	for _, sm := range syncModes {
		err := b.withNode(ctx, sm, func(node *harness.Node, took time.Duration) error {
			opts := b.opts
			opts.hosts = node.Host
			b.env = functionEnv(opts, keyspace, max(clHighConc, clBatchConc*b.opts.batch))
			acked0 := b.ackHTTP.n.Load()

			logf("%s: warming the node up, plain at concurrency %d", sm.name, clWarmConc)
			warm, err := b.withFunction(b.bin, nil, func(p *harness.Function) phase {
				res := closedLoop(ctx, clWarmConc, 0, b.opts.duration, httpSender(p.Addr, single, b.events), &b.ackHTTP, nil)
				return phase{kind: "warm", mode: single, conc: clWarmConc, res: res}
			})
			if err != nil {
				return err
			}
			if warm.res.failedAll > 0 {
				problems = append(problems, fmt.Sprintf("%s: %d requests of the node's warm-up failed (%s)", sm.name, warm.res.failedAll, warm.res.failuresText()))
			}

			for _, l := range []struct {
				m mode
				c int
			}{{single, clSingleConc}, {single, clHighConc}, {batch, clBatchConc}} {
				logf("%s: %s at concurrency %d", sm.name, l.m.name, l.c)
				p, err := b.closedPhase(ctx, l.m, l.c)
				if err != nil {
					return err
				}
				phases = append(phases, clPhase{sm.name, p})
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if sm.name == "periodic" && l.m.name == single.name {
					openRate = max(openRate, p.res.requestsPerSecond()/2)
				}
			}
			if openRate <= 0 {
				return fmt.Errorf("%s: no closed-loop rate of single events to take half of", sm.name)
			}
			// A mode that cannot keep up with the rate would only show its
			// queue growing for as long as the loop lasts, and fail
			// requests once the queue outgrows the function's timeout.
			if best := bestSingle(phases, sm.name, single.name); openRate > 2*best {
				skipped = append(skipped, fmt.Sprintf("%s: no open loop; %s requests/s is more than twice the best rate its closed loops reached (%s events/s)",
					sm.name, thousands(openRate), thousands(best)))
				logf("%s: open loop skipped", sm.name)
			} else {
				logf("%s: open loop at %.0f requests/s", sm.name, openRate)
				p, err := b.openPhase(ctx, single, openRate)
				if err != nil {
					return err
				}
				phases = append(phases, clPhase{sm.name, p})
			}

			logf("%s: counting rows", sm.name)
			session, err := openSession(node.Host)
			if err != nil {
				return fmt.Errorf("connect to the %s node: %w", sm.name, err)
			}
			defer session.Close()
			n := clNode{sync: sm.name, acked: b.ackHTTP.n.Load() - acked0, counts: map[string]int64{}, started: took}
			for _, t := range tables {
				if n.counts[t], err = countRows(ctx, session, keyspace, t); err != nil {
					return err
				}
				if n.counts[t] != n.acked {
					problems = append(problems, fmt.Sprintf("%s: %s holds %d rows, but the function acknowledged %d events", sm.name, t, n.counts[t], n.acked))
				}
			}
			nodes = append(nodes, n)
			return nil
		})
		if err != nil {
			return err
		}
	}

	for _, p := range phases {
		if p.res.failedAll > 0 {
			problems = append(problems, fmt.Sprintf("%s: %s at %s: %d requests failed (%s)", p.sync, p.mode.name, clLoad(p.phase), p.res.failedAll, p.res.failuresText()))
		}
	}
	report := renderCommitLog(b.opts, phases, nodes, skipped, b.warnings, problems, started)
	if b.opts.out == "-" {
		fmt.Print(report)
	} else if err := os.WriteFile(b.opts.out, []byte(report), 0o644); err != nil {
		return err
	}
	logf("done in %s", time.Since(started).Round(time.Second))
	if len(problems) > 0 {
		return fmt.Errorf("the run failed:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// withNode starts a node of the bench's own with sync mode sm, waits until
// it takes writes within the function's timeout, runs measure with it and
// how long it took to answer CQL, then stops it and removes its state,
// whatever measure returned.
func (b *bench) withNode(ctx context.Context, sm syncMode, measure func(node *harness.Node, took time.Duration) error) error {
	node, err := harness.NewNode(filepath.Join(b.tmp, "cassandra-"+sm.name))
	if err != nil {
		return err
	}
	node.Heap = commitLogHeap
	node.Env = sm.env
	defer func() {
		// ctx may be over (an interrupt); the node must stop all the same.
		sctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		logf("%s: stopping the node", sm.name)
		if err := node.Stop(sctx); err != nil {
			logf("%s: %v", sm.name, err)
		}
		os.RemoveAll(node.Dir)
	}()

	logf("%s: starting a node on %s (commit log sync %s, %s)", sm.name, node.Host, sm.name, sm.setting)
	sctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	began := time.Now()
	if err := node.Start(sctx); err != nil {
		return err
	}
	took := time.Since(began)
	if _, err := node.WarmUp(sctx, b.opts.timeout); err != nil {
		return err
	}
	if b.casPID, err = node.PID(); err != nil {
		return fmt.Errorf("%s node: pid: %w", sm.name, err)
	}
	return measure(node, took)
}

// clLoad names a phase's load: its concurrency, or its open-loop rate.
func clLoad(p phase) string {
	if p.kind == "open" {
		return fmt.Sprintf("open, %s requests/s", thousands(p.rate))
	}
	return strconv.Itoa(p.conc)
}

// renderCommitLog writes the -commitlog mode's report in Markdown.
func renderCommitLog(o options, phases []clPhase, nodes []clNode, skipped, warns, problems []string, started time.Time) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("## Commit-log sync modes")
	p("")
	p("`cd test && go run ./bench %s` on %s, %s; the run took %s, load average %s at the end.",
		strings.Join(withoutOut(o.args), " "), cpuModel(), started.Format("2006-01-02"), time.Since(started).Round(time.Second), loadAverage())
	p("Each mode on a Cassandra node of its own, started fresh by cassandra/local.sh (heap %s, concurrent_writes %s, data on %s) and stopped before the next one starts; on each, an unmeasured closed loop of %s of single events at c=%d warms the node's JIT up, then closed loops of %s after a %s warm-up and an open loop of %s at half periodic's best single-event rate, every phase on a fresh function process.",
		commitLogHeap, yamlSetting("concurrent_writes"), fsType(os.TempDir()), o.duration, clWarmConc, o.duration, o.warmup, o.openDuration)
	p("")
	p("| sync mode | input | c | events/s | p50 | p99 | max | function CPU s per 1k events | Cassandra CPU s per 1k events | machine cores |")
	p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, ph := range phases {
		sm := ph.sync
		for _, m := range syncModes {
			if m.name == ph.sync {
				sm += " (" + m.setting + ")"
			}
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f |",
			sm, ph.mode.title, clLoad(ph.phase), thousands(ph.res.eventsPerSecond()),
			ms(ph.res.percentile(50)), ms(ph.res.percentile(99)), ms(ph.res.max()),
			perK(ph.cpu.function, ph.res.events), perK(ph.cpu.cassandra, ph.res.events), ph.cpu.machine())
	}
	p("")
	for _, s := range skipped {
		p("%s.", s)
		p("")
	}
	for _, m := range syncModes[1:] {
		if line := relativeLine(phases, m.name); line != "" {
			p("%s", line)
			p("")
		}
	}
	p("Rows against acknowledgements, per node: the events each node's functions answered 2xx, warm-ups included.")
	p("")
	p("| sync mode | node start | acknowledged | %s |", strings.Join(tables, " | "))
	p("|---|---:|---:|%s", strings.Repeat("---:|", len(tables)))
	for _, n := range nodes {
		row := fmt.Sprintf("| %s | %s | %d |", n.sync, n.started.Round(100*time.Millisecond), n.acked)
		for _, t := range tables {
			row += fmt.Sprintf(" %d |", n.counts[t])
		}
		p("%s", row)
	}
	p("")
	if len(warns) > 0 {
		p("The functions logged %d warning(s); the first:", len(warns))
		p("")
		for _, w := range warns[:min(3, len(warns))] {
			p("    %s", w)
		}
		p("")
	}
	if len(problems) > 0 {
		p("**The run failed:** %s", strings.Join(problems, "; "))
	} else {
		p("Every request was answered 2xx and every table of every node holds one row per event it acknowledged.")
	}
	return b.String()
}

// relativeLine compares each phase of sync mode name with periodic's
// phase of the same input and load: events/s, p50 and p99 as ratios.
func relativeLine(phases []clPhase, name string) string {
	var parts []string
	for _, ph := range phases {
		if ph.sync != name {
			continue
		}
		for _, base := range phases {
			if base.sync != "periodic" || base.kind != ph.kind || base.mode.name != ph.mode.name || base.conc != ph.conc {
				continue
			}
			label := fmt.Sprintf("%s c=%d", ph.mode.name, ph.conc)
			if ph.kind == "open" {
				label = ph.mode.name + " open loop"
			}
			parts = append(parts, fmt.Sprintf("%s: events/s %s, p50 %s, p99 %s", label,
				ratio(ph.res.eventsPerSecond(), base.res.eventsPerSecond()),
				ratio(ph.res.percentile(50).Seconds(), base.res.percentile(50).Seconds()),
				ratio(ph.res.percentile(99).Seconds(), base.res.percentile(99).Seconds())))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("**%s against periodic:** %s.", name, strings.Join(parts, "; "))
}

// bestSingle is the best events/s of the closed loops of input name on
// sync mode sync.
func bestSingle(phases []clPhase, sync, name string) float64 {
	var best float64
	for _, p := range phases {
		if p.sync == sync && p.kind == "closed" && p.mode.name == name {
			best = max(best, p.res.eventsPerSecond())
		}
	}
	return best
}

// yamlSetting returns the value of a top-level key of the cassandra.yaml
// that local.sh renders the nodes' configuration from.
func yamlSetting(key string) string {
	b, err := os.ReadFile(filepath.Join(harness.Root(), "cassandra", "cassandra.yaml"))
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			v, _, _ = strings.Cut(v, "#")
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// withoutOut returns args without -out and its value: where the report
// went is no part of how it was measured.
func withoutOut(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if strings.HasPrefix(args[i], "-") && name == "out" {
			if !hasValue {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// ratio formats v/base as a factor such as 0.82×.
func ratio(v, base float64) string {
	if base <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v/base)
}

// fsType returns the type of the file system that holds dir, from
// /proc/mounts: its longest mount point that is a prefix of dir.
func fsType(dir string) string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "an unknown file system"
	}
	defer f.Close()
	dir, _ = filepath.EvalSymlinks(dir)
	best, typ := "", "an unknown file system"
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 3 {
			continue
		}
		mp := fields[1]
		inside := dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")
		if inside && len(mp) > len(best) {
			best, typ = mp, fields[2]
		}
	}
	return typ
}
