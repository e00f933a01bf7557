package harness

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestIssue checks the certificates the TLS suites depend on against
// crypto/x509's own verification, as the function's TLS client does it.
func TestIssue(t *testing.T) {
	t.Parallel()
	ca, err := NewCA("harness test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("another authority")
	if err != nil {
		t.Fatal(err)
	}
	// ca again, read back from its files as from local.sh's.
	dir := t.TempDir()
	caKey, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePair(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), ca.CertPEM, caKey); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	server := IssueOptions{CommonName: "node", DNSNames: []string{"localhost"}}
	client := IssueOptions{CommonName: "tracker", Client: true}
	expiring := IssueOptions{CommonName: "tracker", Client: true, NotAfter: now.Add(time.Minute)}
	for _, tc := range []struct {
		name   string
		issuer *CA
		opts   IssueOptions
		trust  *CA
		verify x509.VerifyOptions
		ok     bool
	}{
		{"server by its DNS name", ca, server, ca, x509.VerifyOptions{DNSName: "localhost"}, true},
		{"server without the IP", ca, server, ca, x509.VerifyOptions{DNSName: "127.0.0.1"}, false},
		{"server with the IP", ca, IssueOptions{CommonName: "node", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, ca,
			x509.VerifyOptions{DNSName: "127.0.0.1"}, true},
		{"client", ca, client, ca, x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true},
		{"client as a server", ca, client, ca, x509.VerifyOptions{}, false},
		{"client of another authority", other, client, ca, x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, false},
		{"client by the loaded CA", loaded, client, ca, x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true},
		{"expiring, now", ca, expiring, ca, x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true},
		{"expiring, two minutes on", ca, expiring, ca,
			x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now.Add(2 * time.Minute)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			certPEM, keyPEM, err := tc.issuer.Issue(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			// The key is what Cassandra's PEMBasedSslContextFactory reads.
			if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
				t.Fatalf("key PEM: got %q, want a PKCS#8 PRIVATE KEY block", keyPEM)
			}
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			tc.verify.Roots = x509.NewCertPool()
			tc.verify.Roots.AddCert(tc.trust.Cert)
			_, err = pair.Leaf.Verify(tc.verify)
			if got := err == nil; got != tc.ok {
				t.Errorf("verify: got error %v, want success %v", err, tc.ok)
			}
		})
	}
}
