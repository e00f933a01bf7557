package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// startCassandra runs the project's cassandra/local.sh start, which reuses
// a node that already answers CQL, and returns the node's pid when the
// script knows it (0 otherwise).
func startCassandra(root, hosts string) (int, error) {
	script := filepath.Join(root, "cassandra", "local.sh")
	start := exec.Command(script, "start")
	start.Env = append(os.Environ(), "CASSANDRA_HOSTS="+hosts)
	start.Stdout, start.Stderr = os.Stderr, os.Stderr
	if err := start.Run(); err != nil {
		return 0, fmt.Errorf("cassandra/local.sh start: %w", err)
	}
	status := exec.Command(script, "status")
	status.Env = start.Env
	var out bytes.Buffer
	status.Stdout, status.Stderr = &out, &out
	if err := status.Run(); err != nil {
		return 0, fmt.Errorf("cassandra/local.sh status: %w: %s", err, out.String())
	}
	if m := regexp.MustCompile(`\(pid (\d+)`).FindStringSubmatch(out.String()); m != nil {
		pid, _ := strconv.Atoi(m[1])
		return pid, nil
	}
	return 0, nil
}

// openSession opens the benchmark's own session, for reading back rows.
func openSession(hosts string) (*gocql.Session, error) {
	cluster := gocql.NewCluster(strings.Split(hosts, ",")...)
	cluster.Timeout = 30 * time.Second
	cluster.ConnectTimeout = 10 * time.Second
	cluster.Consistency = gocql.All
	return cluster.CreateSession()
}

func cassandraVersion(ctx context.Context, s *gocql.Session) string {
	var v string
	if err := s.Query(`SELECT release_version FROM system.local`).WithContext(ctx).Scan(&v); err != nil {
		return "unknown"
	}
	return v
}

// partitionKeys names the partition key columns of each table the function
// writes, for token-range scans.
var partitionKeys = map[string]string{
	"events_by_id":     "event_id",
	"events_by_user":   "username, day",
	"events_by_target": "target, day, bucket",
}

// tables lists them in the report's order.
var tables = []string{"events_by_id", "events_by_user", "events_by_target"}

// countSplits is the number of token ranges a table is counted in, so that
// no single COUNT comes near the server's range-read timeout.
const countSplits = 256

// countRows counts the rows of keyspace.table exactly, over countSplits
// token ranges read a few at a time.
func countRows(ctx context.Context, s *gocql.Session, keyspace, table string) (int64, error) {
	pk := partitionKeys[table]
	stmt := fmt.Sprintf(`SELECT COUNT(*) FROM %s.%s WHERE token(%s) >= ? AND token(%s) <= ?`, keyspace, table, pk, pk)
	var (
		mu    sync.Mutex
		total int64
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 4)
	)
	// Murmur3 tokens span [-2^63, 2^63-1]; split it in equal closed ranges.
	const step = math.MaxUint64/countSplits + 1
	for i := range countSplits {
		lo := math.MinInt64 + int64(uint64(i)*step)
		hi := lo + int64(step-1)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var n int64
			err := s.Query(stmt, lo, hi).WithContext(ctx).Scan(&n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = fmt.Errorf("count %s.%s: %w", keyspace, table, err)
			}
			total += n
		}()
	}
	wg.Wait()
	return total, first
}

func dropKeyspace(ctx context.Context, s *gocql.Session, keyspace string) error {
	return s.Query(`DROP KEYSPACE IF EXISTS ` + keyspace).WithContext(ctx).Exec()
}

// gcPause is one stop-the-world pause Cassandra logged.
type gcPause struct {
	at       time.Time
	duration time.Duration
}

// gcPausePattern matches the GCInspector lines of Cassandra's system.log,
// which it writes for every pause above gc_log_threshold (200 ms).
var gcPausePattern = regexp.MustCompile(`^\S+\s+\[[^\]]*\] (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) GCInspector\.java:\d+ - .* GC in (\d+)ms`)

// cassandraGCPauses reads the pauses logged between from and to from the
// log of the node that cassandra/local.sh runs; nil when there is no log.
func cassandraGCPauses(root string, from, to time.Time) []gcPause {
	dir := os.Getenv("CASSANDRA_LOCAL_DIR")
	if dir == "" {
		dir = filepath.Join(root, "cassandra", ".local")
	}
	b, err := os.ReadFile(filepath.Join(dir, "logs", "system.log"))
	if err != nil {
		return nil
	}
	var out []gcPause
	for _, line := range strings.Split(string(b), "\n") {
		m := gcPausePattern.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, err := time.ParseInLocation("2006-01-02 15:04:05,000", m[1], time.Local)
		if err != nil || at.Before(from) || at.After(to) {
			continue
		}
		ms, _ := strconv.Atoi(m[2])
		out = append(out, gcPause{at: at, duration: time.Duration(ms) * time.Millisecond})
	}
	return out
}
