package main

import (
	_ "embed"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// history is the hand-kept record of the performance changes and their
// measured effect; every report carries it.
//
//go:embed history.md
var history string

// report is everything one run measured.
type report struct {
	opts               options
	started            time.Time
	took               time.Duration
	load0, load1       string
	cassandra          string
	phases             []phase
	starts             []coldStart
	profiles           []profile
	counts             map[string][2]int64 // rows in the function's and the ceiling's keyspace
	ackHTTP, ackDirect int64
	warnings           []string
	maxInflight        int
	gcPauses           []gcPause
	spans              int64 // spans the OTLP sink of the telemetry phases received
}

// problems lists what fails the run: any non-2xx answer or failed save,
// and any difference between rows and acknowledged events.
func (r report) problems() []string {
	var out []string
	for _, p := range r.phases {
		if p.res.failedAll > 0 {
			out = append(out, fmt.Sprintf("%s %s: %d requests failed (%s)", p.kind, r.phaseName(p), p.res.failedAll, p.res.failuresText()))
		}
	}
	for _, p := range r.profiles {
		if p.res.res.failedAll > 0 {
			out = append(out, fmt.Sprintf("profile %s: %d requests failed (%s)", p.mode, p.res.res.failedAll, p.res.res.failuresText()))
		}
	}
	for _, t := range tables {
		c := r.counts[t]
		if c[0] != r.ackHTTP {
			out = append(out, fmt.Sprintf("%s: %d rows, but the function acknowledged %d events", t, c[0], r.ackHTTP))
		}
		if c[1] != r.ackDirect {
			out = append(out, fmt.Sprintf("%s (ceiling): %d rows, but Store.Save acknowledged %d events", t, c[1], r.ackDirect))
		}
	}
	return out
}

func (r report) phaseName(p phase) string {
	if p.kind == "open" {
		return fmt.Sprintf("%s at %.0f req/s", p.mode.name, p.rate)
	}
	return fmt.Sprintf("%s c=%d", p.mode.name, p.conc)
}

func (r report) write(path string) error {
	var b strings.Builder
	r.render(&b)
	if path == "-" {
		_, err := os.Stdout.WriteString(b.String())
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func (r report) render(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	cmd := "cd test && go run ./bench"
	if len(r.opts.args) > 0 {
		cmd += " " + strings.Join(r.opts.args, " ")
	}
	p("# Benchmarks")
	p("")
	p("Written by `%s` on %s; the run took %s. Rerun that command to", cmd, r.started.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second))
	p("replace this file (`go run ./bench -help` lists the knobs; `-quick` is a smoke run).")
	p("")
	if probs := r.problems(); len(probs) > 0 {
		p("**THIS RUN FAILED:**")
		p("")
		for _, s := range probs {
			p("- %s", s)
		}
		p("")
	}

	p("## Machine")
	p("")
	p("| cores | memory | CPU | kernel | Go | Cassandra | load average before / after |")
	p("|---|---|---|---|---|---|---|")
	p("| %d | %s | %s | %s | %s | %s | %s / %s |", runtime.NumCPU(), memTotal(), cpuModel(), kernel(), runtime.Version(), r.cassandra, r.load0, r.load1)
	p("")
	p("One machine runs everything: Cassandra (one node from `cassandra/local.sh`, 1 GB heap,")
	p("G1 with a 10 ms pause target, memtables off the heap, `commitlog_sync: periodic`), the")
	p("function, and this load generator, all on the same cores.")
	p("The CPU columns below show how the cores were shared.")
	p("")
	if other := r.otherLoad(); other >= 0.2 {
		p("**Other processes used %.2f cores on average during the measured windows** (other builds", other)
		p("and tests on a shared machine): every rate below is lower, and every latency higher, than")
		p("this machine gives when idle, and the ratios compare phases that saw different interference.")
		p("")
	}
	p("## Setup")
	p("")
	p("- The function is the standalone binary (`function/cmd/tracker`), started fresh for every phase")
	p("  on 127.0.0.1 with `CASSANDRA_CONSISTENCY=%s`, `LOG_LEVEL=warn` and its own keyspace (RF 1).", r.opts.consistency)
	p("  Two settings differ from the defaults so that the closed loops measure throughput rather")
	p("  than load shedding: `TRACK_MAX_INFLIGHT=%d` (the largest concurrency times the batch size)", max(r.maxInflight, 2000))
	p("  and `CASSANDRA_TIMEOUT=%s` (%d batches of %d events in flight wait in line longer than the", r.opts.timeout, slices.Max(r.opts.concurrency), r.opts.batch)
	p("  2 s default; in a cluster `containerConcurrency` keeps that queue in front of the pod).")
	p("- Requests are keep-alive HTTP/1.1, one connection per client, written by `test/bench/client.go`")
	p("  and read with `http.ReadResponse` (lighter than `net/http`'s client, since the generator")
	p("  shares the cores with what it measures). Every event has its own id")
	p("  (plain events carry `id` and `timestamp`; CloudEvents `source`, `id` and `time`), and")
	p("  they spread over %d users and %d targets.", users, targets)
	p("- **Ceiling**: the same events saved by the function's own `Store` (`store.Open`:")
	p("  the same gocql settings, statements, consistency and per-request deadline) from the same")
	p("  number of goroutines, with no HTTP, decoding or validation, into a keyspace of its own.")
	p("- **Closed loop**: c clients each send a request, wait for the answer, and send the next.")
	p("  A warm-up of at least %s, until every client has had an answer, then a window of at least", r.opts.warmup)
	p("  %s that lasts until it holds %d answers per client (so that slow rounds, such as 256", r.opts.duration, minRounds)
	p("  batches in flight, are measured as a rate, not counted whole). Latency is per request.")
	p("- **Open loop**: requests are due at fixed times at half the best closed-loop rate of the")
	p("  mode, whatever the answers do, and latency runs from the due time (no coordinated omission);")
	p("  %s of warm-up, then %s measured. Before each open loop the bench waits (up to a minute)", r.opts.warmup, r.opts.openDuration)
	p("  until Cassandra uses less than a tenth of a core, so that the flushes and compactions the")
	p("  closed loops leave behind do not fall into the window.")
	if r.opts.openRate > 0 {
		p("  In this run single events were sent at %s requests/s (`-open-rate`), not at half their best rate.", thousands(r.opts.openRate))
	}
	p("- **non-2xx** counts the whole phase, warm-up included; any fails the run.")
	p("- **Peak RSS** is the function's VmHWM; it covers one phase because each phase has its own")
	p("  process. **CPU per 1k events** is the function's utime+stime in the window per 1,000 stored")
	p("  events (for the ceiling: this process's, which also generates the events).")
	p("")

	p("## Throughput (closed loop)")
	p("")
	p("| mode | c | events/s | requests/s | p50 | p95 | p99 | max | non-2xx | peak RSS | CPU s per 1k events | ceiling events/s | ratio |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	order := []string{"direct1", "plain", "plain-untimed", "plain-v7", "ce-binary", "directN", "plain-batch", "plain-batch-user", "ce-batch"}
	key := func(ph phase) string {
		if ph.mode.name == "direct" {
			if ph.mode.batch == 1 {
				return "direct1"
			}
			return "directN"
		}
		return ph.mode.name
	}
	for _, k := range order {
		for _, ph := range r.phases {
			if ph.kind == "open" || ph.kind == "sweep" || ph.kind == "telemetry" || key(ph) != k {
				continue
			}
			res := ph.res
			rss, ceil, ratio := "–", "–", "–"
			cpuPer := ph.cpu.function
			name := ph.mode.title
			if ph.kind == "direct" {
				name = "**ceiling**: " + ph.mode.title
				cpuPer = ph.cpu.generator
			} else {
				rss = mib(ph.rss)
				ceil = thousands(ph.ceil)
				if ph.ceil > 0 {
					ratio = fmt.Sprintf("%.2f", res.eventsPerSecond()/ph.ceil)
				}
			}
			p("| %s | %d | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |", name, ph.conc,
				thousands(res.eventsPerSecond()), thousands(res.requestsPerSecond()),
				ms(res.percentile(50)), ms(res.percentile(95)), ms(res.percentile(99)), ms(res.max()),
				res.failedAll, rss, perK(cpuPer, res.events), ceil, ratio)
		}
	}
	p("")

	p("## Latency by concurrency (plain JSON, 1 event)")
	p("")
	p("The closed-loop phases of plain single events, with the extra levels of `-sweep`: the")
	p("in-flight requests per process that keep p99 within a bound.")
	p("")
	p("| c | events/s | p50 | p95 | p99 | max | function cores |")
	p("|---:|---:|---:|---:|---:|---:|---:|")
	var sweep []phase
	for _, ph := range r.phases {
		if (ph.kind == "closed" || ph.kind == "sweep") && ph.mode.name == "plain" {
			sweep = append(sweep, ph)
		}
	}
	slices.SortFunc(sweep, func(a, b phase) int { return a.conc - b.conc })
	for _, ph := range sweep {
		res := ph.res
		p("| %d | %s | %s | %s | %s | %s | %.2f |", ph.conc, thousands(res.eventsPerSecond()),
			ms(res.percentile(50)), ms(res.percentile(95)), ms(res.percentile(99)), ms(res.max()), ph.cpu.function/res.window.Seconds())
	}
	p("")

	p("## Latency at half the best rate (open loop)")
	p("")
	p("| mode | requests/s sent | events/s stored | p50 | p95 | p99 | max | non-2xx | peak RSS | CPU s per 1k events |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, ph := range r.phases {
		if ph.kind != "open" {
			continue
		}
		res := ph.res
		name, cpuPer := ph.mode.title, ph.cpu.function
		if ph.mode.name == "direct" {
			name, cpuPer = "**ceiling**: "+name, ph.cpu.generator
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %d | %s | %s |", name, thousands(ph.rate), thousands(res.eventsPerSecond()),
			ms(res.percentile(50)), ms(res.percentile(95)), ms(res.percentile(99)), ms(res.max()), res.failedAll, mib(ph.rss), perK(cpuPer, res.events))
	}
	p("")
	p("The ceiling rows send the same events at the same rate straight to `Store.Save`: what")
	p("is left of the latency there is Cassandra's (and the machine's), not the function's.")
	p("")

	r.renderTelemetry(p)

	p("## Where the CPU went")
	p("")
	p("Cores used during each measured window (CPU seconds / wall seconds; the machine has %d).", runtime.NumCPU())
	p("")
	p("| phase | function | Cassandra | load generator | other processes | whole machine | Cassandra CPU s per 1k events |")
	p("|---|---:|---:|---:|---:|---:|---:|")
	for _, ph := range r.phases {
		w := ph.res.window.Seconds()
		fn := fmt.Sprintf("%.2f", ph.cpu.function/w)
		if ph.mode.name == "direct" {
			fn = "–"
		}
		cas := "?"
		if ph.cpu.cassandra > 0 {
			cas = fmt.Sprintf("%.2f", ph.cpu.cassandra/w)
		}
		casPerK := "?"
		if ph.cpu.cassandra > 0 {
			casPerK = perK(ph.cpu.cassandra, ph.res.events)
		}
		label := ph.mode.title + ", c=" + strconv.Itoa(ph.conc)
		if ph.kind == "telemetry" {
			label += ", telemetry " + ph.variant
		}
		if ph.kind == "open" {
			label = ph.mode.title + ", open loop"
		}
		if ph.mode.name == "direct" {
			label = "ceiling: " + label
		}
		p("| %s | %s | %s | %.2f | %.2f | %.2f | %s |", label, fn, cas, ph.cpu.generator/w, ph.cpu.others(), ph.cpu.machine(), casPerK)
	}
	p("")

	if len(r.gcPauses) > 0 {
		var total, longest time.Duration
		for _, g := range r.gcPauses {
			total += g.duration
			longest = max(longest, g.duration)
		}
		p("Cassandra logged %d garbage-collection pauses of 200 ms or more during the run (longest %s,", len(r.gcPauses), ms(longest))
		p("%s in all; `GCInspector` in its system.log). Every write in flight waits out such a pause,", ms(total))
		p("the ceiling's as much as the function's, and the open loop's queue grows behind it.")
		p("")
	}

	p("## Cold start")
	p("")
	p("%d starts of the binary with Cassandra up and the schema present (`CASSANDRA_SCHEMA_CREATE=true`,", len(r.starts))
	p("as deployed; a start that finds the tables runs no DDL).")
	p("A POST /track is sent at exec time and resent every %s while the port is closed or the", coldStartPoll)
	p("function answers 503.")
	p("")
	var ready, stored []time.Duration
	for _, s := range r.starts {
		ready = append(ready, s.ready)
		stored = append(stored, s.stored)
	}
	p("| from exec to | median | min | max |")
	p("|---|---:|---:|---:|")
	if len(r.starts) > 0 {
		p("| `/health/readiness` 200 | %s | %s | %s |", ms(median(ready)), ms(slices.Min(ready)), ms(slices.Max(ready)))
		p("| first 201 on `/track` | %s | %s | %s |", ms(median(stored)), ms(slices.Min(stored)), ms(slices.Max(stored)))
	}
	p("")

	p("## Rows in Cassandra")
	p("")
	p("Counted after the run over %d token ranges; every event acknowledged 2xx must be one row in each table.", countSplits)
	p("")
	p("| table | rows (function) | events acknowledged | rows (ceiling) | events saved | |")
	p("|---|---:|---:|---:|---:|---|")
	for _, t := range tables {
		c := r.counts[t]
		verdict := "equal"
		if c[0] != r.ackHTTP || c[1] != r.ackDirect {
			verdict = "**DIFFERENT**"
		}
		p("| %s | %d | %d | %d | %d | %s |", t, c[0], r.ackHTTP, c[1], r.ackDirect, verdict)
	}
	p("")

	p("## Targets")
	p("")
	p("| target | measured | met |")
	p("|---|---|---|")
	for _, t := range r.targets() {
		met := "yes"
		if !t.met {
			met = "**no**"
		}
		p("| %s | %s | %s |", t.name, t.measured, met)
	}
	p("")

	if len(r.profiles) > 0 {
		p("## Profiles")
		p("")
		p("The function built with runtime/pprof (`test/bench/trackerprof`), under the closed loop at")
		p("c=%d, profiled from start to SIGTERM. First the share of CPU samples under each part of the", r.opts.profileConc)
		p("function (rows marked · are inside the row above; \"spread\" rows cut across the others), then")
		p("pprof's flat top of CPU samples and of allocated bytes. The CPU table above says how much")
		p("of the machine the function had.")
		p("")
		for _, pr := range r.profiles {
			p("### %s, c=%d: %s events/s", pr.res.mode.title, pr.conc, thousands(pr.res.res.eventsPerSecond()))
			p("")
			p("| where the function's CPU went | share of samples |")
			p("|---|---:|")
			for _, pt := range pr.parts {
				p("| %s | %s |", pt.name, pt.share)
			}
			p("")
			p("```")
			p("%s", pr.cpu)
			p("```")
			p("")
			p("```")
			p("%s", pr.alloc)
			p("```")
			p("")
		}
	}

	if len(r.warnings) > 0 {
		p("## Warnings the function logged")
		p("")
		p("```")
		for _, w := range r.warnings {
			p("%s", w)
		}
		p("```")
		p("")
	}

	b.WriteString(strings.TrimSpace(history) + "\n")
}

// otherLoad is the average number of cores that processes other than the
// function, Cassandra and the generator used during the measured windows.
func (r report) otherLoad() float64 {
	var sum, n float64
	for _, ph := range r.phases {
		if ph.res.window > 0 && ph.cpu.cassandra > 0 {
			sum += ph.cpu.others()
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

// goal is one target of the benchmark issues and what this run reached.
type goal struct {
	name, measured string
	met            bool
}

func (r report) targets() []goal {
	var out []goal
	find := func(kind, name string, c int) (phase, bool) {
		for _, p := range r.phases {
			if p.kind == kind && p.mode.name == name && (kind == "open" || p.conc == c) {
				return p, true
			}
		}
		return phase{}, false
	}
	best := func(name string) float64 {
		var b float64
		for _, p := range r.phases {
			if p.kind == "closed" && p.mode.name == name {
				b = max(b, p.res.eventsPerSecond())
			}
		}
		return b
	}
	for _, name := range []string{"plain", "ce-binary"} {
		if p, ok := find("closed", name, 64); ok && p.ceil > 0 {
			ratio := p.res.eventsPerSecond() / p.ceil
			out = append(out, goal{name + ": ≥ 0.8 of the ceiling at c=64", fmt.Sprintf("%.2f", ratio), ratio >= 0.8})
		}
		if b := best(name); b > 0 {
			out = append(out, goal{name + ": ≥ 5,000 events/s", thousands(b), b >= 5000})
		}
		if p, ok := find("open", name, 0); ok {
			p99 := p.res.percentile(99)
			out = append(out, goal{name + ": p99 ≤ 10 ms at half the best rate", ms(p99), p99 <= 10*time.Millisecond})
		}
	}
	for _, name := range []string{"plain-batch", "ce-batch"} {
		var worst float64 = -1
		var at int
		for _, p := range r.phases {
			if p.kind == "closed" && p.mode.name == name && p.ceil > 0 {
				if ratio := p.res.eventsPerSecond() / p.ceil; worst < 0 || ratio < worst {
					worst, at = ratio, p.conc
				}
			}
		}
		if worst >= 0 {
			out = append(out, goal{name + ": ≥ 0.95 of the ceiling (lowest over c)", fmt.Sprintf("%.2f (c=%d)", worst, at), worst >= 0.95})
		}
		if b := best(name); b > 0 {
			out = append(out, goal{name + ": ≥ 20,000 events/s", thousands(b), b >= 20000})
		}
	}
	out = append(out, r.driverGoals(find)...)
	for _, c := range r.telemetryConc() {
		if lost, cpu, ok := r.costOf("metrics", c); ok {
			out = append(out, goal{fmt.Sprintf("metrics and logging cost ≤ 3 %% of plain events/s at c=%d (median)", c),
				fmt.Sprintf("%.1f %% (CPU per event %+.1f %%)", lost*100, cpu*100), lost <= 0.03})
		}
	}
	var failed int64
	for _, p := range r.phases {
		failed += p.res.failedAll
	}
	out = append(out, goal{"zero non-2xx in every mode", strconv.FormatInt(failed, 10), failed == 0})
	lost := false
	for _, t := range tables {
		lost = lost || r.counts[t][0] != r.ackHTTP || r.counts[t][1] != r.ackDirect
	}
	out = append(out, goal{"zero lost rows", map[bool]string{false: "rows = acknowledged events", true: "rows differ"}[lost], !lost})
	var rss int64
	for _, p := range r.phases {
		if p.kind == "closed" && p.conc == 256 {
			rss = max(rss, p.rss)
		}
	}
	if rss > 0 {
		out = append(out, goal{"peak RSS ≤ 64 MiB at c=256 (worst mode)", mib(rss), rss <= 64<<10})
	}
	if len(r.starts) > 0 {
		var ready, stored []time.Duration
		for _, s := range r.starts {
			ready = append(ready, s.ready)
			stored = append(stored, s.stored)
		}
		out = append(out, goal{"readiness ≤ 200 ms after exec (median)", ms(median(ready)), median(ready) <= 200*time.Millisecond})
		out = append(out, goal{"first stored event ≤ 300 ms after exec (median)", ms(median(stored)), median(stored) <= 300*time.Millisecond})
	}
	return out
}

// driverGoals are the targets of the issue that closes the gap to the
// driver: function CPU per event against the ceiling's, UUIDv7 ids without
// a timestamp against timestamped events, one user's batches against
// many users', and p99 at half the best rate.
func (r report) driverGoals(find func(kind, name string, c int) (phase, bool)) []goal {
	var out []goal
	perEvent := func(p phase) float64 {
		if p.res.events == 0 {
			return 0
		}
		if p.mode.name == "direct" {
			return p.cpu.generator / float64(p.res.events)
		}
		return p.cpu.function / float64(p.res.events)
	}
	direct := func(c, batch int) (phase, bool) {
		for _, p := range r.phases {
			if p.kind == "direct" && p.conc == c && p.mode.batch == batch {
				return p, true
			}
		}
		return phase{}, false
	}
	for _, g := range []struct {
		name  string
		limit float64
	}{{"plain", 1.3}, {"ce-binary", 1.5}} {
		for _, c := range []int{16, 64} {
			p, ok := find("closed", g.name, c)
			d, okd := direct(c, 1)
			if !ok || !okd || perEvent(d) == 0 {
				continue
			}
			ratio := perEvent(p) / perEvent(d)
			out = append(out, goal{fmt.Sprintf("%s: function CPU per event ≤ %.1f× the ceiling's at c=%d", g.name, g.limit, c),
				fmt.Sprintf("%.2f× (%.3f / %.3f ms)", ratio, perEvent(p)*1000, perEvent(d)*1000), ratio <= g.limit})
		}
	}
	// The closed loops above compare the function at its rate with the
	// ceiling at a higher one; the open loops send both the same events
	// at the same rate.
	var fo, do phase
	for _, p := range r.phases {
		if p.kind == "open" && p.mode.name == "plain" {
			fo = p
		}
		if p.kind == "open" && p.mode.name == "direct" && p.mode.batch == 1 {
			do = p
		}
	}
	if perEvent(fo) > 0 && perEvent(do) > 0 {
		ratio := perEvent(fo) / perEvent(do)
		out = append(out, goal{"plain: function CPU per event ≤ 1.3× the ceiling's at one rate (open loop)",
			fmt.Sprintf("%.2f× (%.3f / %.3f ms)", ratio, perEvent(fo)*1000, perEvent(do)*1000), ratio <= 1.3})
	}
	for _, c := range []int{16, 64} {
		v7, ok7 := find("closed", "plain-v7", c)
		pl, ok := find("closed", "plain", c)
		if ok7 && ok && pl.res.eventsPerSecond() > 0 {
			ratio := v7.res.eventsPerSecond() / pl.res.eventsPerSecond()
			out = append(out, goal{fmt.Sprintf("plain-v7: events/s ≥ 0.9× timestamped plain events' at c=%d", c),
				fmt.Sprintf("%.2f×", ratio), ratio >= 0.9})
		}
	}
	for _, c := range []int{16, 64} {
		one, ok1 := find("closed", "plain-batch-user", c)
		many, ok := find("closed", "plain-batch", c)
		if ok1 && ok && one.res.events > 0 && many.res.events > 0 && many.cpu.cassandra > 0 {
			ratio := (one.cpu.cassandra / float64(one.res.events)) / (many.cpu.cassandra / float64(many.res.events))
			out = append(out, goal{fmt.Sprintf("plain-batch-user: Cassandra CPU per event ≤ 0.75× many-user batches' at c=%d (whose user rows take a statement each)", c),
				fmt.Sprintf("%.2f×", ratio), ratio <= 0.75})
		}
	}
	if p, ok := find("open", "plain", 0); ok {
		p99 := p.res.percentile(99)
		out = append(out, goal{"plain: p99 ≤ 25 ms at half the best rate (tuned JVM)", ms(p99), p99 <= 25*time.Millisecond})
	}
	return out
}

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func mib(kib int64) string {
	if kib == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

func perK(cpuSeconds float64, events int64) string {
	if events == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f", cpuSeconds/float64(events)*1000)
}

// thousands formats a rate as a whole number with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
			}
		}
	}
	return "unknown"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return "Linux " + strings.TrimSpace(string(b))
}
