package store

import (
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

// issue makes a certificate for cn valid from notBefore to notAfter, and
// its key, as PEM.
func (ca *testCA) issue(t *testing.T, cn string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
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
		{fmt.Errorf("%w /x/tls.crt: expired", errClientCertificate), "client_certificate_unreadable"},
		{fmt.Errorf("%w /x/ca.crt: no PEM certificate in it", errCAFile), "ca_unreadable"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "not_tls"},
		{requestError(gocql.ErrCodeCredentials), "auth_failed"},
		{errors.New("unable to connect to initial hosts: Provided username tracker and/or password are incorrect"), "auth_failed"},
		{errors.New(`authentication required (using "org.apache.cassandra.auth.PasswordAuthenticator")`), "password_required"},
		{fmt.Errorf("%w /x/password: the file is empty", errPasswordFile), "password_unreadable"},
		{errors.New("dial tcp 127.0.0.1:9042: connect: connection refused"), "refused"},
		{errors.New("dial tcp 10.0.0.1:9042: i/o timeout"), "timeout"},
		{errors.New("unable to connect to initial hosts: EOF"), "closed"},
		{errors.New("something else"), "error"},
	} {
		if got := ConnectFailure(c.err); got != c.want {
			t.Errorf("ConnectFailure(%v): got %q, want %q", c.err, got, c.want)
		}
		if !strings.Contains(strings.Join(ConnectCauses, " "), c.want) {
			t.Errorf("%q is not in ConnectCauses", c.want)
		}
	}
}
