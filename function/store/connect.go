package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// ConnectCauses are the causes ConnectFailure names.
var ConnectCauses = []string{
	"unknown_authority", "name_mismatch", "server_certificate_invalid", "client_certificate_refused", "handshake_failed",
	"client_certificate_unreadable", "ca_unreadable", "not_tls", "closed", "auth_failed",
	"authenticator_refused", "password_required", "password_unreadable", "refused", "timeout", "error",
}

// ConnectFailure names why a connection to a node failed, from a fixed
// set (ConnectCauses), for the connect-attempt metric and the log. The
// driver keeps the type of a dial's error but wraps the first
// connection's in text, so both are read.
func ConnectFailure(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		reqErr   gocql.RequestError
	)
	msg := err.Error()
	switch {
	case errors.As(err, &unknown) || strings.Contains(msg, "certificate signed by unknown authority"):
		return "unknown_authority"
	case errors.As(err, &hostname) || strings.Contains(msg, "x509: certificate is valid for") || strings.Contains(msg, "x509: certificate is not valid for any names"):
		return "name_mismatch"
	case errors.As(err, &invalid) || strings.Contains(msg, "x509: certificate has expired or is not yet valid"):
		return "server_certificate_invalid"
	case certificateAlert(msg):
		// The node aborted the handshake over the client certificate:
		// missing, expired, of an authority it does not trust.
		return "client_certificate_refused"
	case strings.Contains(msg, "remote error: tls:"):
		// Aborted for another reason: no common version or cipher.
		return "handshake_failed"
	case errors.Is(err, errClientCertificate) || strings.Contains(msg, "client certificate "):
		return "client_certificate_unreadable"
	case errors.Is(err, errCAFile) || strings.Contains(msg, "CA file "):
		return "ca_unreadable"
	case errors.As(err, &record) || strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "not_tls"
	case errors.Is(err, errAuthenticator) || strings.Contains(msg, errAuthenticator.Error()):
		return "authenticator_refused"
	case errors.Is(err, errPasswordFile) || strings.Contains(msg, "password file "):
		return "password_unreadable"
	case errors.As(err, &reqErr) && reqErr.Code() == gocql.ErrCodeCredentials,
		strings.Contains(msg, "Provided username") || strings.Contains(msg, "and/or password are incorrect"):
		return "auth_failed"
	case strings.Contains(msg, "authentication required"):
		return "password_required"
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(msg, "connection refused"):
		return "refused"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err) || strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "within timeout"):
		return "timeout"
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset"):
		return "closed"
	}
	return "error"
}

// certificateAlerts are the TLS alerts a node sends when it refuses the
// client's certificate, as Go's crypto/tls words them (alert.go).
var certificateAlerts = []string{"bad certificate", "certificate required", "unknown certificate authority",
	"expired certificate", "revoked certificate", "unsupported certificate", "unknown certificate", "access denied"}

func certificateAlert(msg string) bool {
	if !strings.Contains(msg, "remote error: tls:") {
		return false
	}
	for _, a := range certificateAlerts {
		if strings.Contains(msg, "remote error: tls: "+a) {
			return true
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// describe says in a sentence what a cause means and what to check; user
// and tlsOn are the store's settings.
func describe(cause, user string, tlsOn bool) string {
	switch cause {
	case "unknown_authority":
		return "the node's certificate is signed by unknown authority: the CA file does not hold the authority that signed it"
	case "name_mismatch":
		return "the server name does not match the node's certificate: set the TLS server name to a name the certificate carries"
	case "server_certificate_invalid":
		return "the node's certificate is not valid: expired or not yet valid, or not for a server (the error says which)"
	case "handshake_failed":
		return "the node ended the TLS handshake: no TLS version or cipher in common, or an error of its own"
	case "client_certificate_refused":
		return "the node refused the client certificate: none was sent, or it is expired or not signed by an authority the node trusts"
	case "client_certificate_unreadable":
		return "the client certificate or its key cannot be read"
	case "ca_unreadable":
		return "the CA file cannot be read"
	case "not_tls":
		return "the node does not speak TLS on this port: turn TLS off, or use the node's TLS port"
	case "closed":
		if !tlsOn {
			return "the node closed the connection during the handshake: does it require TLS?"
		}
		return "the node closed the connection during the handshake"
	case "auth_failed":
		return "authentication failed for user " + user + ": the password is wrong or the role may not log in"
	case "authenticator_refused":
		return "the node asks for credentials through an authenticator that is not a password authenticator; no password was sent"
	case "password_required":
		return "the node requires password authentication and no username is set"
	case "password_unreadable":
		return "the password file cannot be read"
	case "refused":
		return "nothing listens at the node's address"
	case "timeout":
		return "the node did not answer in time"
	}
	return "the connection failed"
}

// Errors of the store's own credential files, for ConnectFailure.
var (
	errClientCertificate = errors.New("client certificate")
	errCAFile            = errors.New("CA file")
	errPasswordFile      = errors.New("password file")
)
