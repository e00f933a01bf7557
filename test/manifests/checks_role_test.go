package manifests

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// This file checks who may do what in Cassandra: password authentication
// on the nodes exactly when the function has a role, and the Job of
// cassandra/role-job.yaml that creates the schema as a superuser and gives
// the function's role SELECT and MODIFY on its keyspace, nothing more.

// checkAuth checks authentication against the function's configuration:
// the nodes ask for a password (PasswordAuthenticator) exactly when the
// function has a role to log in as; then grants are enforced
// (CassandraAuthorizer, CassandraRoleManager), the role tables are created
// with as many replicas as the function's keyspace, so that a login
// survives what a write survives, and the function's password is a mounted
// file, never an environment variable, which would keep the password of
// the day the pod started.
func checkAuth(b *bundle) error {
	cfg, err := effectiveConfig(b)
	if err != nil {
		return serviceError(b, containerField+".env", "%v", err)
	}
	s, err := readCassandraSettings(b)
	if err != nil {
		return err
	}
	var errs []error
	sts := func(key, format string, args ...any) {
		errs = append(errs, stsError(b, stsContainerField+".env[JVM_EXTRA_OPTS]", key+": "+format, args...))
	}
	password := s.className("authenticator") == "PasswordAuthenticator"
	switch {
	case password && cfg.CassandraUsername == "":
		errs = append(errs, serviceError(b, containerField+".env[CASSANDRA_USERNAME]", "empty, while the nodes require a password (authenticator PasswordAuthenticator)"))
	case !password && cfg.CassandraUsername != "":
		sts("authenticator", "got %q while the function logs in as %q: want PasswordAuthenticator", s.className("authenticator"), cfg.CassandraUsername)
	}
	if !password {
		return errors.Join(errs...)
	}
	if got := s.className("authorizer"); got != "CassandraAuthorizer" {
		sts("authorizer", "got %q, want CassandraAuthorizer: without it every role may do anything, and the role's grants mean nothing", got)
	}
	if got := s.className("role_manager"); got != "CassandraRoleManager" {
		sts("role_manager", "got %q, want CassandraRoleManager, which PasswordAuthenticator needs", got)
	}
	if cfg.CassandraPasswordFile == "" {
		errs = append(errs, fieldError(fileConfigMap, "ConfigMap", b.configMap.Name, "data.CASSANDRA_PASSWORD_FILE", "missing: want the role's password as a mounted file of Secret %q", b.secret.Name))
	}
	if c := serviceContainer(b.service); c != nil && slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "CASSANDRA_PASSWORD" }) {
		errs = append(errs, serviceError(b, containerField+".env[CASSANDRA_PASSWORD]", "set; want the password as a file (CASSANDRA_PASSWORD_FILE): an environment variable keeps the password of the day the pod started, so a rotation would lock the function out"))
	}
	if repl, err := parseCQLMap(cfg.CassandraReplication); err == nil {
		dc := containerEnv(cassandraContainer(b))["CASSANDRA_DC"]
		if got := s.properties["cassandra.system_auth.default_rf"]; got != repl[dc] {
			sts("cassandra.system_auth.default_rf", "got %q, want %s, the replication factor of the function's keyspace in %s: the role tables must survive what the data survives, or a node down stops logins", got, repl[dc], dc)
		}
	}
	return errors.Join(errs...)
}

