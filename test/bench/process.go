package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"tracker/test/internal/harness"
)

// startFunction execs bin with env as its whole environment on a free
// loopback port, its log in a new file of dir.
func startFunction(bin string, env []string, dir string) (*harness.Function, error) {
	log, err := os.CreateTemp(dir, "tracker-*.log")
	if err != nil {
		return nil, err
	}
	log.Close()
	return harness.StartFunctionEnv(bin, log.Name(), env)
}

// warnings returns the log lines of p at WARN or above (the benchmark
// runs with LOG_LEVEL=warn, so that is every line the function logged).
func warnings(p *harness.Function) []string {
	b, _ := os.ReadFile(p.LogPath)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return out
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
