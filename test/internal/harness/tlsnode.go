package harness

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// A TLS node is a Node that cassandra/local.sh runs in its TLS mode
// (CASSANDRA_LOCAL_TLS=1): clients need TLS, a client certificate signed by
// the node's CA, and a password. On its first start local.sh makes each of
// the files below that is missing in TLSDir, so a test may put its own
// there before Start (WritePair); it then creates keyspace tracking (the
// schema of cassandra/schema.cql) and a role tracker that may only SELECT
// and MODIFY in it, the function's production rights.

// NewTLSNode picks free ports for a TLS node kept in dir. It does not
// start it.
func NewTLSNode(dir string) (*Node, error) {
	n, err := NewNode(dir)
	if err != nil {
		return nil, err
	}
	n.TLS = true
	return n, nil
}

// TLSDir holds a TLS node's certificates, keys and passwords.
func (n *Node) TLSDir() string { return filepath.Join(n.Dir, "tls") }

// CAFile is the CA certificate (PEM) that signed the node's and the
// client's certificates; the node trusts the client certificates it signs.
func (n *Node) CAFile() string { return filepath.Join(n.TLSDir(), "ca.pem") }

// CAKeyFile is the CA's private key, for LoadCA.
func (n *Node) CAKeyFile() string { return filepath.Join(n.TLSDir(), "ca-key.pem") }

// NodeCertFile is the node's certificate (PEM; its chain may follow it).
func (n *Node) NodeCertFile() string { return filepath.Join(n.TLSDir(), "node.pem") }

// NodeKeyFile is the node certificate's private key (PKCS#8 PEM).
func (n *Node) NodeKeyFile() string { return filepath.Join(n.TLSDir(), "node-key.pem") }

// ClientCertFile is a client certificate (CN tracker) that the node
// accepts; local.sh's probe presents it too, so a test must keep it valid.
func (n *Node) ClientCertFile() string { return filepath.Join(n.TLSDir(), "client.pem") }

// ClientKeyFile is the client certificate's private key.
func (n *Node) ClientKeyFile() string { return filepath.Join(n.TLSDir(), "client-key.pem") }

// TrackerPasswordFile holds the password of the role tracker, for the
// function's CASSANDRA_PASSWORD_FILE.
func (n *Node) TrackerPasswordFile() string { return filepath.Join(n.TLSDir(), "tracker.password") }

// SuperuserPassword is the password of the superuser cassandra, which
// local.sh replaced with a random one at the node's first start.
func (n *Node) SuperuserPassword() (string, error) {
	return readPassword(filepath.Join(n.TLSDir(), "cassandra.password"))
}

// TrackerPassword is the password of the role tracker.
func (n *Node) TrackerPassword() (string, error) { return readPassword(n.TrackerPasswordFile()) }

func readPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	password := strings.TrimSpace(string(b))
	if password == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return password, nil
}

// FunctionEnv is the function's environment for the node, as the role
// tracker with the client certificate: what `local.sh env` prints.
func (n *Node) FunctionEnv() []string {
	env := []string{
		"CASSANDRA_HOSTS=" + n.Host,
		"CASSANDRA_KEYSPACE=tracking",
		"CASSANDRA_TLS=true",
		"CASSANDRA_TLS_CA_FILE=" + n.CAFile(),
		"CASSANDRA_TLS_CERT_FILE=" + n.ClientCertFile(),
		"CASSANDRA_TLS_KEY_FILE=" + n.ClientKeyFile(),
		"CASSANDRA_USERNAME=tracker",
		"CASSANDRA_PASSWORD_FILE=" + n.TrackerPasswordFile(),
		"CASSANDRA_SCHEMA_CREATE=false",
	}
	if n.ServerName != "" {
		env = append(env, "CASSANDRA_TLS_SERVER_NAME="+n.ServerName)
	}
	return env
}

// TLSClient is how a test connects to a TLS node: the CA to verify it
// with, the client certificate (none when CertFile is empty), the name
// its certificate must carry (empty: the dialled host), and the role.
type TLSClient struct {
	CAFile, CertFile, KeyFile string
	ServerName                string
	Username, Password        string
}

// TLSSession opens a session over TLS to hosts (comma separated), with
// the timeouts of Session. It verifies the nodes' certificates.
func TLSSession(hosts string, c TLSClient) (*gocql.Session, error) {
	cluster, err := tlsCluster(hosts, c)
	if err != nil {
		return nil, err
	}
	cluster.Timeout, cluster.ConnectTimeout = 10*time.Second, 10*time.Second
	cluster.Consistency = gocql.One
	return cluster.CreateSession()
}

// TLSSession opens a session to the node as the superuser with its
// client certificate, to read rows back and to create roles and keyspaces.
func (n *Node) TLSSession() (*gocql.Session, error) {
	cluster, err := n.superuserCluster()
	if err != nil {
		return nil, err
	}
	cluster.Timeout, cluster.ConnectTimeout = 10*time.Second, 10*time.Second
	cluster.Consistency = gocql.One
	return cluster.CreateSession()
}

// SuperuserClient is the TLSClient of the superuser with the node's client
// certificate.
func (n *Node) SuperuserClient() (TLSClient, error) {
	password, err := n.SuperuserPassword()
	if err != nil {
		return TLSClient{}, err
	}
	return TLSClient{
		CAFile: n.CAFile(), CertFile: n.ClientCertFile(), KeyFile: n.ClientKeyFile(),
		ServerName: n.ServerName, Username: "cassandra", Password: password,
	}, nil
}

func (n *Node) superuserCluster() (*gocql.ClusterConfig, error) {
	c, err := n.SuperuserClient()
	if err != nil {
		return nil, err
	}
	return tlsCluster(n.Host, c)
}

// tlsCluster configures TLS 1.2 or newer that verifies the nodes (gocql's
// SslOptions would not, by default), and
// password authentication when c has a username.
func tlsCluster(hosts string, c TLSClient) (*gocql.ClusterConfig, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in %s", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	cluster := gocql.NewCluster(strings.FieldsFunc(hosts, func(r rune) bool { return r == ',' || r == ' ' })...)
	// Without a ServerName gocql verifies each node by the host it dials.
	cluster.SslOpts = &gocql.SslOptions{Config: cfg, EnableHostVerification: true}
	if c.Username != "" {
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: c.Username, Password: c.Password}
	}
	return cluster, nil
}