// The statements of the role Job's script that the checks read.
var (
	grantOn    = regexp.MustCompile(`(?i)^GRANT\s+(.+?)\s+ON\s+(.+?)\s+TO\s+(.+?)\s*;?$`)
	grantRole  = regexp.MustCompile(`(?i)^GRANT\s+(.+?)\s+TO\s+(.+?)\s*;?$`)
	roleStmt   = regexp.MustCompile(`(?i)^(CREATE|ALTER)\s+ROLE\b`)
	superuser  = regexp.MustCompile(`(?i)SUPERUSER\s*=\s*true`)
	keyspaceOn = regexp.MustCompile(`(?i)^KEYSPACE\s+"?(\w+)"?$`)
	shellVar   = regexp.MustCompile(`\$\{?(\w+)\}?`)
	shellPath  = regexp.MustCompile(`^(\w+)=(/\S+)$`)
	filePath   = regexp.MustCompile(`/(?:var/run/secrets|etc)/[\w./-]+`)
	sedSubst   = regexp.MustCompile(`s\|([^|]*)\|([^|]*\$CASSANDRA_\w+[^|]*)\|`)
)

// jobScript is the role Job's container and its shell script (sh -c).
func jobScript(b *bundle) (*corev1.Container, string, error) {
	cs := b.roleJob.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		return nil, "", fieldError(fileRoleJob, "Job", b.roleJob.Name, "spec.template.spec.containers", "got %d, want 1", len(cs))
	}
	c := &cs[0]
	if len(c.Command) != 3 || c.Command[0] != "sh" || c.Command[1] != "-c" {
		return c, "", fieldError(fileRoleJob, "Job", b.roleJob.Name, "spec.template.spec.containers["+c.Name+"].command", "want [sh -c SCRIPT], the script the checks read")
	}
	return c, c.Command[2], nil
}

