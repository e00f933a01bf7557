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
//	cqlping [-timeout 5s] [-ca FILE] [-cert FILE -key FILE] [-server-name NAME]
//	        [-username U -password-file FILE] [-exec FILE] [host:port]
//
// The address defaults to 127.0.0.1:9042. With -ca (or -cert and -key, or
// -server-name) it speaks TLS 1.2 or newer and verifies the node's
// certificate against the CA file (the system's roots without one) and the
// name: -server-name, else the host it dials. -cert and -key present a
// client certificate, for nodes that require one. -username and
// -password-file log in with Cassandra's PasswordAuthenticator; the
// password is the whole file without its trailing CR and LF characters,
// read as the function's store reads it, and is never printed.
//
// With -exec FILE it runs each ';'-separated CQL statement of the file in
// order instead of the query above, skipping '--' comment lines and blank
// statements, and exits; each statement has the whole -timeout.
//
// cassandra/local.sh builds this once into its cache folder, polls with
// it, and creates the schema and roles of its TLS node with -exec.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// options are the command's flags.
type options struct {
	timeout      time.Duration
	caFile       string
	certFile     string
	keyFile      string
	serverName   string
	username     string
	passwordFile string
	execFile     string
}

func main() {
	var o options
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "deadline for connecting, and for the query or each -exec statement")
	flag.StringVar(&o.caFile, "ca", "", "PEM `file` of the CA(s) that signed the node's certificate; turns TLS on")
	flag.StringVar(&o.certFile, "cert", "", "PEM `file` of the client certificate (mutual TLS; with -key)")
	flag.StringVar(&o.keyFile, "key", "", "PEM `file` of the client certificate's private key")
	flag.StringVar(&o.serverName, "server-name", "", "`name` the node's certificate must carry (default: the dialled host)")
	flag.StringVar(&o.username, "username", "", "log in as this `role` (with -password-file)")
	flag.StringVar(&o.passwordFile, "password-file", "", "`file` holding the password of -username")
	flag.StringVar(&o.execFile, "exec", "", "run the ';'-separated CQL statements of `file` and exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [-timeout 5s] [-ca FILE] [-cert FILE -key FILE] [-server-name NAME] [-username U -password-file FILE] [-exec FILE] [host:port]\n", os.Args[0])
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

	if err := run(addr, o); err != nil {
		fmt.Fprintf(os.Stderr, "cqlping %s: %v\n", addr, err)
		os.Exit(1)
	}
}

// run connects to addr and runs the -exec file or the version query.
func run(addr string, o options) error {
	cluster, err := newCluster(addr, o)
	if err != nil {
		return err
	}
	session, err := cluster.CreateSession()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer session.Close()

	if o.execFile != "" {
		return execFile(session, o.execFile, o.timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var version string
	if err := session.Query("SELECT release_version FROM system.local").ScanContext(ctx, &version); err != nil {
		return fmt.Errorf("query: %w", err)
	}
	fmt.Println(version)
	return nil
}

// newCluster configures a one-connection session to exactly addr, with
// TLS and a password when the options ask for them.
func newCluster(addr string, o options) (*gocql.ClusterConfig, error) {
	cluster := gocql.NewCluster(addr)
	cluster.ConnectTimeout = o.timeout
	cluster.Timeout = o.timeout
	cluster.NumConns = 1
	// Talk to exactly this node; do not discover peers.
	cluster.DisableInitialHostLookup = true
	cluster.Consistency = gocql.One

	if (o.username == "") != (o.passwordFile == "") {
		return nil, errors.New("-username and -password-file go together")
	}
	if o.username != "" {
		password, err := readPassword(o.passwordFile)
		if err != nil {
			return nil, err
		}
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: o.username, Password: password}
	}

	if (o.certFile == "") != (o.keyFile == "") {
		return nil, errors.New("-cert and -key go together")
	}
	if o.caFile == "" && o.certFile == "" && o.serverName == "" {
		return cluster, nil
	}
	cfg, err := tlsConfig(addr, o)
	if err != nil {
		return nil, err
	}
	// gocql's SslOptions skip verification unless told otherwise; with a
	// Config of our own, which does not skip it, the node is verified.
	cluster.SslOpts = &gocql.SslOptions{Config: cfg, EnableHostVerification: true}
	return cluster, nil
}

// tlsConfig is TLS 1.2 or newer, verifying the node against -ca (or the
// system's roots) and -server-name (or the host of addr), presenting the
// client certificate when there is one.
func tlsConfig(addr string, o options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.serverName}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca: no PEM certificate in %s", o.caFile)
		}
	}
	if o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("-cert/-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// readPassword returns the content of file without its trailing '\r' and
// '\n' characters, which must leave something: exactly what the function's
// store (function/store ReadPassword) logs in with, so that a file this
// probe accepts works for the function too.
func readPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("-password-file: %w", err)
	}
	password := strings.TrimRight(string(b), "\r\n")
	if password == "" {
		return "", fmt.Errorf("-password-file: %s is empty", file)
	}
	return password, nil
}

// execFile runs the statements of file one by one, each within timeout.
// An error names the statement by its number and first words only: the
// statements may hold passwords.
func execFile(session *gocql.Session, file string, timeout time.Duration) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("-exec: %w", err)
	}
	for i, stmt := range splitStatements(string(b)) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := session.Query(stmt).WithContext(ctx).Exec()
		cancel()
		if err != nil {
			return fmt.Errorf("%s: statement %d (%s ...): %w", file, i+1, firstWords(stmt, 3), err)
		}
	}
	return nil
}

// splitStatements drops the lines that start with "--" and splits the rest
// at each ';' outside a quoted string, dropping blank statements.
func splitStatements(text string) []string {
	var kept strings.Builder
	for line := range strings.Lines(text) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			kept.WriteString(line)
		}
	}
	var (
		stmts []string
		cur   strings.Builder
		quote rune // the quote we are inside of, or 0
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for _, r := range kept.String() {
		switch {
		case quote != 0 && r == quote:
			// A doubled quote ('') reopens at once: still one string.
			quote = 0
		case quote == 0 && (r == '\'' || r == '"'):
			quote = r
		case quote == 0 && r == ';':
			flush()
			continue
		}
		cur.WriteRune(r)
	}
	flush()
	return stmts
}

// firstWords returns the first n words of s.
func firstWords(s string, n int) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(n, len(f))], " ")
}
