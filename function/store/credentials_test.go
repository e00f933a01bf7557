package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// testCA signs certificates for the tests of this package.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a certificate for cn valid from notBefore to notAfter, for
// clients and for a server at 127.0.0.1 and localhost, and its key, as
// PEM.
func (ca *testCA) issue(t *testing.T, cn string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	return ca.sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

// issueNames is a server certificate for cn that carries only names.
func (ca *testCA) issueNames(t *testing.T, cn string, names []string) (certPEM, keyPEM []byte) {
	t.Helper()
	return ca.sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: names})
}

// sign makes a key and a certificate of tmpl for it, as PEM.
func (ca *testCA) sign(t *testing.T, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func write(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadKeyPair(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	now := time.Now()
	cert, key := ca.issue(t, "tracker", now.Add(-time.Minute), now.Add(time.Hour))
	old, oldKey := ca.issue(t, "tracker", now.Add(-2*time.Hour), now.Add(-time.Hour))
	_, otherKey := ca.issue(t, "other", now.Add(-time.Minute), now.Add(time.Hour))
	certFile, keyFile := write(t, filepath.Join(dir, "tls.crt"), cert), write(t, filepath.Join(dir, "tls.key"), key)

	_, leaf, err := ReadKeyPair(certFile, keyFile, now)
	if err != nil || leaf.Subject.CommonName != "tracker" {
		t.Fatalf("ReadKeyPair: %v, subject %v", err, leaf)
	}
	for _, c := range []struct {
		name      string
		cert, key string
		want      string
	}{
		{"missing certificate", filepath.Join(dir, "none.crt"), keyFile, "no such file"},
		{"missing key", certFile, filepath.Join(dir, "none.key"), "the key"},
		{"not PEM", write(t, filepath.Join(dir, "junk.crt"), []byte("junk")), keyFile, "no PEM certificate"},
		{"key of another certificate", certFile, write(t, filepath.Join(dir, "other.key"), otherKey), "private key does not match public key"},
		{"expired", write(t, filepath.Join(dir, "old.crt"), old), write(t, filepath.Join(dir, "old.key"), oldKey), "expired at"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ReadKeyPair(c.cert, c.key, now)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("the error shows the key: %v", err)
			}
		})
	}
}

// TestFilesAreReadAgainWhenTheyChange: a renewed client certificate, CA or
// password replaced in place is what the next connection uses.
func TestFilesAreReadAgainWhenTheyChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "first CA")
	cert, key := ca.issue(t, "first", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	c := &credentials{tls: &TLSConfig{
		CAFile:   write(t, filepath.Join(dir, "ca.crt"), ca.pem),
		CertFile: write(t, filepath.Join(dir, "tls.crt"), cert),
		KeyFile:  write(t, filepath.Join(dir, "tls.key"), key),
	}, passFile: write(t, filepath.Join(dir, "password"), []byte("first\n"))}
	auth := authenticator{user: "tracker", c: c}

	check := func(wantCN, wantCA, wantPassword string) {
		t.Helper()
		cfg, err := c.tlsConfig()
		if err != nil {
			t.Fatal(err)
		}
		pair, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		if leaf.Subject.CommonName != wantCN {
			t.Errorf("client certificate: got %q, want %q", leaf.Subject.CommonName, wantCN)
		}
		// The client certificate comes from the same CA as the pool.
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: cfg.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("CA pool: %v, want the pool of %s", err, wantCA)
		}
		resp, _, err := auth.Challenge([]byte("org.apache.cassandra.auth.PasswordAuthenticator"))
		if err != nil {
			t.Fatal(err)
		}
		if want := "\x00tracker\x00" + wantPassword; string(resp) != want {
			t.Errorf("password response: got %q, want %q", resp, want)
		}
	}
	check("first", "first CA", "first")
	// Renewed in place, as cert-manager and Kubernetes do (a new file of
	// another size; modification times may be equal within a test).
	ca2 := newTestCA(t, "second CA, renewed")
	cert2, key2 := ca2.issue(t, "second, renewed", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	write(t, c.tls.CAFile, ca2.pem)
	write(t, c.tls.CertFile, cert2)
	write(t, c.tls.KeyFile, key2)
	write(t, c.passFile, []byte("second-password\n"))
	check("second, renewed", "second CA, renewed", "second-password")
}

