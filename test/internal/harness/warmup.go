package harness

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Warm-up of a node that has just started: its JVM still interprets the
// write path and compiles it under load, and its first writes can take
// longer than a test's CASSANDRA_TIMEOUT (a 507 ms G1 pause of a fresh node,
// on a machine busy with other suites, failed every write of a
// one-second-timeout test for 20 s). A suite that counts successes waits
// for a node that takes writes first.
const (
	// warmRounds is how many rounds in a row must succeed.
	warmRounds = 10
	// warmWrites is the writes of one round, sent at once: half plain
	// INSERTs, half lightweight transactions, as the function sends.
	warmWrites = 16
	// warmKeyspace holds the warm-up table; the suites' keyspaces never
	// see it.
	warmKeyspace = "tracker_warmup"
)

// WarmUp writes to the node at host until warmRounds rounds of warmWrites
// concurrent writes in a row have each been acknowledged within timeout
// (the test's own CASSANDRA_TIMEOUT), or until ctx ends. On failure the
// error says so, with the last write error and the tail of the node's log
// (logTail may be nil). It returns how long the warm-up took.
func WarmUp(ctx context.Context, host string, timeout time.Duration, logTail func() string) (time.Duration, error) {
	return warmUp(ctx, gocql.NewCluster(host), timeout, logTail)
}

// warmUp is WarmUp through cluster, a configuration of one host (with TLS
// and a password for a TLS node) whose timeouts it sets.
func warmUp(ctx context.Context, cluster *gocql.ClusterConfig, timeout time.Duration, logTail func() string) (time.Duration, error) {
	began := time.Now()
	host := strings.Join(cluster.Hosts, ",")
	fail := func(format string, args ...any) (time.Duration, error) {
		msg := fmt.Sprintf("node %s: ", host) + fmt.Sprintf(format, args...)
		if logTail != nil {
			msg += "\n--- node log, last lines ---\n" + logTail()
		}
		return time.Since(began), fmt.Errorf("%s", msg)
	}
	cluster.Timeout, cluster.ConnectTimeout = 10*time.Second, 10*time.Second
	cluster.Consistency = gocql.One
	cluster.DefaultIdempotence = true
	session, err := cluster.CreateSession()
	if err != nil {
		return fail("warm-up: connect: %v", err)
	}
	defer session.Close()
	for _, stmt := range []string{
		`CREATE KEYSPACE IF NOT EXISTS ` + warmKeyspace + ` WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
		`CREATE TABLE IF NOT EXISTS ` + warmKeyspace + `.writes (id text PRIMARY KEY, at timestamp)`,
	} {
		if err := execWithin(ctx, session, 60*time.Second, stmt); err != nil {
			return fail("warm-up: %s: %v", strings.Fields(stmt)[1], err)
		}
	}
	run := time.Now().UnixNano()
	var last error
	for round, good := 0, 0; good < warmRounds; round++ {
		if ctx.Err() != nil {
			return fail("did not take %d rounds of %d writes in a row within %s each after %s; last error: %v",
				warmRounds, warmWrites, timeout, time.Since(began).Round(time.Millisecond), last)
		}
		if err := warmRound(ctx, session, timeout, run, round); err != nil {
			good, last = 0, err
			continue
		}
		good++
	}
	return time.Since(began), nil
}

// warmRound sends warmWrites writes at once and returns the first error.
func warmRound(ctx context.Context, session *gocql.Session, timeout time.Duration, run int64, round int) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range warmWrites {
		stmt := `INSERT INTO ` + warmKeyspace + `.writes (id, at) VALUES (?, ?)`
		if i%2 == 1 {
			stmt += ` IF NOT EXISTS`
		}
		id := fmt.Sprintf("%d-%d-%d", run, round, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := execWithin(ctx, session, timeout, stmt, id, time.Now()); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func execWithin(ctx context.Context, session *gocql.Session, timeout time.Duration, stmt string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return session.Query(stmt, args...).WithContext(ctx).Exec()
}

// DefaultTimeout is the function's default CASSANDRA_TIMEOUT, the bound a
// suite that leaves it unset warms its node up to.
const DefaultTimeout = 2 * time.Second
