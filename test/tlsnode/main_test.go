// Package tlsnode runs the function against a real Cassandra node that
// requires TLS with client certificates and passwords (cassandra/local.sh's
// TLS mode, on a directory and ports of the suite's own): the right
// credentials store events; a wrong CA, a missing client certificate, a
// wrong password, a name the node's certificate lacks, and TLS on one side
// only each leave the function serving 503s, unready, with one log line
// that says why; a renewed client certificate is used without a restart;
// and the production role, which may not create tables, says so.
//
// The tests run one after another: some restart the node.
package tlsnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

var (
	// node is the suite's TLS node; bin the function's binary; dir keeps
	// the logs and certificates of the suite.
	node *harness.Node
	bin  string
	dir  string
	// plainHosts is the shared plain node, for TLS against a node
	// without it.
	plainHosts string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	if dir, err = os.MkdirTemp("", "tracker-tls-"); err != nil {
		return fail("%v", err)
	}
	if _, err := harness.StartShared(ctx, harness.DefaultTimeout); err != nil {
		return fail("the shared Cassandra: %v", err)
	}
	plainHosts = harness.SharedHosts()
	if bin, err = harness.Build(dir, ".", "./function/cmd/tracker", "tracker"); err != nil {
		return fail("%v", err)
	}
	if node, err = harness.NewTLSNode(filepath.Join(dir, "cassandra")); err != nil {
		return fail("%v", err)
	}
	if err := node.Start(ctx); err != nil {
		return fail("start the TLS node: %v", err)
	}
	code := m.Run()
	if err := node.Stop(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "tlsnode: stop the TLS node: %v\n", err)
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "tlsnode: logs and certificates kept in %s\n", dir)
	} else {
		os.RemoveAll(dir)
	}
	return code
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "tlsnode: "+format+"\n", args...)
	return 1
}
