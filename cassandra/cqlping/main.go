// Command cqlping checks that a Cassandra node answers CQL.
//
// It connects to one host:port, runs
//
//	SELECT release_version FROM system.local
//
// and prints the version. It exits 0 on success and 1 (with the error on
// stderr) otherwise, so scripts can poll it until a node is ready; an open
// TCP port alone is not enough, the node must answer a real query.
//
// Usage:
//
//	cqlping [-timeout 5s] [host:port]
//
// The address defaults to 127.0.0.1:9042. cassandra/local.sh builds this
// once into its cache folder and polls with it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

func main() {
	timeout := flag.Duration("timeout", 5*time.Second, "overall deadline for connecting and querying")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [-timeout 5s] [host:port]\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 1 {
		flag.Usage()
		os.Exit(2)
	}
	addr := "127.0.0.1:9042"
	if flag.NArg() == 1 {
		addr = flag.Arg(0)
	}

	version, err := ping(addr, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cqlping %s: %v\n", addr, err)
		os.Exit(1)
	}
	fmt.Println(version)
}

// ping opens a one-connection session to addr and returns the node's
// release_version. The whole exchange is bounded by timeout.
func ping(addr string, timeout time.Duration) (string, error) {
	cluster := gocql.NewCluster(addr)
	cluster.ConnectTimeout = timeout
	cluster.Timeout = timeout
	cluster.NumConns = 1
	// Talk to exactly this node; do not discover peers.
	cluster.DisableInitialHostLookup = true
	cluster.Consistency = gocql.One

	session, err := cluster.CreateSession()
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer session.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var version string
	if err := session.Query("SELECT release_version FROM system.local").ScanContext(ctx, &version); err != nil {
		return "", fmt.Errorf("query: %w", err)
	}
	return version, nil
}
