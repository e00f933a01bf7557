// Command bench measures how many impressions one tracker process stores
// durably per second on this machine, how fast it answers, how much memory
// and CPU it takes and how fast it starts, against the direct-driver
// ceiling: the same rows written through the function's own Store with no
// HTTP. It writes BENCHMARKS.md at the repository root.
//
// Run it from the test module:
//
//	go run ./bench           # the full run, about 7 minutes
//	go run ./bench -quick    # a smoke run of under a minute, printed to stdout
//	go run ./bench -queue-proxy   # through Knative's queue-proxy (queueproxy.go), printed to stdout
//	go run ./bench -commitlog     # Cassandra's commit-log sync modes (commitlog.go), printed to stdout
//
// It starts (or reuses) the local Cassandra with cassandra/local.sh, builds
// the function's standalone binary, and runs it as a separate process on
// 127.0.0.1 against a keyspace of its own. Every phase starts a fresh
// function process, so its peak RSS (VmHWM) belongs to that phase alone.
// At the end it counts the rows in Cassandra; any difference from the
// events answered 2xx, or any non-2xx answer, fails the run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"tracker/function"
	"tracker/function/store"

	"tracker/test/internal/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	duration, warmup, openDuration time.Duration
	concurrency                    []int
	sweep                          []int
	batch                          int
	coldStarts                     int
	modes                          []string
	hosts                          string
	consistency                    string
	timeout                        time.Duration
	out                            string
	profile                        bool
	profileDir                     string
	profileConc                    int
	keep                           bool
	queueProxy                     bool
	commitLog                      bool
	telemetryRounds                int
	telemetryConc                  []int
	openRate                       float64
	args                           []string
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	var conc, sweep, modeList string
	quick := fs.Bool("quick", false, "smoke run: 1s phases at concurrency 1 and 16, no sweep, 3 cold starts, no profile, report on stdout (explicit flags still win)")
	fs.DurationVar(&o.duration, "duration", 8*time.Second, "measured window of each closed-loop phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each phase's window")
	fs.DurationVar(&o.openDuration, "open-duration", 10*time.Second, "measured window of each open-loop (latency) phase")
	fs.StringVar(&conc, "concurrency", "1,16,64,256", "closed-loop concurrency levels, comma separated")
	fs.StringVar(&sweep, "sweep", "4,8,32", "extra closed-loop concurrency levels for plain single events only, for the latency-by-concurrency table; empty for none")
	fs.IntVar(&o.batch, "batch", 100, "events per batch request")
	fs.IntVar(&o.coldStarts, "cold-starts", 10, "number of cold starts (the median is reported)")
	fs.StringVar(&modeList, "modes", "plain,plain-v7,plain-batch,plain-batch-user,ce-binary,ce-batch", "input forms to measure, comma separated: plain (id and timestamp), plain-v7 (a UUIDv7 id without a timestamp), plain-batch, plain-batch-user (a batch of one user's events), ce-binary, ce-batch; plain-untimed (an id without a timestamp, the lightweight-transaction path) is also known")
	fs.StringVar(&o.hosts, "cassandra-hosts", "127.0.0.1:9042", "the local Cassandra (loopback only)")
	fs.StringVar(&o.consistency, "consistency", "LOCAL_QUORUM", "CASSANDRA_CONSISTENCY of the function and of the ceiling")
	fs.DurationVar(&o.timeout, "cassandra-timeout", 20*time.Second, "CASSANDRA_TIMEOUT of the function and of the ceiling; a closed loop of 256 batches of 100 holds 25,600 events in flight, which wait longer than the 2s default (CloudEvents batches at c=256 took up to 7.6 s in the window, and one of a warm-up passed 10 s)")
	fs.StringVar(&o.out, "out", "", `report file; "-" prints it (default BENCHMARKS.md at the repository root)`)
	fs.BoolVar(&o.profile, "profile", true, "run a profiled build of the function at concurrency 64 and add its CPU and allocation profiles to the report")
	fs.IntVar(&o.profileConc, "profile-concurrency", 64, "closed-loop concurrency of the profiled runs")
	fs.StringVar(&o.profileDir, "profile-dir", "", "keep the profiles and the profiled binary in this directory (default: a temporary one, removed)")
	fs.BoolVar(&o.keep, "keep", false, "keep the benchmark keyspaces instead of dropping them")
	fs.BoolVar(&o.queueProxy, "queue-proxy", false, "measure only plain single events and batches behind Knative's queue-proxy and straight to the function, at the Service's autoscaling target and containerConcurrency (knative/service.yaml); report on stdout unless -out says otherwise")
	fs.BoolVar(&o.commitLog, "commitlog", false, "measure only plain single events and batches against a node of the bench's own per commit-log sync mode (periodic, group, batch), one node at a time; the shared node is not used; report on stdout unless -out says otherwise")
	var telConc string
	fs.IntVar(&o.telemetryRounds, "telemetry-rounds", 3, "rounds of the telemetry cost phases (plain events with telemetry off, metrics, metrics and tracing, alternating); 0 skips them")
	fs.Float64Var(&o.openRate, "open-rate", 0, "requests/s of the single-event open loops instead of half of each mode's best closed-loop rate, so that runs on differently set up nodes compare at one rate; 0 for half the best rate")
	fs.StringVar(&telConc, "telemetry-concurrency", "16,64", "closed-loop concurrency levels of the telemetry cost phases, comma separated")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.queueProxy && o.commitLog {
		return o, errors.New("-queue-proxy and -commitlog are separate runs")
	}
	if o.commitLog && !set["out"] {
		o.out = "-"
	}
	if o.queueProxy {
		if !set["out"] {
			o.out = "-"
		}
		if !set["modes"] {
			modeList = "plain,plain-batch"
		}
	}
	if *quick {
		defaults := map[string]func(){
			"duration":              func() { o.duration = time.Second },
			"warmup":                func() { o.warmup = 300 * time.Millisecond },
			"open-duration":         func() { o.openDuration = 2 * time.Second },
			"concurrency":           func() { conc = "1,16" },
			"sweep":                 func() { sweep = "" },
			"cold-starts":           func() { o.coldStarts = 3 },
			"profile":               func() { o.profile = false },
			"out":                   func() { o.out = "-" },
			"telemetry-rounds":      func() { o.telemetryRounds = 1 },
			"telemetry-concurrency": func() { telConc = "16" },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 4096 {
			return o, fmt.Errorf("-concurrency: %q is not a number from 1 to 4096", s)
		}
		o.concurrency = append(o.concurrency, n)
	}
	for _, s := range strings.Split(telConc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 4096 {
			return o, fmt.Errorf("-telemetry-concurrency: %q is not a number from 1 to 4096", s)
		}
		o.telemetryConc = append(o.telemetryConc, n)
	}
	if o.telemetryRounds < 0 || o.telemetryRounds > 20 {
		return o, errors.New("-telemetry-rounds must be from 0 to 20")
	}
	for _, s := range strings.Split(sweep, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 4096 {
			return o, fmt.Errorf("-sweep: %q is not a number from 1 to 4096", s)
		}
		if !slices.Contains(o.concurrency, n) {
			o.sweep = append(o.sweep, n)
		}
	}
	known := map[string]bool{}
	for _, m := range modes(o.batch) {
		known[m.name] = true
	}
	for _, s := range strings.Split(modeList, ",") {
		s = strings.TrimSpace(s)
		if !known[s] {
			return o, fmt.Errorf("-modes: unknown mode %q", s)
		}
		o.modes = append(o.modes, s)
	}
	switch {
	case o.duration <= 0 || o.openDuration <= 0 || o.warmup < 0:
		return o, errors.New("-duration and -open-duration must be positive, -warmup not negative")
	case o.duration > 10*time.Minute || o.openDuration > 10*time.Minute:
		return o, errors.New("a phase of more than 10 minutes is surely a typo")
	case o.batch < 2 || o.batch > 500:
		return o, errors.New("-batch must be from 2 to 500 (TRACK_MAX_BATCH_EVENTS)")
	case o.timeout <= 0 || o.timeout > time.Minute:
		return o, errors.New("-cassandra-timeout must be from 1ns to 1m")
	case o.coldStarts < 1 || o.coldStarts > 100:
		return o, errors.New("-cold-starts must be from 1 to 100")
	}
	for _, h := range strings.Split(o.hosts, ",") {
		host, _, err := net.SplitHostPort(strings.TrimSpace(h))
		if err != nil {
			host = strings.TrimSpace(h)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return o, fmt.Errorf("-cassandra-hosts: %q is not a loopback address; the benchmark only talks to this machine", h)
		}
	}
	o.args = args
	return o, nil
}

