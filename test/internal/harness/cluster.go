package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Cluster is cassandra/local.sh's three-node cluster
// (CASSANDRA_LOCAL_CLUSTER=1): nodes 1, 2 and 3 on 127.0.0.1-3, CQL port
// ClusterPort, one data center dc1. Every method runs local.sh, so the
// suites drive the nodes exactly as a developer does by hand.
type Cluster struct{}

// ClusterNodes is how many nodes the cluster has, numbered from 1.
const ClusterNodes = 3

// ClusterPort is the CQL port of every node of the cluster.
const ClusterPort = 9242

// NodeAddr is node n's address without the port (127.0.0.n).
func (Cluster) NodeAddr(n int) string { return "127.0.0." + strconv.Itoa(n) }

// NodeHost is node n's CQL host:port.
func (c Cluster) NodeHost(n int) string { return c.NodeAddr(n) + ":" + strconv.Itoa(ClusterPort) }

// Hosts lists every node's host:port, comma separated: the function's
// CASSANDRA_HOSTS.
func (c Cluster) Hosts() string {
	hosts := make([]string, ClusterNodes)
	for n := 1; n <= ClusterNodes; n++ {
		hosts[n-1] = c.NodeHost(n)
	}
	return strings.Join(hosts, ",")
}

// NodeDir is where node n keeps its state.
func (Cluster) NodeDir(n int) string {
	return filepath.Join(Root(), "cassandra", ".local-cluster", "node"+strconv.Itoa(n))
}

func (Cluster) localSH(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(Root(), "cassandra", "local.sh"), args...)
	// The suites kill nodes with SIGKILL, so their system tables, schema
	// included, must be as durable as in production: never
	// CASSANDRA_UNSAFE_SYSTEM, which CI sets for the other nodes.
	cmd.Env = append(os.Environ(), "CASSANDRA_LOCAL_CLUSTER=1", "CASSANDRA_LOCAL_TLS=0", "CASSANDRA_UNSAFE_SYSTEM=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("CASSANDRA_LOCAL_CLUSTER=1 cassandra/local.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (c Cluster) nodeCmd(ctx context.Context, command string, n int) error {
	_, err := c.localSH(ctx, command, strconv.Itoa(n))
	return err
}

// Start starts the nodes that are not running, one after another, and
// returns once each answers CQL.
func (c Cluster) Start(ctx context.Context) error {
	_, err := c.localSH(ctx, "start")
	return err
}

// Stop stops every node gracefully (SIGTERM: Cassandra drains).
func (c Cluster) Stop(ctx context.Context) error {
	_, err := c.localSH(ctx, "stop")
	return err
}

// StartNode starts node n, or finds it running, and returns once it
// answers CQL.
func (c Cluster) StartNode(ctx context.Context, n int) error { return c.nodeCmd(ctx, "start", n) }

// StopNode stops node n gracefully: SIGTERM, on which Cassandra drains.
func (c Cluster) StopNode(ctx context.Context, n int) error { return c.nodeCmd(ctx, "stop", n) }

// KillNode kills node n with SIGKILL and returns once it is gone.
func (c Cluster) KillNode(ctx context.Context, n int) error { return c.nodeCmd(ctx, "kill", n) }

// FreezeNode stops node n's process with SIGSTOP.
func (c Cluster) FreezeNode(ctx context.Context, n int) error { return c.nodeCmd(ctx, "freeze", n) }

// ThawNode lets a frozen node n run again (SIGCONT).
func (c Cluster) ThawNode(ctx context.Context, n int) error { return c.nodeCmd(ctx, "thaw", n) }

// Nodetool runs nodetool with args against node n and returns its output.
func (c Cluster) Nodetool(ctx context.Context, n int, args ...string) (string, error) {
	return c.localSH(ctx, append([]string{"nodetool", strconv.Itoa(n)}, args...)...)
}

// Ring is the ring as node n's gossip sees it: each node's address and
// nodetool's state, such as UN (up, normal) or DN (down, normal).
func (c Cluster) Ring(ctx context.Context, n int) (map[string]string, error) {
	out, err := c.localSH(ctx, "ring", strconv.Itoa(n))
	if err != nil {
		return nil, err
	}
	ring := map[string]string{}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) == 2 {
			ring[f[0]] = f[1]
		}
	}
	return ring, nil
}

// WaitRing polls until every node in observers sees every node of want
// in the state want gives (UN, DN), or ctx ends. Each look is a nodetool
// run, a JVM of its own that costs about two seconds of CPU, which the
// nodes under test would otherwise have: a round stops at the first
// observer that disagrees, and rounds are two seconds apart.
func (c Cluster) WaitRing(ctx context.Context, observers []int, want map[int]string) error {
	var last string
	for {
		last = c.ringDisagrees(ctx, observers, want)
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the ring did not settle: %s", last)
		case <-time.After(2 * time.Second):
		}
	}
}

// ringDisagrees says how the first observer that does not see want sees
// the ring, or "" when every observer sees it.
func (c Cluster) ringDisagrees(ctx context.Context, observers []int, want map[int]string) string {
	for _, o := range observers {
		ring, err := c.Ring(ctx, o)
		if err != nil {
			return err.Error()
		}
		for n, state := range want {
			if ring[c.NodeAddr(n)] != state {
				return fmt.Sprintf("node %d sees %s as %q, not %s", o, c.NodeAddr(n), ring[c.NodeAddr(n)], state)
			}
		}
	}
	return ""
}

// PID is node n's process id, from local.sh's pid file.
func (c Cluster) PID(n int) (int, error) {
	b, err := os.ReadFile(filepath.Join(c.NodeDir(n), "cassandra.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// LogTail returns the last lines of node n's system log.
func (c Cluster) LogTail(n, lines int) string {
	return (&Node{Dir: c.NodeDir(n)}).LogTail(lines)
}

// NodeSession opens a session that sends every query to node n alone,
// as coordinator: to read what one replica holds (at consistency ONE a
// coordinator that is a replica reads its own data first), or node n's
// virtual tables.
func (c Cluster) NodeSession(n int) (*gocql.Session, error) {
	cluster := gocql.NewCluster(c.NodeHost(n))
	cluster.HostFilter = gocql.WhiteListHostFilter(c.NodeAddr(n))
	cluster.Timeout, cluster.ConnectTimeout = 10*time.Second, 10*time.Second
	cluster.Consistency = gocql.One
	cluster.PoolConfig.HostSelectionPolicy = gocql.RoundRobinHostPolicy()
	return cluster.CreateSession()
}
