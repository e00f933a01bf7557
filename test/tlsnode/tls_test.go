package tlsnode

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

// TestMutualTLSStoresEvents: the right CA, client certificate and password
// (a file) store an event, read back over TLS; the configuration line names
// the client certificate and shows no password.
func TestMutualTLSStoresEvents(t *testing.T) {
	fn := startFunction(t)
	expectStores(t, fn, "tracking")
	var cfg logLine
	for _, l := range logLines(t, fn) {
		if l["msg"] == "configuration" {
			cfg = l
		}
	}
	cert, ok := cfg["client_certificate"].(map[string]any)
	if !ok || cert["subject"] != "CN=tracker" || cert["not_after"] == nil {
		t.Errorf("configuration line: client_certificate %v, want its subject CN=tracker and its expiry", cfg["client_certificate"])
	}
	password, err := node.TrackerPassword()
	if err != nil {
		t.Fatal(err)
	}
	expectNoSecret(t, fn, password)
	if n := failedAttempts(t, fn, "ok"); n < 1 {
		t.Errorf("tracker_cassandra_connect_attempts_total{outcome=\"ok\"}: %d, want at least 1", n)
	}
}

// TestCAOfAnotherAuthority: a CA file that does not hold the node's
// authority fails the handshake; the log says the certificate is signed by
// an unknown authority, once.
func TestCAOfAnotherAuthority(t *testing.T) {
	other, err := harness.NewCA("another authority")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "other-ca.pem")
	if err := harness.WriteFile(caFile, other.CertPEM); err != nil {
		t.Fatal(err)
	}
	fn := startFunction(t, "CASSANDRA_TLS_CA_FILE="+caFile)
	expectRefused(t, fn, "signed by unknown authority")
	expectOnce(t, fn, "signed by unknown authority", "unknown_authority")
}

// TestNoClientCertificate: the node requires a client certificate; without
// one the node refuses the handshake.
func TestNoClientCertificate(t *testing.T) {
	fn := startFunctionEnv(t, without(node.FunctionEnv(), "CASSANDRA_TLS_CERT_FILE", "CASSANDRA_TLS_KEY_FILE"))
	expectRefused(t, fn, "the node refused the client certificate")
	expectOnce(t, fn, "the node refused the client certificate", "client_certificate_refused")
}

// TestWrongPassword: a wrong password, given as a variable or as a file,
// is refused; the log says authentication failed for the user and shows
// neither password.
func TestWrongPassword(t *testing.T) {
	right, err := node.TrackerPassword()
	if err != nil {
		t.Fatal(err)
	}
	const wrong = "not-the-password-7f3a"
	passFile := filepath.Join(dir, "wrong.password")
	if err := os.WriteFile(passFile, []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string][]string{
		"variable": append(without(node.FunctionEnv(), "CASSANDRA_PASSWORD_FILE"), "CASSANDRA_PASSWORD="+wrong),
		"file":     append(node.FunctionEnv(), "CASSANDRA_PASSWORD_FILE="+passFile),
	} {
		t.Run(name, func(t *testing.T) {
			fn := startFunctionEnv(t, env)
			expectRefused(t, fn, "authentication failed for user tracker")
			expectOnce(t, fn, "authentication failed for user tracker", "auth_failed")
			expectNoSecret(t, fn, wrong, right)
		})
	}
}

// TestMisconfiguredTLS: TLS on one side only fails either way round, with
// a line that says which.
func TestMisconfiguredTLS(t *testing.T) {
	t.Run("plain client, TLS node", func(t *testing.T) {
		fn := startFunctionEnv(t, without(node.FunctionEnv(), "CASSANDRA_TLS", "CASSANDRA_TLS_CA_FILE", "CASSANDRA_TLS_CERT_FILE",
			"CASSANDRA_TLS_KEY_FILE", "CASSANDRA_TLS_SERVER_NAME"))
		expectRefused(t, fn, "does it require TLS?")
		expectOnce(t, fn, "does it require TLS?", "closed")
	})
	t.Run("TLS client, plain node", func(t *testing.T) {
		fn := startFunction(t, "CASSANDRA_HOSTS="+plainHosts)
		expectRefused(t, fn, "does not speak TLS")
		expectOnce(t, fn, "does not speak TLS", "not_tls")
	})
}