// bench is one run's state.
type bench struct {
	opts      options
	root      string
	tmp       string
	bin       string
	env       []string // the function's environment, without LISTEN_ADDRESS
	casPID    int
	events    *eventSource
	ackHTTP   acked // events answered 2xx by the function
	ackDirect acked // events saved by the ceiling
	warnings  []string
}

// phase is one measured load.
type phase struct {
	// kind is "direct" (the ceiling), "closed", "sweep" (a closed loop of
	// the latency sweep), "open" or "telemetry" (a closed loop of the
	// telemetry cost phases).
	kind string
	mode mode
	conc int
	rate float64 // open loop: requests/s sent
	res  loadResult
	cpu  cpuUse
	rss  int64   // peak RSS of the function process in KiB; 0 for direct
	ceil float64 // events/s of the direct phase of the same size and concurrency
	// variant names the telemetry setting of a "telemetry" phase.
	variant string
}

func run(ctx context.Context, args []string) error {
	opts, err := parseFlags(args)
	if err != nil {
		return err
	}
	started := time.Now()
	root := harness.Root()
	if opts.out == "" {
		opts.out = filepath.Join(root, "BENCHMARKS.md")
	}
	tmp, err := os.MkdirTemp("", "tracker-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	load0 := loadAverage()

	b := &bench{opts: opts, root: root, tmp: tmp}
	if opts.commitLog {
		return b.commitLogRun(ctx, started)
	}
	logf("starting or reusing Cassandra at %s", opts.hosts)
	if b.casPID, err = startCassandra(root, opts.hosts); err != nil {
		return err
	}
	session, err := openSession(opts.hosts)
	if err != nil {
		return fmt.Errorf("connect to Cassandra at %s: %w", opts.hosts, err)
	}
	defer session.Close()
	casVersion := cassandraVersion(ctx, session)

	logf("building the function")
	if b.bin, err = harness.Build(tmp, ".", "./function/cmd/tracker", "tracker"); err != nil {
		return err
	}

	runID := strconv.FormatInt(time.Now().Unix(), 10)
	keyspace, directKeyspace := "bench_"+runID, "bench_"+runID+"_direct"
	b.events = newEventSource("b" + runID)
	maxInflight := max(slices.Max(opts.concurrency), opts.profileConc) * opts.batch
	b.env = functionEnv(opts, keyspace, maxInflight)
	if !opts.keep {
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for _, ks := range []string{keyspace, directKeyspace} {
				if err := dropKeyspace(dctx, session, ks); err != nil {
					logf("drop keyspace %s: %v", ks, err)
				}
			}
		}()
	}

	if opts.queueProxy {
		return b.queueProxyRun(ctx, session, keyspace, started)
	}

	// The ceiling uses the function's own Store, configured from the same
	// environment, so driver settings, statements and consistency match.
	cfg, err := loadConfig(functionEnv(opts, directKeyspace, maxInflight))
	if err != nil {
		return err
	}
	ceiling, err := store.Open(ctx, cfg.Store(), store.NewLogs(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), cfg.Store()), nil)
	if err != nil {
		return fmt.Errorf("open the ceiling's store: %w", err)
	}
	defer ceiling.Close()

	var phases []phase
	all := modes(opts.batch)
	for _, c := range opts.concurrency {
		for _, size := range []int{1, opts.batch} {
			dm := directMode(size)
			logf("ceiling: %d event(s) per save, concurrency %d", size, c)
			d := b.directPhase(ctx, ceiling, dm, c, cfg.CassandraTimeout)
			phases = append(phases, d)
			for _, m := range all {
				if m.batch != size || !slices.Contains(opts.modes, m.name) {
					continue
				}
				logf("%s: concurrency %d", m.name, c)
				p, err := b.closedPhase(ctx, m, c)
				if err != nil {
					return err
				}
				p.ceil = d.res.eventsPerSecond()
				phases = append(phases, p)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}

	if i := slices.IndexFunc(all, func(m mode) bool { return m.name == "plain" }); i >= 0 && slices.Contains(opts.modes, "plain") {
		for _, c := range opts.sweep {
			logf("plain: concurrency %d (latency sweep)", c)
			p, err := b.closedPhase(ctx, all[i], c)
			if err != nil {
				return err
			}
			p.kind = "sweep"
			phases = append(phases, p)
		}
	}

	for _, m := range all {
		if !slices.Contains(opts.modes, m.name) {
			continue
		}
		var best float64
		for _, p := range phases {
			if p.kind == "closed" && p.mode.name == m.name {
				best = max(best, p.res.requestsPerSecond())
			}
		}
		rate := best / 2
		if opts.openRate > 0 && m.batch == 1 {
			rate = opts.openRate
		}
		if rate <= 0 {
			return fmt.Errorf("%s: no closed-loop rate to take half of", m.name)
		}
		b.quiet(ctx)
		logf("%s: open loop at %.0f requests/s", m.name, rate)
		p, err := b.openPhase(ctx, m, rate)
		if err != nil {
			return err
		}
		phases = append(phases, p)
		if m.name == "plain" || m.name == "plain-batch" {
			dm := directMode(m.batch)
			b.quiet(ctx)
			logf("ceiling: open loop at %.0f saves/s of %d event(s)", rate, m.batch)
			phases = append(phases, b.directOpenPhase(ctx, ceiling, dm, rate, cfg.CassandraTimeout))
		}
	}

	var spans int64
	if opts.telemetryRounds > 0 {
		tel, n, err := b.telemetryPhases(ctx, opts.telemetryConc, opts.telemetryRounds)
		if err != nil {
			return err
		}
		phases, spans = append(phases, tel...), n
	}

	logf("cold starts: %d", opts.coldStarts)
	starts, err := measureColdStart(ctx, opts.coldStarts, b.bin, b.env, tmp, b.events, &b.ackHTTP)
	if err != nil {
		return err
	}

	var profiles []profile
	if opts.profile {
		if profiles, err = b.profile(ctx); err != nil {
			return err
		}
	}

	logf("counting rows")
	counts := map[string][2]int64{}
	for _, t := range tables {
		n, err := countRows(ctx, session, keyspace, t)
		if err != nil {
			return err
		}
		nd, err := countRows(ctx, session, directKeyspace, t)
		if err != nil {
			return err
		}
		counts[t] = [2]int64{n, nd}
	}

	r := report{
		gcPauses: cassandraGCPauses(root, started, time.Now()),
		opts:     opts, started: started, took: time.Since(started), load0: load0, load1: loadAverage(),
		cassandra: casVersion, phases: phases, starts: starts, profiles: profiles, counts: counts,
		ackHTTP: b.ackHTTP.n.Load(), ackDirect: b.ackDirect.n.Load(), warnings: b.warnings,
		maxInflight: maxInflight, spans: spans,
	}
	problems := r.problems()
	if err := r.write(opts.out); err != nil {
		return err
	}
	logf("done in %s", time.Since(started).Round(time.Second))
	if len(problems) > 0 {
		return fmt.Errorf("the run failed:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// directPhase measures the ceiling: Store.Save from c goroutines.
func (b *bench) directPhase(ctx context.Context, ceiling *store.Store, m mode, c int, timeout time.Duration) phase {
	var before, after cpuSnapshot
	res := closedLoop(ctx, c, b.opts.warmup, b.opts.duration, directSender(ceiling, b.events, m.batch, timeout), &b.ackDirect,
		b.marks(0, &before, &after))
	return phase{kind: "direct", mode: m, conc: c, res: res, cpu: before.until(after)}
}

// directOpenPhase sends saves to the ceiling's Store at a fixed rate.
func (b *bench) directOpenPhase(ctx context.Context, ceiling *store.Store, m mode, rate float64, timeout time.Duration) phase {
	var before, after cpuSnapshot
	res := openLoop(ctx, rate, b.opts.warmup, b.opts.openDuration, directSender(ceiling, b.events, m.batch, timeout), &b.ackDirect,
		b.marks(0, &before, &after))
	return phase{kind: "open", mode: m, rate: rate, res: res, cpu: before.until(after)}
}

// directMode describes the ceiling's saves of size events.
func directMode(size int) mode {
	return mode{name: "direct", title: fmt.Sprintf("direct Store.Save, %d event(s)", size), batch: size}
}

// closedPhase measures one mode at concurrency c on a fresh function.
func (b *bench) closedPhase(ctx context.Context, m mode, c int) (phase, error) {
	return b.withFunction(b.bin, nil, func(p *harness.Function) phase {
		var before, after cpuSnapshot
		res := closedLoop(ctx, c, b.opts.warmup, b.opts.duration, httpSender(p.Addr, m, b.events), &b.ackHTTP,
			b.marks(p.PID(), &before, &after))
		return phase{kind: "closed", mode: m, conc: c, res: res, cpu: before.until(after)}
	})
}

// openPhase measures one mode at a fixed rate on a fresh function.
func (b *bench) openPhase(ctx context.Context, m mode, rate float64) (phase, error) {
	return b.withFunction(b.bin, nil, func(p *harness.Function) phase {
		var before, after cpuSnapshot
		res := openLoop(ctx, rate, b.opts.warmup, b.opts.openDuration, httpSender(p.Addr, m, b.events), &b.ackHTTP,
			b.marks(p.PID(), &before, &after))
		return phase{kind: "open", mode: m, rate: rate, res: res, cpu: before.until(after)}
	})
}

// quiet waits, up to a minute, until Cassandra has used less than a
// tenth of a core over a second: the flushes and compactions that the
// closed loops leave behind would otherwise fall into the next open loop's
// window, and into the latency of whichever side (function or ceiling)
// runs first.
func (b *bench) quiet(ctx context.Context) {
	if b.casPID <= 0 {
		return
	}
	start := time.Now()
	prev, _ := cpuSeconds(b.casPID)
	for time.Since(start) < time.Minute && ctx.Err() == nil {
		time.Sleep(time.Second)
		now, err := cpuSeconds(b.casPID)
		if err != nil {
			return
		}
		if now-prev < 0.1 {
			if d := time.Since(start); d > 2*time.Second {
				logf("Cassandra quiet after %s", d.Round(time.Second))
			}
			return
		}
		prev = now
	}
	logf("Cassandra still busy after %s; measuring anyway", time.Since(start).Round(time.Second))
}

// marks returns the window marks of a phase: CPU snapshots of the
// function (fnPID, 0 for none), Cassandra and this process at the
// window's start and end.
func (b *bench) marks(fnPID int, before, after *cpuSnapshot) func(bool) {
	return func(start bool) {
		if start {
			*before = snapshot(fnPID, b.casPID)
		} else {
			*after = snapshot(fnPID, b.casPID)
		}
	}
}

// withFunction starts bin, waits until it is ready, runs measure, reads the
// peak RSS and stops it.
func (b *bench) withFunction(bin string, extraEnv []string, measure func(*harness.Function) phase) (phase, error) {
	p, err := startFunction(bin, append(slices.Clip(b.env), extraEnv...), b.tmp)
	if err != nil {
		return phase{}, err
	}
	if err := p.WaitReady(60 * time.Second); err != nil {
		_ = p.Stop(30 * time.Second)
		return phase{}, fmt.Errorf("%w\n%s", err, p.LogTail(20))
	}
	ph := measure(p)
	rss, rssErr := harness.ProcStatusKB(p.PID(), "VmHWM")
	if err := p.Stop(30 * time.Second); err != nil {
		return ph, err
	}
	if rssErr != nil {
		return ph, rssErr
	}
	ph.rss = rss
	for _, w := range warnings(p) {
		if len(b.warnings) < 20 {
			b.warnings = append(b.warnings, w)
		}
	}
	return ph, nil
}

// functionEnv is the function's environment: this process's, without any
// of the function's own variables, plus the benchmark's settings.
// TRACK_MAX_INFLIGHT admits the largest concurrency times the batch size,
// so that the closed loops measure throughput rather than load shedding.
func functionEnv(o options, keyspace string, maxInflight int) []string {
	own := map[string]bool{"LISTEN_ADDRESS": true}
	for _, name := range function.EnvNames() {
		own[name] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !own[name] {
			env = append(env, kv)
		}
	}
	return append(env,
		"CASSANDRA_HOSTS="+o.hosts,
		"CASSANDRA_KEYSPACE="+keyspace,
		"CASSANDRA_CONSISTENCY="+o.consistency,
		"CASSANDRA_TIMEOUT="+o.timeout.String(),
		"TRACK_MAX_INFLIGHT="+strconv.Itoa(max(maxInflight, 2000)),
		"LOG_LEVEL=warn",
		"LOG_FORMAT=text",
	)
}

// loadConfig reads the function's Config from env (KEY=value pairs)
// exactly as the function does.
func loadConfig(env []string) (function.Config, error) {
	vars := map[string]string{}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		vars[name] = value
	}
	cfg, _, err := function.LoadConfig(function.LookupIn(vars))
	return cfg, err
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// goTool runs `go tool ...` and returns its output.
func goTool(args ...string) (string, error) {
	cmd := exec.Command("go", append([]string{"tool"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