// TestOnlyPasswordAuthenticatorsGetThePassword: a node that asks through
// another authenticator gets nothing.
func TestOnlyPasswordAuthenticatorsGetThePassword(t *testing.T) {
	t.Parallel()
	auth := authenticator{user: "tracker", c: &credentials{password: "s3cret"}}
	resp, _, err := auth.Challenge([]byte("com.example.LeakyAuthenticator"))
	if err == nil || resp != nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("got %q, %v; want no answer and an error without the password", resp, err)
	}
	if cause := ConnectFailure(fmt.Errorf("gocql: unable to create session: %v", err)); cause != "authenticator_refused" {
		t.Errorf("cause: got %q, want authenticator_refused", cause)
	}
}

func TestConnectFailure(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "some CA")
	for _, c := range []struct {
		err  error
		want string
	}{
		{x509.UnknownAuthorityError{}, "unknown_authority"},
		{errors.New("gocql: unable to create session: unable to connect to initial hosts: tls: failed to verify certificate: x509: certificate signed by unknown authority"), "unknown_authority"},
		{x509.HostnameError{Certificate: ca.cert, Host: "127.0.0.1"}, "name_mismatch"},
		{errors.New("tls: failed to verify certificate: x509: certificate is valid for cassandra.test, not 127.0.0.1"), "name_mismatch"},
		{x509.CertificateInvalidError{Cert: ca.cert, Reason: x509.Expired}, "server_certificate_invalid"},
		{errors.New("remote error: tls: certificate required"), "client_certificate_refused"},
		{errors.New("remote error: tls: bad certificate"), "client_certificate_refused"},
		{errors.New("remote error: tls: expired certificate"), "client_certificate_refused"},
		{errors.New("remote error: tls: protocol version not supported"), "handshake_failed"},
		{errors.New("remote error: tls: handshake failure"), "handshake_failed"},
		{fmt.Errorf("%w /x/tls.crt: expired", errClientCertificate), "client_certificate_unreadable"},
		{fmt.Errorf("%w /x/ca.crt: no PEM certificate in it", errCAFile), "ca_unreadable"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "not_tls"},
		{requestError(gocql.ErrCodeCredentials), "auth_failed"},
		{errors.New("unable to connect to initial hosts: Provided username tracker and/or password are incorrect"), "auth_failed"},
		{errors.New(`authentication required (using "org.apache.cassandra.auth.PasswordAuthenticator")`), "password_required"},
		{fmt.Errorf("%w /x/password: the file is empty", errPasswordFile), "password_unreadable"},
		{errors.New("dial tcp 127.0.0.1:9042: connect: connection refused"), "refused"},
		{errors.New("dial tcp 10.0.0.1:9042: i/o timeout"), "timeout"},
		{errors.New("gocql: no response to connection startup within timeout"), "timeout"},
		{errors.New("unable to connect to initial hosts: EOF"), "closed"},
		{errors.New("something else"), "error"},
		// Errors of a store that connected: not to be taken for one of
		// connecting (Open marks those with ErrConnect).
		{errors.New("read table ks.events_by_id: Keyspace ks does not exist"), "error"},
	} {
		t.Run(c.err.Error(), func(t *testing.T) {
			if got := ConnectFailure(c.err); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
			if !slices.Contains(ConnectCauses, c.want) {
				t.Errorf("%q is not in ConnectCauses", c.want)
			}
		})
	}
}

// tlsListener serves TLS handshakes on loopback with a certificate for
// names from ca, at most maxVersion; the handshake's error reaches the
// dialler.
func tlsListener(t *testing.T, ca *testCA, dnsOnly bool, maxVersion uint16) *gocql.HostInfo {
	t.Helper()
	now := time.Now()
	certPEM, keyPEM := ca.issue(t, "node", now.Add(-time.Minute), now.Add(time.Hour))
	if dnsOnly {
		certPEM, keyPEM = ca.issueNames(t, "node", []string{"cassandra.test"})
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MaxVersion: maxVersion})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.(*tls.Conn).Handshake()
			}()
		}
	}()
	return hostOf(t, l.Addr())
}

