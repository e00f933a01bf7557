// Package harness runs the pieces the fault and contract suites need as
// real processes: the tracking function built from this repository, and an
// Apache Cassandra node of a suite's own, started and stopped through the
// project's cassandra/local.sh. Nothing here is a stand-in for either.
package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Root is the repository root, found from this source file.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Build compiles a main package into dir and returns the binary's path.
// module is the directory of the go.mod to build in, relative to Root.
func Build(dir, module, pkg, name string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = filepath.Join(Root(), module)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Function is a running function process.
type Function struct {
	Addr    string // 127.0.0.1:port
	URL     string // http://127.0.0.1:port
	LogPath string
	Started time.Time // just before exec, for cold-start figures
	// MetricsAddr is where it serves /metrics (127.0.0.1:port); empty
	// when the caller turned the listener off with METRICS_ADDRESS=.
	MetricsAddr string

	d *daemon
}

// StartFunction runs bin with the environment of this process plus env,
// listening on a free loopback port and logging text, its output in
// logPath.
func StartFunction(bin, logPath string, env ...string) (*Function, error) {
	return StartFunctionEnv(bin, logPath, append(append(os.Environ(), "LOG_FORMAT=text"), env...))
}

// StartFunctionEnv runs bin with env as its whole environment, plus the
// LISTEN_ADDRESS of a free loopback port and, unless env sets
// METRICS_ADDRESS, a metrics listener on another (the default port 9464
// would be taken by the first of the processes that suites start at
// once), its output in logPath.
func StartFunctionEnv(bin, logPath string, env []string) (*Function, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env = append(slices.Clip(env), "LISTEN_ADDRESS="+addr)
	metrics, set := lookupEnv(env, "METRICS_ADDRESS")
	if !set {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		metrics = "127.0.0.1:" + strconv.Itoa(p)
		env = append(env, "METRICS_ADDRESS="+metrics)
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	f := &Function{Addr: addr, URL: "http://" + addr, LogPath: logPath, MetricsAddr: metrics}
	f.Started = time.Now()
	if f.d, err = startCmd(bin, cmd, logPath); err != nil {
		return nil, err
	}
	return f, nil
}

// lookupEnv finds the last value of name in env (NAME=value entries), as
// the process would see it.
func lookupEnv(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// PID is the process id.
func (f *Function) PID() int { return f.d.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (f *Function) Exited() <-chan struct{} { return f.d.exited }

// ExitErr is the process's exit error; call it after Exited is closed.
func (f *Function) ExitErr() error { return f.d.err }

// Signal sends sig to the process.
func (f *Function) Signal(sig os.Signal) error { return f.d.cmd.Process.Signal(sig) }

// WaitExit waits up to timeout for the process to exit.
func (f *Function) WaitExit(timeout time.Duration) error {
	select {
	case <-f.d.exited:
		return f.d.err
	case <-time.After(timeout):
		return fmt.Errorf("pid %d still running after %s", f.PID(), timeout)
	}
}

// Stop sends SIGTERM, as Kubernetes does, and waits up to timeout; then it
// kills the process and says so. A process that has exited already is
// not an error here: fault tests stop functions they have signalled.
func (f *Function) Stop(timeout time.Duration) error {
	select {
	case <-f.d.exited:
		return nil
	default:
	}
	return f.d.terminate(timeout)
}

// PollStatus polls GET path until it answers want, the process exits, or
// timeout passes.
func (f *Function) PollStatus(path string, want int, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for {
		select {
		case <-f.d.exited:
			return fmt.Errorf("the process exited: %v", f.d.err)
		default:
		}
		resp, err := client.Get(f.URL + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s did not answer %d within %s; last: %s", path, want, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitReady polls func-go's readiness endpoint until it answers 200.
func (f *Function) WaitReady(timeout time.Duration) error {
	return f.PollStatus("/health/readiness", http.StatusOK, timeout)
}

// LogTail returns the last n lines of the process's output.
func (f *Function) LogTail(n int) string { return f.d.logTail(n) }

// ProcStatusKB reads a kB field of /proc/<pid>/status, such as VmHWM (peak
// resident set) or VmRSS.
func ProcStatusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %v", field, value, err)
		}
		return kb, nil
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// Node is an Apache Cassandra node of a suite's own, run by
// cassandra/local.sh with its own state directory and ports, so that a suite
// may stop and start it without touching the shared node other suites use.
// Its jars come from the shared cache (CASSANDRA_LIB_DIR).
type Node struct {
	Dir         string // local.sh state: data, logs, pid file
	Host        string // 127.0.0.1:<CQL port>
	StoragePort int
	Heap        string
	// Env is more of local.sh's environment, after the rest: such as
	// CASSANDRA_COMMITLOG_SYNC=batch, or CASSANDRA_UNSAFE_SYSTEM=false for
	// a node whose schema must survive a kill -9.
	Env []string

	// TLS runs the node in local.sh's TLS mode (NewTLSNode): mutual TLS
	// and password authentication, the certificates and passwords in
	// TLSDir.
	TLS bool
	// ServerName is the name local.sh's probe and TLSSession check in
	// the node's certificate; empty checks the host of Host. Set it when
	// a test puts a node certificate without IP 127.0.0.1 in place.
	ServerName string

	// shared marks the node every suite may use (sharedNode): local.sh
	// runs it with its own defaults, and no suite stops it.
	shared bool
}

// SharedHosts is CASSANDRA_HOSTS, the shared node's contact points
// (default 127.0.0.1:9042).
func SharedHosts() string {
	if h := os.Getenv("CASSANDRA_HOSTS"); h != "" {
		return h
	}
	return "127.0.0.1:9042"
}

// sharedNode is the node that make test starts and the integration,
// contract and bench suites share: cassandra/local.sh's own, at
// SharedHosts, kept in CASSANDRA_LOCAL_DIR (default cassandra/.local).
func sharedNode() *Node {
	dir := os.Getenv("CASSANDRA_LOCAL_DIR")
	if dir == "" {
		dir = filepath.Join(Root(), "cassandra", ".local")
	}
	host, _, _ := strings.Cut(SharedHosts(), ",")
	return &Node{Dir: dir, Host: strings.TrimSpace(host), shared: true}
}

// StartShared starts the shared node, or finds it running (local.sh
// reuses a node that answers CQL), and waits until it takes writes within
// timeout, the CASSANDRA_TIMEOUT of the suite's functions.
func StartShared(ctx context.Context, timeout time.Duration) (*Node, error) {
	n := sharedNode()
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	if _, err := n.WarmUp(ctx, timeout); err != nil {
		return nil, err
	}
	return n, nil
}

// NewNode picks free ports for a node kept in dir. It does not start it.
func NewNode(dir string) (*Node, error) {
	cql, err := FreePort()
	if err != nil {
		return nil, err
	}
	storage, err := FreePort()
	if err != nil {
		return nil, err
	}
	return &Node{Dir: dir, Host: "127.0.0.1:" + strconv.Itoa(cql), StoragePort: storage, Heap: "512M"}, nil
}

func (n *Node) localSH(ctx context.Context, command string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(Root(), "cassandra", "local.sh"), command)
	cmd.Env = append(os.Environ(), "CASSANDRA_LOCAL_DIR="+n.Dir, "CASSANDRA_HOSTS="+SharedHosts(),
		"CASSANDRA_LOCAL_TLS=0")
	if n.TLS {
		// Set even when empty: the function's own CASSANDRA_TLS_SERVER_NAME
		// may be in the environment.
		cmd.Env = append(cmd.Env, "CASSANDRA_LOCAL_TLS=1", "CASSANDRA_TLS_SERVER_NAME="+n.ServerName,
			"CASSANDRA_TLS_SERVER_SAN=")
	}
	if !n.shared {
		cmd.Env = append(cmd.Env,
			"CASSANDRA_LIB_DIR="+filepath.Join(Root(), "cassandra", ".local", "lib"),
			"CASSANDRA_HOSTS="+n.Host,
			"CASSANDRA_STORAGE_PORT="+strconv.Itoa(n.StoragePort),
			"CASSANDRA_HEAP="+n.Heap,
			// A throwaway node: skip the fsync of system tables.
			"CASSANDRA_UNSAFE_SYSTEM=true",
		)
	}
	cmd.Env = append(cmd.Env, n.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("cassandra/local.sh %s (node %s in %s): %v\n%s", command, n.Host, n.Dir, err, out)
	}
	return nil
}

// Start starts the node (or finds it running) and returns when CQL answers.
func (n *Node) Start(ctx context.Context) error { return n.localSH(ctx, "start") }

// Stop stops the node gracefully: SIGTERM, on which Cassandra drains.
func (n *Node) Stop(ctx context.Context) error { return n.localSH(ctx, "stop") }

// Up reports whether the node answers CQL.
func (n *Node) Up(ctx context.Context) bool { return n.localSH(ctx, "status") == nil }

// PID is the node's process id, from local.sh's pid file.
func (n *Node) PID() (int, error) {
	b, err := os.ReadFile(filepath.Join(n.Dir, "cassandra.pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, errors.New("bad pid file")
	}
	return pid, nil
}

// LogTail returns the last n lines of the node's system log.
func (n *Node) LogTail(lines int) string {
	b, err := os.ReadFile(filepath.Join(n.Dir, "logs", "system.log"))
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// WarmUp waits until the node takes writes within timeout (see the
// package function WarmUp); the error carries the node's log tail.
func (n *Node) WarmUp(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	logTail := func() string { return n.LogTail(40) }
	if !n.TLS {
		return WarmUp(ctx, n.Host, timeout, logTail)
	}
	cluster, err := n.superuserCluster()
	if err != nil {
		return 0, err
	}
	return warmUp(ctx, cluster, timeout, logTail)
}

// Signal sends sig to the node's JVM, such as SIGSTOP to freeze it.
func (n *Node) Signal(sig syscall.Signal) error {
	pid, err := n.PID()
	if err != nil {
		return err
	}
	return syscall.Kill(pid, sig)
}
