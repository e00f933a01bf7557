package store

import (
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Consistency is a Cassandra consistency level; its text form is the CQL
// name (LOCAL_QUORUM, ONE, ...).
type Consistency = gocql.Consistency

// Config is what the store needs to reach Cassandra and lay out its
// tables, and nothing else. The function fills it from its environment.
type Config struct {
	// Hosts are the contact points, host or host:port.
	Hosts []string
	// Keyspace holds the event tables.
	Keyspace string
	// Consistency is the consistency level of every write and read.
	Consistency Consistency
	// LocalDC, when set, keeps queries in this data center.
	LocalDC string
	// Username enables password authentication when set: with Password,
	// or with the content of PasswordFile, read again when it changes.
	Username, Password, PasswordFile string
	// TLS, when set, encrypts every connection with TLS.
	TLS *TLSConfig
	// Timeout bounds one query, including the driver's wait for a
	// connection.
	Timeout time.Duration
	// ConnectTimeout bounds one attempt to open a connection.
	ConnectTimeout time.Duration
	// SpeculativeDelay, when positive, sends a statement that has had no
	// answer within it to the next node of its plan as well, once; the
	// first answer counts. Every statement is idempotent, so the second
	// attempt writes the same rows. It keeps one slow or frozen node, as
	// coordinator, from failing the writes routed to it.
	SpeculativeDelay time.Duration
	// SchemaCreate creates the keyspace and tables when they are missing.
	SchemaCreate bool
	// Replication is the CQL replication map of a keyspace it creates.
	Replication string
}

// serialConsistency is the consistency of the Paxos round of a claim
// (claim.go): within the local data center when writes are.
func (c Config) serialConsistency() gocql.Consistency {
	switch c.Consistency {
	case gocql.LocalQuorum, gocql.LocalOne:
		return gocql.LocalSerial
	}
	if c.LocalDC != "" {
		return gocql.LocalSerial
	}
	return gocql.Serial
}
