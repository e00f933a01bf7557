package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// daemon is a process that a test starts, such as the function, Prometheus
// or Jaeger: its output goes to a log file, so that a failure can show the
// log's tail, and stop ends it whatever state it is in.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error
}

// startDaemon runs bin with args in dir, its output in logPath.
func startDaemon(name, dir, logPath, bin string, args ...string) (*daemon, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	return startCmd(name, cmd, logPath)
}

// startCmd starts cmd, its output in logPath.
func startCmd(name string, cmd *exec.Cmd, logPath string) (*daemon, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		logFile.Close()
		close(d.exited)
	}()
	return d, nil
}

// stop sends SIGTERM and waits up to timeout, then kills the process and
// says so. A process that had already exited on its own is an error too:
// the test did not see it die.
func (d *daemon) stop(timeout time.Duration) error {
	select {
	case <-d.exited:
		return fmt.Errorf("%s had exited before Stop: %v", d.name, d.err)
	default:
	}
	return d.terminate(timeout)
}

// terminate sends SIGTERM, as Kubernetes does, and waits up to timeout;
// then it kills the process and says so.
func (d *daemon) terminate(timeout time.Duration) error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return nil
	case <-time.After(timeout):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("%s (pid %d) did not exit within %s of SIGTERM; killed", d.name, d.cmd.Process.Pid, timeout)
	}
}

// logTail returns the last n lines of the process's output.
func (d *daemon) logTail(n int) string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// failed wraps err with the process's log tail, for errors of a start.
func (d *daemon) failed(err error) error {
	return fmt.Errorf("%w\n--- %s log (%s), last lines ---\n%s", err, d.name, d.logPath, d.logTail(40))
}

// waitHTTP polls check until it returns nil, the process exits or ctx
// ends; the error names what check said last.
func (d *daemon) waitHTTP(ctx context.Context, what string, check func(context.Context) error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		last := check(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("%s exited before %s: %v", d.name, what, d.err)
		case <-ctx.Done():
			return fmt.Errorf("%s: %s: %w; last: %v", d.name, what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// getStatus sends GET url and returns nil when it answers want.
func getStatus(ctx context.Context, url string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: %s, want %d", url, resp.Status, want)
	}
	return nil
}

// lookPath finds a program of a Debian package on PATH; tests never skip
// for a missing one, so the error says what to install.
func lookPath(program, pkg string) (string, error) {
	path, err := exec.LookPath(program)
	if errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("%s is not on PATH: install Debian's %s package (apt-get install %s)", program, pkg, pkg)
	}
	return path, err
}
