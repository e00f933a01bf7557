package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"tracker/test/internal/harness"
)

// The -queue-proxy mode measures the function behind Knative's real
// queue-proxy, configured by Knative's own code from knative/service.yaml
// (harness.MakeRevision), at the two concurrencies the Service names: its
// autoscaling target and its containerConcurrency. Each level runs twice,
// through the queue-proxy and straight to the function, each on a fresh
// function process with the manifest's environment (GOMEMLIMIT, K_*), so
// the table shows what the hop costs.

// qpPhase is one measured load of the -queue-proxy mode.
type qpPhase struct {
	mode      mode
	conc      int
	label     string // "target" or "containerConcurrency"
	viaProxy  bool
	res       loadResult
	fnCPU     float64 // CPU seconds of the function in the window
	qpCPU     float64 // CPU seconds of the queue-proxy in the window
	rss       int64   // peak RSS of the function, KiB
	qpRSS     int64   // peak RSS of the queue-proxy, KiB
	machineCo float64 // cores the machine used
}

// queueProxyRun runs the -queue-proxy mode: its phases, then the row count
// against the acknowledgements, and writes its report.
func (b *bench) queueProxyRun(ctx context.Context, session *gocql.Session, keyspace string, started time.Time) error {
	rev, err := harness.MakeRevision(0)
	if err != nil {
		return err
	}
	target, err := rev.Target()
	if err != nil {
		return err
	}
	manifestEnv, err := rev.FunctionEnv()
	if err != nil {
		return err
	}
	b.env = append(b.env, manifestEnv...)
	levels := []struct {
		label string
		conc  int
	}{{"target", int(target)}, {"containerConcurrency", rev.ContainerConcurrency()}}
	logf("building the queue-proxy")
	if _, err := harness.QueueProxyBinary(ctx); err != nil {
		return err
	}

	var phases []qpPhase
	for _, m := range modes(b.opts.batch) {
		if !slices.Contains(b.opts.modes, m.name) {
			continue
		}
		for _, l := range levels {
			for _, via := range []bool{true, false} {
				path := "direct"
				if via {
					path = "queue-proxy"
				}
				logf("%s: %s %d, %s", m.name, l.label, l.conc, path)
				p, err := b.qpPhase(ctx, m, l.conc, via)
				if err != nil {
					return err
				}
				p.label = l.label
				phases = append(phases, p)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
	}

	logf("counting rows")
	counts := map[string]int64{}
	for _, t := range tables {
		n, err := countRows(ctx, session, keyspace, t)
		if err != nil {
			return err
		}
		counts[t] = n
	}
	var problems []string
	for _, p := range phases {
		if p.res.failedAll > 0 {
			problems = append(problems, fmt.Sprintf("%s at %d (%s): %d requests failed (%s)", p.mode.name, p.conc, pathName(p.viaProxy), p.res.failedAll, p.res.failuresText()))
		}
	}
	for _, t := range tables {
		if counts[t] != b.ackHTTP.n.Load() {
			problems = append(problems, fmt.Sprintf("%s: %d rows, but the function acknowledged %d events", t, counts[t], b.ackHTTP.n.Load()))
		}
	}
	report := renderQueueProxy(b.opts, phases, counts, b.ackHTTP.n.Load(), problems, started)
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

func pathName(viaProxy bool) string {
	if viaProxy {
		return "queue-proxy"
	}
	return "direct"
}

// qpPhase measures one mode at concurrency c on a fresh function, through
// a fresh queue-proxy when viaProxy.
func (b *bench) qpPhase(ctx context.Context, m mode, c int, viaProxy bool) (qpPhase, error) {
	fn, err := startFunction(b.bin, b.env, b.tmp)
	if err != nil {
		return qpPhase{}, err
	}
	defer fn.Stop(30 * time.Second)
	if err := fn.WaitReady(60 * time.Second); err != nil {
		return qpPhase{}, fmt.Errorf("%w\n%s", err, fn.LogTail(20))
	}
	addr, qpPID := fn.Addr, 0
	if viaProxy {
		qp, err := harness.StartQueueProxy(ctx, fn, filepath.Join(b.tmp, fmt.Sprintf("queue-proxy-%d.log", time.Now().UnixNano())))
		if err != nil {
			return qpPhase{}, err
		}
		// A SIGTERM would keep it draining for 30 s; nothing is in flight.
		defer qp.Kill()
		if err := qp.WaitReady(60 * time.Second); err != nil {
			return qpPhase{}, fmt.Errorf("%w\n%s", err, qp.LogTail(20))
		}
		addr, qpPID = qp.Addr, qp.PID()
	}
	var before, after cpuSnapshot
	var qpBefore, qpAfter float64
	marks := func(start bool) {
		if start {
			before = snapshot(fn.PID(), b.casPID)
			if qpPID > 0 {
				qpBefore, _ = cpuSeconds(qpPID)
			}
		} else {
			after = snapshot(fn.PID(), b.casPID)
			if qpPID > 0 {
				qpAfter, _ = cpuSeconds(qpPID)
			}
		}
	}
	res := closedLoop(ctx, c, b.opts.warmup, b.opts.duration, httpSender(addr, m, b.events), &b.ackHTTP, marks)
	use := before.until(after)
	p := qpPhase{mode: m, conc: c, viaProxy: viaProxy, res: res, fnCPU: use.function, qpCPU: qpAfter - qpBefore, machineCo: use.machine()}
	if p.rss, err = harness.ProcStatusKB(fn.PID(), "VmHWM"); err != nil {
		return p, err
	}
	if qpPID > 0 {
		p.qpRSS, _ = harness.ProcStatusKB(qpPID, "VmHWM")
	}
	return p, nil
}

// renderQueueProxy writes the -queue-proxy mode's report in Markdown.
func renderQueueProxy(o options, phases []qpPhase, counts map[string]int64, acked int64, problems []string, started time.Time) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("## Through Knative's queue-proxy")
	p("")
	p("`go run ./bench %s` on %s, %s; load average %s at the end. Closed loops of %s after a %s warm-up; every phase on a fresh function process with the manifest's environment, through a fresh queue-proxy (configured by Knative's code from knative/service.yaml) or straight to the function.",
		strings.Join(o.args, " "), cpuModel(), started.Format("2006-01-02"), loadAverage(), o.duration, o.warmup)
	p("")
	p("| input | in flight | path | events/s | p50 | p99 | max | function CPU s per 1k events | queue-proxy CPU s per 1k events | function peak RSS | queue-proxy peak RSS | machine cores |")
	p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, ph := range phases {
		qpCPU, qpRSS := "-", "-"
		if ph.viaProxy {
			qpCPU, qpRSS = perK(ph.qpCPU, ph.res.events), mib(ph.qpRSS)
		}
		p("| %s | %d (%s) | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f |",
			ph.mode.title, ph.conc, ph.label, pathName(ph.viaProxy), thousands(ph.res.eventsPerSecond()),
			ms(ph.res.percentile(50)), ms(ph.res.percentile(99)), ms(ph.res.max()),
			perK(ph.fnCPU, ph.res.events), qpCPU, mib(ph.rss), qpRSS, ph.machineCo)
	}
	p("")
	p("Rows against acknowledgements: %d events answered 2xx in the whole run, warm-ups included.", acked)
	p("")
	p("| table | rows |")
	p("|---|---:|")
	for _, t := range tables {
		p("| %s | %d |", t, counts[t])
	}
	p("")
	if len(problems) > 0 {
		p("**The run failed:** %s", strings.Join(problems, "; "))
	} else {
		p("Every request was answered 2xx and every table holds one row per acknowledged event.")
	}
	return b.String()
}
