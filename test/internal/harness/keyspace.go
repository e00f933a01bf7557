package harness

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

var keyspaceSeq atomic.Int64

// Keyspace names a fresh keyspace for t (KeyspaceName) for the function to
// create; t's cleanup drops it through session when the test passed, so
// that a failure keeps its rows to look at.
func Keyspace(t testing.TB, session *gocql.Session, prefix string) string {
	t.Helper()
	ks := KeyspaceName(t, prefix)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("keyspace %s kept for a look at its rows", ks)
			return
		}
		if err := DropKeyspace(session, ks); err != nil {
			t.Logf("drop keyspace %s: %v", ks, err)
		}
	})
	return ks
}

// KeyspaceName is a keyspace name no other test uses: prefix, the test's
// name in lower case, and a number.
func KeyspaceName(t testing.TB, prefix string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	name := b.String()
	if len(name) > 24 {
		name = name[:24]
	}
	return fmt.Sprintf("%s_%s_%d_%d", prefix, name, time.Now().UnixNano()%1e9, keyspaceSeq.Add(1))
}

// DropKeyspace drops keyspace ks if it exists.
func DropKeyspace(session *gocql.Session, ks string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return session.Query("DROP KEYSPACE IF EXISTS " + ks).WithContext(ctx).Exec()
}

// Session opens a session to hosts (comma separated) for reading rows
// back and for schema changes, with timeouts that suit a busy test
// machine rather than the function's.
func Session(hosts string) (*gocql.Session, error) {
	cluster := gocql.NewCluster(strings.FieldsFunc(hosts, func(r rune) bool { return r == ',' || r == ' ' })...)
	cluster.Timeout, cluster.ConnectTimeout = 10*time.Second, 10*time.Second
	cluster.Consistency = gocql.One
	return cluster.CreateSession()
}
