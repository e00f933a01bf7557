package harness

import (
	"context"
	"fmt"
	"os"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Suite is what a test package on the shared node needs, once the node
// takes writes: its hosts, a session to read rows back and drop
// keyspaces, and the function's binary, built into a directory of the
// suite's own that also keeps the function logs.
type Suite struct {
	Hosts   string
	Session *gocql.Session
	Bin     string
	Dir     string
}

// StartSuite starts (or reuses) the shared node, waits until it takes
// writes within DefaultTimeout, opens a session and builds the function.
// name prefixes the suite's directory.
func StartSuite(name string) (*Suite, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := StartShared(ctx, DefaultTimeout); err != nil {
		return nil, fmt.Errorf("the shared Cassandra: %w", err)
	}
	s := &Suite{Hosts: SharedHosts()}
	var err error
	if s.Session, err = Session(s.Hosts); err != nil {
		return nil, fmt.Errorf("connect to Cassandra at %s: %w", s.Hosts, err)
	}
	if s.Dir, err = os.MkdirTemp("", "tracker-"+name+"-"); err != nil {
		s.Session.Close()
		return nil, err
	}
	if s.Bin, err = Build(s.Dir, ".", "./function/cmd/tracker", "tracker"); err != nil {
		s.Close(false)
		return nil, err
	}
	return s, nil
}

// Close closes the session and removes the suite's directory, unless
// failed: then it says where the function logs are kept.
func (s *Suite) Close(failed bool) {
	s.Session.Close()
	if failed {
		fmt.Fprintf(os.Stderr, "function logs kept in %s\n", s.Dir)
		return
	}
	os.RemoveAll(s.Dir)
}
