package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// fnProcess is one running function binary.
type fnProcess struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	exited  chan error
	started time.Time
}

// startFunction execs bin with env on a free loopback port. started is
// taken just before exec, for the cold-start figures.
func startFunction(bin string, env []string, logDir string) (*fnProcess, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logFile, err := os.CreateTemp(logDir, "tracker-*.log")
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(env, "LISTEN_ADDRESS="+addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p := &fnProcess{cmd: cmd, addr: addr, logPath: logFile.Name(), exited: make(chan error, 1)}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

func (p *fnProcess) url(path string) string { return "http://" + p.addr + path }

func (p *fnProcess) pid() int { return p.cmd.Process.Pid }

// waitReady polls /health/readiness until it answers 200.
func (p *fnProcess) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			p.exited <- err
			return fmt.Errorf("the function exited: %v\n%s", err, p.logTail(20))
		default:
		}
		resp, err := client.Get(p.url("/health/readiness"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s\n%s", timeout, p.logTail(20))
}

// stop sends SIGTERM, as Kubernetes does, and waits for the exit; after
// 30 s it kills the process.
func (p *fnProcess) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("the function did not exit within 30 s of SIGTERM")
	}
}

// logTail returns the last n lines of the function's log.
func (p *fnProcess) logTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// warnings returns the log lines at WARN or above (the benchmark runs
// with LOG_LEVEL=warn, so that is every line the function logged).
func (p *fnProcess) warnings() []string {
	b, _ := os.ReadFile(p.logPath)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return out
}

// buildBinary compiles a main package of module dir into dir/bin.
func buildBinary(moduleDir, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = moduleDir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; it is 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds returns utime+stime of pid (0 for this process) in seconds.
func cpuSeconds(pid int) (float64, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name, field 2, may hold spaces; fields count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: unexpected format", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: unexpected format", path)
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (utime + stime) / clockTicks, nil
}

// machineCPU returns the busy and total CPU seconds of the whole machine
// from /proc/stat.
func machineCPU() (busy, total float64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, errors.New("/proc/stat: unexpected format")
	}
	for i, s := range f[1:] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, 0, err
		}
		// guest and guest_nice (fields 9, 10) are already in user and nice.
		if i >= 8 {
			break
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy / clockTicks, total / clockTicks, nil
}

// statusKiB returns a kB field of /proc/<pid>/status, such as VmHWM.
func statusKiB(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), ":")
		if ok && name == field {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// cpuSnapshot is the CPU time of each party at one moment.
type cpuSnapshot struct {
	function, cassandra, generator, busy, total float64
}

// snapshot reads the CPU seconds of the function (fnPID, 0 for none),
// Cassandra (casPID, 0 when unknown), this process and the machine.
func snapshot(fnPID, casPID int) cpuSnapshot {
	var s cpuSnapshot
	if fnPID > 0 {
		s.function, _ = cpuSeconds(fnPID)
	}
	if casPID > 0 {
		s.cassandra, _ = cpuSeconds(casPID)
	}
	s.generator, _ = cpuSeconds(0)
	s.busy, s.total, _ = machineCPU()
	return s
}

// cpuUse is the CPU seconds each party used between two snapshots.
type cpuUse cpuSnapshot

// machine is the cores the whole machine used, on average.
func (u cpuUse) machine() float64 {
	if u.total <= 0 {
		return 0
	}
	return u.busy * float64(runtime.NumCPU()) / u.total
}

// others is the cores that other processes used, on average: the machine's
// busy time less the function's, Cassandra's and the generator's.
func (u cpuUse) others() float64 {
	if u.total <= 0 {
		return 0
	}
	wall := u.total / float64(runtime.NumCPU())
	return max(0, (u.busy-u.function-u.cassandra-u.generator)/wall)
}

func (a cpuSnapshot) until(b cpuSnapshot) cpuUse {
	return cpuUse{
		function:  b.function - a.function,
		cassandra: b.cassandra - a.cassandra,
		generator: b.generator - a.generator,
		busy:      b.busy - a.busy,
		total:     b.total - a.total,
	}
}

// tempDir makes the directory for the run's binaries and logs.
func tempDir() (string, error) {
	return os.MkdirTemp("", "tracker-bench-*")
}

// binPath names a binary in dir.
func binPath(dir, name string) string { return filepath.Join(dir, name) }