// checkRoleJob checks the Job that gives the function its role, least
// privilege first: its script grants the function's role exactly SELECT
// and MODIFY on the function's keyspace (no CREATE, ALTER, DROP,
// AUTHORIZE, no other keyspace, no role, no superuser), so the function
// must not create the schema (CASSANDRA_SCHEMA_CREATE false): the Job does,
// from cassandra/schema.cql, with the function's keyspace and replication.
// The role is the one the function logs in as (the same Secret key), with
// the password the function reads (the same Secret file); the Job logs in
// with the superuser Secret; every file it reads is mounted from a Secret
// or ConfigMap the repository makes; and its cqlsh is the nodes' version.
func checkRoleJob(b *bundle) error {
	job := b.roleJob
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldError(fileRoleJob, "Job", job.Name, field, format, args...))
	}
	cfg, err := effectiveConfig(b)
	if err != nil {
		return serviceError(b, containerField+".env", "%v", err)
	}
	c, script, err := jobScript(b)
	if err != nil {
		return err
	}
	at := "spec.template.spec.containers[" + c.Name + "]"
	if sc := cassandraContainer(b); sc != nil && c.Image != sc.Image {
		bad(at+".image", "got %q, want %q as the StatefulSet's, whose cqlsh matches the nodes", c.Image, sc.Image)
	}

	// Its environment: the function's role, keyspace and replication, from
	// where the function reads them.
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if svc := serviceContainer(b.service); svc != nil {
		i := slices.IndexFunc(svc.Env, func(e corev1.EnvVar) bool { return e.Name == "CASSANDRA_USERNAME" })
		if e, ok := env["CASSANDRA_USERNAME"]; !ok || i < 0 || !equality.Semantic.DeepEqual(e.ValueFrom, svc.Env[i].ValueFrom) {
			bad(at+".env[CASSANDRA_USERNAME]", "want the same source as the Service's CASSANDRA_USERNAME, so that the Job's role is the one the function logs in as")
		}
	}
	for _, name := range []string{"CASSANDRA_KEYSPACE", "CASSANDRA_REPLICATION"} {
		e, ok := env[name]
		if !ok || e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil || e.ValueFrom.ConfigMapKeyRef.Name != b.configMap.Name || e.ValueFrom.ConfigMapKeyRef.Key != name {
			bad(at+".env["+name+"]", "want configMapKeyRef %s/%s, the function's own setting (%s)", b.configMap.Name, name, fileConfigMap)
		}
	}
	if h := env["CASSANDRA_HOST"].Value; h != b.cassandraService.Name {
		bad(at+".env[CASSANDRA_HOST]", "got %q, want %q, the headless Service", h, b.cassandraService.Name)
	}
	resolve := func(name string) string {
		e := env[name]
		switch {
		case e.ValueFrom == nil:
			return e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil && e.ValueFrom.ConfigMapKeyRef.Name == b.configMap.Name:
			return b.configMap.Data[e.ValueFrom.ConfigMapKeyRef.Key]
		case e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == b.secret.Name:
			return secretData(b.secret)[e.ValueFrom.SecretKeyRef.Key]
		}
		return ""
	}

	// The grants to the function's role.
	forRole := func(s string) bool { return strings.Contains(s, "CASSANDRA_USERNAME") }
	granted := map[string]bool{}
	created := false
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		switch m, r := grantOn.FindStringSubmatch(line), grantRole.FindStringSubmatch(line); {
		case m != nil && forRole(m[3]):
			resource := shellVar.ReplaceAllStringFunc(m[2], func(v string) string { return resolve(shellVar.FindStringSubmatch(v)[1]) })
			if k := keyspaceOn.FindStringSubmatch(resource); k == nil || !strings.EqualFold(k[1], cfg.CassandraKeyspace) {
				bad(at+".command", "%q grants on %s; want only KEYSPACE %s, the function's (CASSANDRA_KEYSPACE)", line, resource, cfg.CassandraKeyspace)
			}
			for _, p := range strings.Split(m[1], ",") {
				p = strings.ToUpper(strings.Join(strings.Fields(strings.TrimSuffix(strings.TrimSpace(p), " PERMISSION")), " "))
				granted[p] = true
			}
		case r != nil && forRole(r[2]):
			bad(at+".command", "%q grants a role to the function's; want only SELECT and MODIFY on its keyspace", line)
		case roleStmt.MatchString(line) && forRole(line):
			if superuser.MatchString(line) {
				bad(at+".command", "%q makes the function's role a superuser", line)
			}
			if strings.HasPrefix(strings.ToUpper(line), "CREATE") && strings.Contains(strings.ToUpper(line), "LOGIN = TRUE") {
				created = true
			}
		}
	}
	if !created {
		bad(at+".command", "no CREATE ROLE ... WITH LOGIN = true for the function's role ($CASSANDRA_USERNAME)")
	}
	for _, p := range []string{"SELECT", "MODIFY"} {
		if !granted[p] {
			bad(at+".command", "no GRANT %s ON KEYSPACE ... TO the function's role: it reads (SELECT) and writes (MODIFY) its tables", p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(granted)) {
		if p != "SELECT" && p != "MODIFY" {
			bad(at+".command", "grants %s to the function's role; want only SELECT and MODIFY (the Job, not the function, creates the schema)", p)
		}
	}
	if cfg.CassandraSchemaCreate && !granted["CREATE"] && !granted["ALL"] && !granted["ALL PERMISSIONS"] {
		errs = append(errs, fieldError(fileConfigMap, "ConfigMap", b.configMap.Name, "data.CASSANDRA_SCHEMA_CREATE", "true, while the role may not CREATE (%s creates the schema): the function would fail to create it on an empty cluster; want \"false\"", fileRoleJob))
	}

	// The files it reads: mounted, and the right ones.
	p := podFiles{b, &job.Spec.Template.Spec, c, secretSources(b)}
	vars := map[string]string{}
	var body []string
	for _, line := range strings.Split(script, "\n") {
		if m := shellPath.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			vars[m[1]] = m[2]
			continue
		}
		body = append(body, line)
	}
	expanded := shellVar.ReplaceAllStringFunc(strings.Join(body, "\n"), func(v string) string {
		if p, ok := vars[shellVar.FindStringSubmatch(v)[1]]; ok {
			return p
		}
		return v
	})
	read := map[mountedFile]bool{}
	for _, path := range slices.Compact(slices.Sorted(slices.Values(filePath.FindAllString(expanded, -1)))) {
		f, err := p.resolve(path)
		if err != nil {
			bad(at+".command", "reads %v", err)
			continue
		}
		read[f] = true
	}
	for _, want := range []struct {
		f   mountedFile
		why string
	}{
		{mountedFile{secret: fileSecretOf(b, "CASSANDRA_PASSWORD_FILE"), key: "password"}, "the function's password, which the role must have"},
		{mountedFile{secret: b.superuserSecret.Name, key: "username"}, "the superuser it logs in as"},
		{mountedFile{secret: b.superuserSecret.Name, key: "password"}, "the superuser's password"},
		{mountedFile{configMap: schemaConfigMap, key: "schema.cql"}, "the schema, " + fileSchema},
		{mountedFile{secret: b.setupCertificate.Spec.SecretName, key: "tls.crt"}, "its own client certificate, " + fileSetupCertificate},
		{mountedFile{secret: b.setupCertificate.Spec.SecretName, key: "tls.key"}, "the key of its own client certificate"},
	} {
		if !read[want.f] {
			bad(at+".command", "reads no file of key %q of %s: want %s", want.f.key, describeSource(want.f), want.why)
		}
	}
	// The text it replaces in schema.cql must be there, or the keyspace
	// would keep the file's one-node replication.
	for _, m := range sedSubst.FindAllStringSubmatch(script, -1) {
		if pattern := strings.ReplaceAll(m[1], `\.`, "."); !strings.Contains(b.schema, pattern) {
			bad(at+".command", "replaces %q by %s, but %s has no %q", m[1], m[2], fileSchema, pattern)
		}
	}
	if !strings.Contains(script, "$CASSANDRA_REPLICATION") {
		bad(at+".command", "never uses $CASSANDRA_REPLICATION: the keyspace would get %s's one-node replication", fileSchema)
	}
	return errors.Join(errs...)
}

