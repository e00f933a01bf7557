package harness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority of a test: one of its own (NewCA), or the
// one cassandra/local.sh made for a TLS node (LoadCA), to issue more
// certificates from.
type CA struct {
	// Cert is the CA's certificate; CertPEM the same in PEM, what a
	// client or a node is told to trust.
	Cert    *x509.Certificate
	CertPEM []byte

	key crypto.Signer
}

// IssueOptions describe a certificate for CA.Issue.
type IssueOptions struct {
	CommonName string
	// DNSNames and IPs are the subject alternative names, which TLS
	// clients check a server's name against.
	DNSNames []string
	IPs      []net.IP
	// Client makes a client certificate (extended key usage clientAuth)
	// rather than a server one (serverAuth).
	Client bool
	// NotBefore defaults to a minute ago (clocks differ), NotAfter to a
	// year after NotBefore. A NotAfter a minute ahead makes a certificate
	// that expires during a test.
	NotBefore, NotAfter time.Time
}

// newKey makes the kind of key cassandra/local.sh makes: ECDSA P-256,
// which Cassandra's PEMBasedSslContextFactory and crypto/tls both take.
func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// encodeKey encodes key as an unencrypted PKCS#8 PEM block ("PRIVATE KEY"),
// the only form PEMBasedSslContextFactory reads.
func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewCA makes a self-signed CA named cn, valid from a minute ago for a
// year.
func NewCA(cn string) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(1, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("CA %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// KeyPEM is the CA's private key in the form Issue writes keys, to write
// a CA of a test's own where local.sh looks for one (Node.CAKeyFile).
func (ca *CA) KeyPEM() ([]byte, error) { return encodeKey(ca.key) }

// LoadCA reads a CA from its certificate and private key PEM files, such
// as a TLS node's ca.pem and ca-key.pem (Node.CAFile, Node.CAKeyFile).
// The key may be PKCS#8, SEC 1 (EC) or PKCS#1 (RSA).
func LoadCA(certPEMFile, keyPEMFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certPEMFile)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", certPEMFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPEMFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", certPEMFile)
	}
	keyPEM, err := os.ReadFile(keyPEMFile)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPEMFile, err)
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(block), key: key}, nil
}

// parseKey decodes the first private key of a PEM file.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("private key of type %T cannot sign", key)
		}
		return signer, nil
	}
}

// Issue signs a new certificate with a new key, both returned in PEM: the
// key unencrypted PKCS#8 ECDSA P-256, as cassandra/local.sh makes them.
func (ca *CA) Issue(o IssueOptions) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	notBefore := o.NotBefore
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Minute)
	}
	notAfter := o.NotAfter
	if notAfter.IsZero() {
		notAfter = notBefore.AddDate(1, 0, 0)
	}
	usage := x509.ExtKeyUsageServerAuth
	if o.Client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CommonName},
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %q: %w", o.CommonName, err)
	}
	kp, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp, nil
}

// WriteFile writes data to path, readable by its owner only (it may be a
// key), creating the directories above it.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// WritePair writes a certificate and its key (Issue's results) to
// certPath and keyPath.
func WritePair(certPath, keyPath string, certPEM, keyPEM []byte) error {
	if err := WriteFile(certPath, certPEM); err != nil {
		return err
	}
	return WriteFile(keyPath, keyPEM)
}
