package store

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// This file is how the store proves who it is and checks whom it talks
// to: TLS with the nodes' authority, a client certificate for mutual TLS,
// and a password. Every file is read again for each new connection when
// it has changed, so that certificates and passwords that cert-manager or
// Kubernetes replace in place are used without a restart.

// TLSConfig is how the store speaks TLS to the nodes.
type TLSConfig struct {
	// CAFile is the PEM bundle of the authorities that sign the nodes'
	// certificates; empty trusts the system's roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key (PEM),
	// for mutual TLS; both or neither.
	CertFile, KeyFile string
	// ServerName is the name the nodes' certificates must carry; empty
	// checks each node by the address it is dialled at.
	ServerName string
	// InsecureSkipVerify accepts any node certificate.
	InsecureSkipVerify bool
}

// passwordAuthenticators are the server authenticators the store answers
// with its password: a node that asks through anything else gets no
// password, so a misconfigured or impostor server cannot collect it.
var passwordAuthenticators = []string{
	"org.apache.cassandra.auth.PasswordAuthenticator",
	"com.datastax.bdp.cassandra.auth.DseAuthenticator",
}

// ReadPassword reads a password file: its content without the line end a
// file written by hand usually has. An empty password is an error.
func ReadPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	p := string(bytes.TrimRight(b, "\r\n"))
	if p == "" {
		return "", errors.New("the file is empty")
	}
	return p, nil
}

// ReadCA reads a PEM bundle of certificates into a pool.
func ReadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}

// ReadKeyPair reads a client certificate and its key, and checks that the
// key belongs to the certificate and that the certificate is valid at now.
// It returns the pair and the certificate itself, for its subject and
// expiry.
func ReadKeyPair(certFile, keyFile string, now time.Time) (tls.Certificate, *x509.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	if block, _ := pem.Decode(certPEM); block == nil || block.Type != "CERTIFICATE" {
		return tls.Certificate{}, nil, errors.New("no PEM certificate in it")
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("the key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The message says whether the key is not PEM or not the
		// certificate's; it never holds the key.
		return tls.Certificate{}, nil, err
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return tls.Certificate{}, nil, err
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		return tls.Certificate{}, nil, fmt.Errorf("the certificate of %q expired at %s", leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Add(clockSkew).Before(leaf.NotBefore):
		return tls.Certificate{}, nil, fmt.Errorf("the certificate of %q is not valid before %s", leaf.Subject, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return pair, leaf, nil
}

// clockSkew is how far ahead of this machine's clock a certificate's
// start may be: a renewal just issued elsewhere may start a moment later
// than here.
const clockSkew = 5 * time.Minute

// fileCache keeps what was read of a file until the file changes: the
// same size, modification time and inode read as the same content, so
// each connection costs a stat, not a parse.
type fileCache[T any] struct {
	mu    sync.Mutex
	stamp string // of the files last read
	value T
}

// renewalGap is how long get waits before it reads files again that did
// not serve: a certificate renewed in place may be new while its key is
// still being written.
const renewalGap = 100 * time.Millisecond

func (c *fileCache[T]) get(read func() (T, error), paths ...string) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		stamp, err := stampOf(paths)
		if err != nil {
			return zero, err
		}
		c.mu.Lock()
		if stamp == c.stamp {
			v := c.value
			c.mu.Unlock()
			return v, nil
		}
		c.mu.Unlock()
		v, err := read()
		after, _ := stampOf(paths)
		switch {
		case err == nil && after == stamp:
			c.mu.Lock()
			c.stamp, c.value = stamp, v
			c.mu.Unlock()
			return v, nil
		case attempt == 0:
			// Changed while being read, or not valid yet: once more.
			time.Sleep(renewalGap)
			continue
		case err != nil:
			return zero, err
		}
		return v, nil // still changing: good for this connection, not kept
	}
}

// stampOf is what tells the files' contents apart without reading them.
func stampOf(paths []string) (string, error) {
	stamp := ""
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%d %d %d;", fi.Size(), fi.ModTime().UnixNano(), inode(fi))
	}
	return stamp, nil
}

// inode tells a file replaced by another apart even when size and time
// agree, as when Kubernetes swaps a Secret volume's files.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// credentials are the store's TLS material and password, read from their
// files as they are at each connection.
type credentials struct {
	tls      *TLSConfig
	password string // when not from a file
	passFile string
	timeout  time.Duration

	ca   fileCache[*x509.CertPool]
	pair fileCache[tls.Certificate]
	pass fileCache[string]
}

// DialHost implements gocql.HostDialer: a TCP connection, then the TLS
// handshake with the current CA and client certificate. The driver dials
// discovered nodes by address; without a ServerName each is checked
// against the address it is dialled at.
func (c *credentials) DialHost(ctx context.Context, host *gocql.HostInfo) (*gocql.DialedHost, error) {
	cfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	// One bound for the TCP connection and the handshake both: a node
	// (or whatever listens at its address) that accepts and never answers
	// must not hold the connect loop.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer // Go's default keep-alive, as the driver's own dialer has
	conn, err := d.DialContext(ctx, "tcp", host.ConnectAddressAndPort())
	if err != nil {
		return nil, err
	}
	return gocql.WrapTLS(ctx, conn, host.HostnameAndPort(), cfg)
}

// tlsConfig is the configuration of one new connection.
func (c *credentials) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.tls.ServerName,
		InsecureSkipVerify: c.tls.InsecureSkipVerify,
	}
	if c.tls.CAFile != "" {
		pool, err := c.ca.get(func() (*x509.CertPool, error) { return ReadCA(c.tls.CAFile) }, c.tls.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %w", errCAFile, c.tls.CAFile, err)
		}
		cfg.RootCAs = pool
	}
	if c.tls.CertFile != "" {
		// Asked for only when the node asks for a client certificate;
		// read as the files are now.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			pair, err := c.pair.get(func() (tls.Certificate, error) {
				p, _, err := ReadKeyPair(c.tls.CertFile, c.tls.KeyFile, time.Now())
				return p, err
			}, c.tls.CertFile, c.tls.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("%w %s: %w", errClientCertificate, c.tls.CertFile, err)
			}
			return &pair, nil
		}
	}
	return cfg, nil
}

// authenticator is the driver's authenticator of user: it answers only
// passwordAuthenticators, with the password as it is now.
type authenticator struct {
	user string
	c    *credentials
}

// Challenge implements gocql.Authenticator.
func (a authenticator) Challenge(req []byte) ([]byte, gocql.Authenticator, error) {
	if !slices.Contains(passwordAuthenticators, string(req)) {
		return nil, nil, fmt.Errorf("%w: the node asks through %q, which is not a password authenticator; no password sent", errAuthenticator, req)
	}
	password := a.c.password
	if a.c.passFile != "" {
		p, err := a.c.pass.get(func() (string, error) { return ReadPassword(a.c.passFile) }, a.c.passFile)
		if err != nil {
			return nil, nil, fmt.Errorf("%w %s: %w", errPasswordFile, a.c.passFile, err)
		}
		password = p
	}
	// user NUL user NUL password, as SASL PLAIN has it.
	resp := make([]byte, 0, 2+len(a.user)+len(password))
	resp = append(resp, 0)
	resp = append(resp, a.user...)
	resp = append(resp, 0)
	resp = append(resp, password...)
	return resp, nil, nil
}

// Success implements gocql.Authenticator.
func (authenticator) Success([]byte) error { return nil }

// errAuthenticator marks a node that asked for a password through an
// authenticator the store does not answer.
var errAuthenticator = errors.New("unexpected authenticator")