// The parts of a shell script that checkJobPasswords reads.
var (
	shellAssign   = regexp.MustCompile(`^\s*(?:export\s+|local\s+|readonly\s+)?(\w+)=(.*)$`)
	passwordName  = regexp.MustCompile(`(?i)passw(or)?d`)
	passwordFile  = regexp.MustCompile(`(?i)/[\w./-]*passw(or)?d\b`)
	argWithSecret = regexp.MustCompile(`(?:^|[\s;(|&])(-e|--execute|-p|--password)(?:[\s=])(.*)$`)
)

// checkJobPasswords checks that the Job puts no password on a command
// line, where whoever sees the pod's processes (ps in the pod, the node, a
// debug container) may read it in /proc/PID/cmdline: no cqlsh -e
// (--execute) or -p (--password) argument of its script, or of any
// container's command and args, refers to a variable that holds a
// password. A password comes to cqlsh through its credentials file, and a
// statement that holds one through stdin or a file of mode 0600.
//
// A variable holds a password if its name says so, if its value comes from
// a file named password or from a Secret key named so, or if it is
// assigned from such a variable (followed through plain assignments).
// This is a text check, and it has limits: it sees $name, ${name} and
// Kubernetes' $(NAME), but not a password handed on through a function's
// positional parameters ($1), eval, xargs or a pipeline into a command's
// arguments, nor one after a flag other than these (curl -u user:PASS);
// and it takes the rest of a line after the flag as its argument, so
// another command later on the same line counts too. Review a new way of
// running cqlsh with that in mind.
func checkJobPasswords(b *bundle) error {
	var errs []error
	job := b.roleJob
	spec := &job.Spec.Template.Spec
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		at := "spec.template.spec.containers[" + c.Name + "]"
		secret := map[string]bool{}
		for _, e := range c.Env {
			if passwordName.MatchString(e.Name) || (e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && passwordName.MatchString(e.ValueFrom.SecretKeyRef.Key)) {
				secret[e.Name] = true
			}
		}
		// One line of the command and args, the script's own lines apart.
		text := strings.Join(slices.Concat(c.Command, c.Args), " ")
		// Lines continued with a backslash are one command.
		text = strings.ReplaceAll(text, "\\\n", " ")
		lines := strings.Split(text, "\n")
		refers := func(s string) string {
			for _, m := range shellVar.FindAllStringSubmatch(s, -1) {
				if secret[m[1]] {
					return m[1]
				}
			}
			for _, m := range kubeVar.FindAllStringSubmatch(s, -1) {
				if secret[m[1]] {
					return m[1]
				}
			}
			return ""
		}
		for changed := true; changed; {
			changed = false
			for _, line := range lines {
				m := shellAssign.FindStringSubmatch(line)
				if m == nil || secret[m[1]] {
					continue
				}
				if passwordName.MatchString(m[1]) || refers(m[2]) != "" || passwordFile.MatchString(m[2]) {
					secret[m[1]] = true
					changed = true
				}
			}
		}
		for _, line := range lines {
			m := argWithSecret.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if v := refers(m[2]); v != "" {
				errs = append(errs, fieldError(fileRoleJob, "Job", job.Name, at+".command", "%q passes $%s, a password, in a %s argument: whoever sees the pod's processes can read it in /proc/PID/cmdline; give cqlsh the statement on stdin (a here-document) or in a file of mode 0600, and the login in its credentials file", strings.TrimSpace(line), v, m[1]))
			}
		}
	}
	return errors.Join(errs...)
}