func hostOf(t *testing.T, addr net.Addr) *gocql.HostInfo {
	t.Helper()
	a := addr.(*net.TCPAddr)
	h, err := gocql.NewHostInfoFromAddrPort(a.IP, a.Port)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestDialHostVerifies dials real TLS listeners: the node's certificate is
// checked by the address dialled unless a server name is set, against the
// CA file; TLS 1.1 is refused; a listener that never answers the
// handshake costs the connect timeout, no more.
func TestDialHostVerifies(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "node CA")
	caFile := write(t, filepath.Join(t.TempDir(), "ca.pem"), ca.pem)
	dial := func(h *gocql.HostInfo, cfg TLSConfig) error {
		c := &credentials{tls: &cfg, timeout: 2 * time.Second}
		dh, err := c.DialHost(context.Background(), h)
		if err == nil {
			dh.Conn.Close()
		}
		return err
	}
	byIP := tlsListener(t, ca, false, 0)
	byName := tlsListener(t, ca, true, 0)
	old := tlsListener(t, ca, false, tls.VersionTLS11)
	for _, c := range []struct {
		name string
		host *gocql.HostInfo
		cfg  TLSConfig
		want string // the cause, or "" for a connection
	}{
		{"the address dialled is in the certificate", byIP, TLSConfig{CAFile: caFile}, ""},
		{"the system's roots do not hold the CA", byIP, TLSConfig{}, "unknown_authority"},
		{"the certificate names only cassandra.test", byName, TLSConfig{CAFile: caFile}, "name_mismatch"},
		{"the server name is set to it", byName, TLSConfig{CAFile: caFile, ServerName: "cassandra.test"}, ""},
		{"a wrong server name", byIP, TLSConfig{CAFile: caFile, ServerName: "elsewhere.test"}, "name_mismatch"},
		{"verification skipped", byName, TLSConfig{InsecureSkipVerify: true}, ""},
		{"TLS 1.1 only", old, TLSConfig{CAFile: caFile}, "handshake_failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := dial(c.host, c.cfg)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("got %v, want a connection", err)
			case c.want != "" && err == nil:
				t.Fatalf("connected; want %s", c.want)
			case c.want != "" && ConnectFailure(err) != c.want:
				t.Errorf("cause of %v: got %s, want %s", err, ConnectFailure(err), c.want)
			}
		})
	}

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	started := time.Now()
	if err := dial(hostOf(t, silent.Addr()), TLSConfig{CAFile: caFile}); err == nil || ConnectFailure(err) != "timeout" {
		t.Errorf("a listener that never answers: got %v, want a timeout", err)
	}
	if took := time.Since(started); took > 5*time.Second {
		t.Errorf("a listener that never answers held the dial %s; want about the 2s connect timeout", took)
	}
}

// TestSecretVolumeSwap renews a password the way the kubelet updates a
// Secret volume: new files in a new directory, then the ..data link
// swapped at once. The new file has the same size and time as the old
// one; its inode tells it apart.
func TestSecretVolumeSwap(t *testing.T) {
	t.Parallel()
	vol := t.TempDir()
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	version := func(name, password string) {
		d := filepath.Join(vol, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		f := write(t, filepath.Join(d, "password"), []byte(password))
		if err := os.Chtimes(f, stamp, stamp); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(vol, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(vol, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", "password-1")
	if err := os.Symlink(filepath.Join("..data", "password"), filepath.Join(vol, "password")); err != nil {
		t.Fatal(err)
	}
	c := &credentials{passFile: filepath.Join(vol, "password")}
	auth := authenticator{user: "tracker", c: c}
	for _, want := range []string{"password-1", "password-2"} {
		if want == "password-2" {
			version("..v2", "password-2")
		}
		resp, _, err := auth.Challenge([]byte(passwordAuthenticators[0]))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(resp[len("\x00tracker\x00"):]); got != want {
			t.Errorf("password: got %q, want %q", got, want)
		}
	}
}