// TestLeastPrivilege: the production role may SELECT and MODIFY in its
// keyspace and nothing else (TestMutualTLSStoresEvents stores with it);
// where the tables are missing it stays unready and says which table, that
// it may not create it, and which grant would do; a role with CREATE on
// the keyspace alone creates them.
func TestLeastPrivilege(t *testing.T) {
	ks := fmt.Sprintf("tls_empty_%d", time.Now().UnixNano()%1e9)
	admin := admin(t)
	for _, stmt := range []string{
		"CREATE KEYSPACE " + ks + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
		"GRANT SELECT ON KEYSPACE " + ks + " TO tracker",
		"GRANT MODIFY ON KEYSPACE " + ks + " TO tracker",
	} {
		if err := admin.Query(stmt).Exec(); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() { _ = admin.Query("DROP KEYSPACE IF EXISTS " + ks).Exec() })
	// A role that may create tables in its keyspace, and only there: the
	// store creates no keyspace that exists, which would need CREATE on
	// all of them.
	schemaKS := ks + "_schema"
	schemaPassword := filepath.Join(dir, "tracker_schema.password")
	if err := os.WriteFile(schemaPassword, []byte("schema-role-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"CREATE KEYSPACE " + schemaKS + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
		"CREATE ROLE IF NOT EXISTS tracker_schema WITH LOGIN = true AND PASSWORD = 'schema-role-password'",
		"GRANT SELECT ON KEYSPACE " + schemaKS + " TO tracker_schema",
		"GRANT MODIFY ON KEYSPACE " + schemaKS + " TO tracker_schema",
		"GRANT CREATE ON KEYSPACE " + schemaKS + " TO tracker_schema",
	} {
		if err := admin.Query(stmt).Exec(); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() { _ = admin.Query("DROP KEYSPACE IF EXISTS " + schemaKS).Exec() })
	t.Run("without schema creation", func(t *testing.T) {
		fn := startFunction(t, "CASSANDRA_KEYSPACE="+ks, "CASSANDRA_SCHEMA_CREATE=false")
		want := "table " + ks + ".events_by_id is missing and CASSANDRA_SCHEMA_CREATE=false says not to create it"
		expectRefused(t, fn, want)
		expectOnce(t, fn, want, "ok")
	})
	t.Run("with schema creation and CREATE on the keyspace", func(t *testing.T) {
		fn := startFunction(t, "CASSANDRA_KEYSPACE="+schemaKS, "CASSANDRA_SCHEMA_CREATE=true", "CASSANDRA_USERNAME=tracker_schema",
			"CASSANDRA_PASSWORD_FILE="+schemaPassword)
		expectStores(t, fn, schemaKS)
	})
	t.Run("with schema creation, without CREATE", func(t *testing.T) {
		fn := startFunction(t, "CASSANDRA_KEYSPACE="+ks, "CASSANDRA_SCHEMA_CREATE=true")
		want := `the role "tracker" may not create it`
		expectRefused(t, fn, want)
		expectOnce(t, fn, want, "ok")
		if lines := logLines(t, fn); !slices.ContainsFunc(lines, func(l logLine) bool { return l.has("GRANT CREATE ON KEYSPACE " + ks + " TO tracker") }) {
			t.Errorf("no line says which grant would do")
		}
	})
}

// TestServerName: a node certificate that carries only a DNS name fails
// verification against the address dialled; with CASSANDRA_TLS_SERVER_NAME
// set to that name the same function configuration works.
func TestServerName(t *testing.T) {
	ca, err := harness.LoadCA(node.CAFile(), node.CAKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(harness.IssueOptions{CommonName: "cassandra.test", DNSNames: []string{"cassandra.test"}})
	if err != nil {
		t.Fatal(err)
	}
	saved := map[string][]byte{}
	for _, f := range []string{node.NodeCertFile(), node.NodeKeyFile()} {
		if saved[f], err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := harness.WritePair(node.NodeCertFile(), node.NodeKeyFile(), certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	node.ServerName = "cassandra.test" // for the node's own probe
	restartNode(t)
	defer func() {
		for f, b := range saved {
			if err := harness.WriteFile(f, b); err != nil {
				t.Error(err)
			}
		}
		node.ServerName = ""
		restartNode(t)
	}()

	env := without(node.FunctionEnv(), "CASSANDRA_TLS_SERVER_NAME")
	fn := startFunctionEnv(t, env)
	expectRefused(t, fn, "the server name does not match")
	expectOnce(t, fn, "the server name does not match", "name_mismatch")
	fixed := startFunctionEnv(t, append(env, "CASSANDRA_TLS_SERVER_NAME=cassandra.test"))
	expectStores(t, fixed, "tracking")
}

// TestRotation: the client certificate expires a little over a minute
// after it is issued; its files are replaced by a renewed one; once it
// has expired the node restarts, which ends every connection, and the
// same function process connects again with the renewed files and
// stores. A second function, started beside it with copies of the old
// files that nobody renews, connects at first and not after the restart:
// the old certificate would not have done.
func TestRotation(t *testing.T) {
	expires := time.Now().Add(30 * time.Second)
	certFile, keyFile := issueClient(t, "rotating", expires)
	oldCert, oldKey := filepath.Join(dir, "old.pem"), filepath.Join(dir, "old-key.pem")
	copyFile(t, certFile, oldCert)
	copyFile(t, keyFile, oldKey)
	fn := startFunction(t, "CASSANDRA_TLS_CERT_FILE="+certFile, "CASSANDRA_TLS_KEY_FILE="+keyFile)
	stale := startFunction(t, "CASSANDRA_TLS_CERT_FILE="+oldCert, "CASSANDRA_TLS_KEY_FILE="+oldKey)
	expectStores(t, fn, "tracking")
	expectStores(t, stale, "tracking")
	pid := fn.PID()

	// Renewed in place, as cert-manager does.
	renewedCert, renewedKey := issueClient(t, "renewed", time.Now().Add(24*time.Hour))
	copyFile(t, renewedCert, certFile)
	copyFile(t, renewedKey, keyFile)
	// The old certificate's expiry is the fault: a wait, not a poll.
	<-time.After(time.Until(expires) + 2*time.Second)
	restartNode(t)

	expectStores(t, fn, "tracking")
	if fn.PID() != pid {
		t.Fatalf("the function restarted (pid %d, was %d)", fn.PID(), pid)
	}
	expectRefused(t, stale, "the node refused the client certificate")
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.WriteFile(dst, b); err != nil {
		t.Fatal(err)
	}
}