// kubeVar is a Kubernetes variable reference, $(NAME), in a container's
// command or args.
var kubeVar = regexp.MustCompile(`\$\((\w+)\)`)

// schemaConfigMap is the ConfigMap the cassandra Kustomization generates
// from schema.cql, which the Job mounts.
const schemaConfigMap = "tracker-schema"

// readinessSpeaksCQL reports what is wrong with the StatefulSet's
// readiness probe, or "": it must open TLS to the CQL port with the node's
// truststore and keystore (the files of client_encryption_options) and a
// name of the node certificate, then ask OPTIONS, which a node answers
// before any login. The probe is a Python script; its arguments are the
// truststore, the keystore and the name.
func readinessSpeaksCQL(b *bundle, c *corev1.Container) string {
	p := c.ReadinessProbe
	if p == nil || p.Exec == nil || len(p.Exec.Command) != 6 || p.Exec.Command[0] != "python3" || p.Exec.Command[1] != "-c" {
		return "want an exec of python3 -c SCRIPT TRUSTSTORE KEYSTORE NAME that asks CQL OPTIONS over TLS, so that ready means CQL answers"
	}
	script, args := p.Exec.Command[2], p.Exec.Command[3:]
	port := int32(0)
	for _, cp := range c.Ports {
		if cp.Name == "cql" {
			port = cp.ContainerPort
		}
	}
	if !strings.Contains(script, "wrap_socket") || !strings.Contains(script, strconv.Itoa(int(port))) {
		return fmt.Sprintf("the script opens no TLS connection to the cql port %d", port)
	}
	s, err := readCassandraSettings(b)
	if err != nil {
		return err.Error()
	}
	const ceo = "client_encryption_options"
	if args[0] != s.settings[ceo+".truststore"] || args[1] != s.settings[ceo+".keystore"] {
		return fmt.Sprintf("got truststore %q and keystore %q, want %s's %q and %q", args[0], args[1], ceo, s.settings[ceo+".truststore"], s.settings[ceo+".keystore"])
	}
	if !slices.ContainsFunc(b.nodeCertificate.Spec.DNSNames, func(d string) bool { return d == args[2] }) {
		return fmt.Sprintf("verifies the name %q, which the node certificate does not carry (dnsNames %v); Python refuses a wildcard over one label", args[2], b.nodeCertificate.Spec.DNSNames)
	}
	return ""
}
