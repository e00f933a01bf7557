package manifests

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
)

// This file checks TLS between the function and Cassandra, and between the
// nodes: the certificates cert-manager issues (or the Secrets that stand in
// for them), the mounts that bring them into the pods, the files the
// function and the nodes are told to read, and that the two sides agree.

// cassandraSettings are the cassandra.yaml settings the StatefulSet lays
// over the image's file, from the -Dcassandra.settings.KEY=VALUE options
// of JVM_EXTRA_OPTS (nested keys with dots), and the other -D system
// properties of that variable.
type cassandraSettings struct {
	settings   map[string]string
	properties map[string]string
	jvm        map[string]string // -XX:NAME=VALUE options
}

const settingsPrefix = "cassandra.settings."

// readCassandraSettings parses JVM_EXTRA_OPTS of the cassandra container.
// Cassandra reads the settings only when cassandra.config.allow_system_properties
// is true, so without it there are none.
func readCassandraSettings(b *bundle) (cassandraSettings, error) {
	s := cassandraSettings{settings: map[string]string{}, properties: map[string]string{}, jvm: map[string]string{}}
	c := cassandraContainer(b)
	if c == nil {
		return s, stsError(b, "spec.template.spec.containers", "no cassandra container")
	}
	field := stsContainerField + ".env[JVM_EXTRA_OPTS]"
	var errs []error
	for _, opt := range strings.Fields(containerEnv(c)["JVM_EXTRA_OPTS"]) {
		if name, value, ok := strings.Cut(strings.TrimPrefix(opt, "-XX:"), "="); strings.HasPrefix(opt, "-XX:") && ok {
			s.jvm[name] = value
			continue
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(opt, "-D"), "=")
		if !strings.HasPrefix(opt, "-D") || !ok {
			errs = append(errs, stsError(b, field, "option %q: want -DNAME=VALUE or -XX:NAME=VALUE", opt))
			continue
		}
		if _, dup := s.properties[name]; dup {
			errs = append(errs, stsError(b, field, "%s set twice", name))
		}
		s.properties[name] = value
		if key, ok := strings.CutPrefix(name, settingsPrefix); ok {
			s.settings[key] = value
		}
	}
	if len(s.settings) > 0 && s.properties["cassandra.config.allow_system_properties"] != "true" {
		errs = append(errs, stsError(b, field, "-Dcassandra.config.allow_system_properties=true is missing: Cassandra would ignore every -D%s option", settingsPrefix))
		s.settings = map[string]string{}
	}
	return s, errors.Join(errs...)
}

// enabled reports whether a boolean setting is "true".
func (s cassandraSettings) enabled(key string) bool { return s.settings[key] == "true" }

// className is the class of a setting given as a name or a class_name, in
// its short form (PasswordAuthenticator for
// org.apache.cassandra.auth.PasswordAuthenticator).
func (s cassandraSettings) className(key string) string {
	v, ok := s.settings[key+".class_name"]
	if !ok {
		v = s.settings[key]
	}
	return v[strings.LastIndex(v, ".")+1:]
}

// certificateKeys are the keys of the Secret cert-manager writes for a
// Certificate: the certificate, its key, the CA (the CA issuer writes it),
// and the additional output formats.
func certificateKeys(c *cmv1.Certificate) []string {
	keys := []string{"tls.crt", "tls.key", "ca.crt"}
	for _, f := range c.Spec.AdditionalOutputFormats {
		switch f.Type {
		case cmv1.CertificateOutputFormatCombinedPEM:
			keys = append(keys, cmv1.CertificateOutputFormatCombinedPEMKey)
		case cmv1.CertificateOutputFormatDER:
			keys = append(keys, cmv1.CertificateOutputFormatDERKey)
		}
	}
	return keys
}

// secretSource is one way a Secret of the repository comes to exist, and
// the keys it then has.
type secretSource struct {
	file, kind, name string
	keys             []string
}

// secretSources lists, by Secret name, how each Secret the pods mount is
// made: by cert-manager from a Certificate, or by hand from an example. A
// file may count on a key only if every way of making the Secret gives it.
func secretSources(b *bundle) map[string][]secretSource {
	out := map[string][]secretSource{}
	addSecret := func(file string, s *corev1.Secret) {
		out[s.Name] = append(out[s.Name], secretSource{file, "Secret", s.Name, slices.Sorted(maps.Keys(secretData(s)))})
	}
	addCert := func(file string, c *cmv1.Certificate) {
		out[c.Spec.SecretName] = append(out[c.Spec.SecretName], secretSource{file, "Certificate", c.Name, certificateKeys(c)})
	}
	addSecret(fileSecret, b.secret)
	addSecret(fileSuperuserSecret, b.superuserSecret)
	addCert(fileClientCertificate, b.clientCertificate)
	addSecret(fileClientTLSSecret, b.clientTLSSecret)
	addCert(fileNodeCertificate, b.nodeCertificate)
	addSecret(fileNodeTLSSecret, b.nodeTLSSecret)
	addCert(fileInternodeCertificate, b.internodeCertificate)
	addSecret(fileInternodeTLSSecret, b.internodeTLSSecret)
	addCert(fileSetupCertificate, b.setupCertificate)
	addSecret(fileSetupTLSSecret, b.setupTLSSecret)
	return out
}

// podFiles resolves the files a container reads through its mounts.
type podFiles struct {
	b       *bundle
	spec    *corev1.PodSpec
	c       *corev1.Container
	sources map[string][]secretSource
}

// mountedFile is where a path a container reads comes from.
type mountedFile struct {
	secret, configMap, key string
}

// resolve finds the Secret (or ConfigMap) key behind a file path: the
// mount of the path's directory, its volume, and the key of the volume's
// items (or the file name, without items). It fails if the path is in no
// mounted volume, or if the Secret may lack the key.
func (p podFiles) resolve(filePath string) (mountedFile, error) {
	dir, base := path.Split(path.Clean(filePath))
	dir = path.Clean(dir)
	i := slices.IndexFunc(p.c.VolumeMounts, func(m corev1.VolumeMount) bool { return path.Clean(m.MountPath) == dir })
	if i < 0 {
		var at []string
		for _, m := range p.c.VolumeMounts {
			at = append(at, m.MountPath)
		}
		return mountedFile{}, fmt.Errorf("%s is in no mounted volume (mounts: %v)", filePath, at)
	}
	m := p.c.VolumeMounts[i]
	j := slices.IndexFunc(p.spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
	if j < 0 {
		return mountedFile{}, fmt.Errorf("%s: no volume %q for the mount at %s", filePath, m.Name, m.MountPath)
	}
	v := p.spec.Volumes[j]
	var items []corev1.KeyToPath
	var f mountedFile
	switch {
	case v.Secret != nil:
		f.secret, items = v.Secret.SecretName, v.Secret.Items
	case v.ConfigMap != nil:
		f.configMap, items = v.ConfigMap.Name, v.ConfigMap.Items
	default:
		return mountedFile{}, fmt.Errorf("%s: volume %q is neither a Secret nor a ConfigMap", filePath, v.Name)
	}
	f.key = base
	if len(items) > 0 {
		k := slices.IndexFunc(items, func(it corev1.KeyToPath) bool { return it.Path == base })
		if k < 0 {
			return f, fmt.Errorf("%s: volume %q maps no key to %q", filePath, v.Name, base)
		}
		f.key = items[k].Key
	}
	if f.secret != "" {
		if err := p.provides(f.secret, f.key); err != nil {
			return f, fmt.Errorf("%s: %w", filePath, err)
		}
	} else if err := p.b.generatedConfigMapHas(f.configMap, f.key); err != nil {
		return f, fmt.Errorf("%s: %w", filePath, err)
	}
	return f, nil
}

// provides checks that every way of making the Secret gives it the key.
func (p podFiles) provides(secret, key string) error {
	srcs := p.sources[secret]
	if len(srcs) == 0 {
		return fmt.Errorf("Secret %q is made by no file of the repository (no Certificate, no example)", secret)
	}
	for _, s := range srcs {
		if !slices.Contains(s.keys, key) {
			return fmt.Errorf("Secret %q has no key %q when made from %s (%s %q has %v)", secret, key, s.file, s.kind, s.name, s.keys)
		}
	}
	return nil
}

// generatedConfigMapHas checks that the cassandra Kustomization generates
// the ConfigMap with the key.
func (b *bundle) generatedConfigMapHas(name, key string) error {
	for _, g := range b.cassandraKustomize.ConfigMapGenerator {
		if g.Name != name {
			continue
		}
		for _, f := range g.Files {
			k, _, ok := strings.Cut(f, "=")
			if !ok {
				k = path.Base(f)
			}
			if k == key {
				return nil
			}
		}
		return fmt.Errorf("ConfigMap %q of %s has no key %q (files %v)", name, fileCassandraKustomize, key, g.Files)
	}
	return fmt.Errorf("ConfigMap %q is generated by no configMapGenerator of %s", name, fileCassandraKustomize)
}

// fileVariables are the function's variables that name a mounted file,
// with the key of the Secret it must be: which Secret is fileSecretOf's.
var fileVariables = []struct{ name, key string }{
	{"CASSANDRA_TLS_CA_FILE", "ca.crt"},
	{"CASSANDRA_TLS_CERT_FILE", "tls.crt"},
	{"CASSANDRA_TLS_KEY_FILE", "tls.key"},
	{"CASSANDRA_PASSWORD_FILE", "password"},
}

// fileSecretOf is the Secret a file variable must come from: the TLS files
// from the client Certificate's Secret, the password from the function's
// credentials.
func fileSecretOf(b *bundle, name string) string {
	if name == "CASSANDRA_PASSWORD_FILE" {
		return b.secret.Name
	}
	return b.clientCertificate.Spec.SecretName
}

// checkSecretMounts checks how the Service, the StatefulSet and the Job
// mount Secrets and ConfigMaps: read-only, never with subPath (a subPath
// mount is a copy made when the container starts, which no later update of
// the Secret reaches, so a renewed certificate or a rotated password would
// never arrive), from Secrets the repository makes, with the keys their
// items name; and the Service mounts nothing else.
func checkSecretMounts(b *bundle) error {
	var errs []error
	sources := secretSources(b)
	check := func(file, kind, name, at string, spec *corev1.PodSpec, c *corev1.Container, claims []string) {
		bad := func(field, format string, args ...any) {
			errs = append(errs, fieldError(file, kind, name, field, format, args...))
		}
		for _, m := range c.VolumeMounts {
			j := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
			if j < 0 {
				if !slices.Contains(claims, m.Name) {
					bad(at+".volumeMounts["+m.Name+"]", "no volume of that name")
				}
				continue
			}
			v := spec.Volumes[j]
			if v.Secret == nil && v.ConfigMap == nil {
				if kind == "Service" {
					bad(at+".volumeMounts["+m.Name+"]", "mounts a volume that is not a Secret; the function needs only its Secrets")
				}
				continue
			}
			if !m.ReadOnly {
				bad(at+".volumeMounts["+m.Name+"].readOnly", "got false, want true: nothing in the pod may change the Secret's files")
			}
			if m.SubPath != "" || m.SubPathExpr != "" {
				bad(at+".volumeMounts["+m.Name+"].subPath", "got %q; a subPath mount is a copy made at start, which no update of the Secret reaches (a renewed certificate, a rotated password)", m.SubPath+m.SubPathExpr)
			}
			if v.Secret != nil {
				p := podFiles{b, spec, c, sources}
				if len(sources[v.Secret.SecretName]) == 0 {
					bad("spec.volumes["+v.Name+"].secret.secretName", "Secret %q is made by no file of the repository (no Certificate, no example)", v.Secret.SecretName)
				}
				for _, it := range v.Secret.Items {
					if err := p.provides(v.Secret.SecretName, it.Key); err != nil {
						bad("spec.volumes["+v.Name+"].secret.items["+it.Key+"]", "%v", err)
					}
				}
			}
		}
	}
	if c := serviceContainer(b.service); c != nil {
		check(fileService, "Service", b.service.Name, containerField, &b.service.Spec.Template.Spec.PodSpec, c, nil)
	}
	if c := cassandraContainer(b); c != nil {
		var claims []string
		for _, t := range b.statefulSet.Spec.VolumeClaimTemplates {
			claims = append(claims, t.Name)
		}
		check(fileStatefulSet, "StatefulSet", b.statefulSet.Name, stsContainerField, &b.statefulSet.Spec.Template.Spec, c, claims)
	}
	for i := range b.roleJob.Spec.Template.Spec.Containers {
		c := &b.roleJob.Spec.Template.Spec.Containers[i]
		check(fileRoleJob, "Job", b.roleJob.Name, "spec.template.spec.containers["+c.Name+"]", &b.roleJob.Spec.Template.Spec, c, nil)
	}
	return errors.Join(errs...)
}

// checkMountedFiles checks every file the function and the nodes are told
// to read: each CASSANDRA_TLS_*_FILE and CASSANDRA_PASSWORD_FILE of the
// function, and the StatefulSet's keystores and truststores, must be in a
// mounted volume and be the right key of the right Secret, one that every
// way of making the Secret (cert-manager, or the example) provides: those
// of client_encryption_options from the client-facing node certificate,
// those of server_encryption_options from the internode certificate.
func checkMountedFiles(b *bundle) error {
	var errs []error
	sources := secretSources(b)
	cfg, err := effectiveConfig(b)
	if err != nil {
		return serviceError(b, containerField+".env", "%v", err)
	}
	if c := serviceContainer(b.service); c != nil {
		p := podFiles{b, &b.service.Spec.Template.Spec.PodSpec, c, sources}
		values := map[string]string{
			"CASSANDRA_TLS_CA_FILE":   cfg.CassandraTLSCAFile,
			"CASSANDRA_TLS_CERT_FILE": cfg.CassandraTLSCertFile,
			"CASSANDRA_TLS_KEY_FILE":  cfg.CassandraTLSKeyFile,
			"CASSANDRA_PASSWORD_FILE": cfg.CassandraPasswordFile,
		}
		for _, v := range fileVariables {
			if values[v.name] == "" {
				continue
			}
			bad := func(format string, args ...any) {
				errs = append(errs, fieldError(fileConfigMap, "ConfigMap", b.configMap.Name, "data."+v.name, format, args...))
			}
			f, err := p.resolve(values[v.name])
			switch want := fileSecretOf(b, v.name); {
			case err != nil:
				bad("%v", err)
			case f.secret != want || f.key != v.key:
				bad("%s is key %q of %s; want key %q of Secret %q", values[v.name], f.key, describeSource(f), v.key, want)
			}
		}
	}
	settings, err := readCassandraSettings(b)
	if err != nil {
		errs = append(errs, err)
	}
	if c := cassandraContainer(b); c != nil {
		p := podFiles{b, &b.statefulSet.Spec.Template.Spec, c, sources}
		for _, opts := range []struct {
			name, file string
			cert       *cmv1.Certificate
		}{
			{"client_encryption_options", fileNodeCertificate, b.nodeCertificate},
			{"server_encryption_options", fileInternodeCertificate, b.internodeCertificate},
		} {
			for _, f := range []struct{ setting, key string }{
				{"keystore", cmv1.CertificateOutputFormatCombinedPEMKey},
				{"outbound_keystore", cmv1.CertificateOutputFormatCombinedPEMKey},
				{"truststore", "ca.crt"},
			} {
				key := opts.name + "." + f.setting
				v, ok := settings.settings[key]
				if !ok {
					continue
				}
				bad := func(format string, args ...any) {
					errs = append(errs, stsError(b, stsContainerField+".env[JVM_EXTRA_OPTS]", key+": "+format, args...))
				}
				got, err := p.resolve(v)
				switch want := opts.cert.Spec.SecretName; {
				case err != nil:
					bad("%v", err)
				case got.secret != want || got.key != f.key:
					bad("%s is key %q of %s; want key %q of Secret %q (%s)", v, got.key, describeSource(got), f.key, want, opts.file)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func describeSource(f mountedFile) string {
	if f.configMap != "" {
		return fmt.Sprintf("ConfigMap %q", f.configMap)
	}
	return fmt.Sprintf("Secret %q", f.secret)
}

// checkClusterTLS checks that the function speaks to the nodes as they
// expect: TLS exactly when the nodes require it, a client certificate
// exactly when they ask for one, the nodes verified by a name their
// certificate carries, and the nodes' and the function's certificates
// signed by the same authority, each with the usage its side needs.
// Between the nodes, every connection is encrypted and mutual.
func checkClusterTLS(b *bundle) error {
	cfg, err := effectiveConfig(b)
	if err != nil {
		return serviceError(b, containerField+".env", "%v", err)
	}
	s, err := readCassandraSettings(b)
	if err != nil {
		return err
	}
	var errs []error
	cm := func(name, format string, args ...any) {
		errs = append(errs, fieldError(fileConfigMap, "ConfigMap", b.configMap.Name, "data."+name, format, args...))
	}
	sts := func(key, format string, args ...any) {
		errs = append(errs, stsError(b, stsContainerField+".env[JVM_EXTRA_OPTS]", key+": "+format, args...))
	}
	const ceo, seo = "client_encryption_options", "server_encryption_options"
	required := s.enabled(ceo+".enabled") && s.settings[ceo+".optional"] == "false"
	switch {
	case required && !cfg.CassandraTLS:
		cm("CASSANDRA_TLS", "false, while the nodes accept only TLS (%s.enabled true, optional false): the function could not connect", ceo)
	case !s.enabled(ceo+".enabled") && cfg.CassandraTLS:
		cm("CASSANDRA_TLS", "true, while the nodes speak no TLS (%s.enabled is not true): the function could not connect", ceo)
	}
	if cfg.CassandraTLS && !required {
		sts(ceo, "TLS is not required (enabled %q, optional %q) although the function uses it: want enabled true and optional false, so that no client talks in the clear", s.settings[ceo+".enabled"], s.settings[ceo+".optional"])
	}
	clientAuth := s.enabled(ceo + ".require_client_auth")
	switch {
	case clientAuth && cfg.CassandraTLSCertFile == "":
		cm("CASSANDRA_TLS_CERT_FILE", "empty, while the nodes require a client certificate (%s.require_client_auth true)", ceo)
	case !clientAuth && cfg.CassandraTLSCertFile != "":
		sts(ceo+".require_client_auth", "got %q while the function presents a client certificate: want true, so that only clients of the CA connect", s.settings[ceo+".require_client_auth"])
	}
	for _, k := range []string{ceo, seo} {
		if f := s.className(k + ".ssl_context_factory"); f != "PEMBasedSslContextFactory" {
			sts(k+".ssl_context_factory.class_name", "got %q, want org.apache.cassandra.security.PEMBasedSslContextFactory, which reads the PEM files of the node Secret", f)
		}
	}
	if s.settings[seo+".internode_encryption"] != "all" {
		sts(seo+".internode_encryption", "got %q, want all: every connection between nodes encrypted", s.settings[seo+".internode_encryption"])
	}
	if s.settings[seo+".optional"] != "false" {
		sts(seo+".optional", "got %q, want false: no node accepts a peer in the clear", s.settings[seo+".optional"])
	}
	if !s.enabled(seo + ".require_client_auth") {
		sts(seo+".require_client_auth", "got %q, want true: a node accepts only peers with a certificate of the CA", s.settings[seo+".require_client_auth"])
	}

	node, client := b.nodeCertificate, b.clientCertificate
	if cfg.CassandraTLS {
		switch name := cfg.CassandraTLSServerName; {
		case name == "":
			cm("CASSANDRA_TLS_SERVER_NAME", "empty: the driver dials the nodes it discovers by pod IP, which no node certificate carries; want one of its dnsNames %v", node.Spec.DNSNames)
		case !slices.ContainsFunc(node.Spec.DNSNames, func(d string) bool { return dnsNameMatches(d, name) }):
			cm("CASSANDRA_TLS_SERVER_NAME", "got %q, which the node certificate does not carry; want one of its dnsNames %v (%s)", name, node.Spec.DNSNames, fileNodeCertificate)
		}
		if cfg.CassandraTLSInsecureSkipVerify {
			cm("CASSANDRA_TLS_INSECURE_SKIP_VERIFY", "true: the function would talk to any node, or anything posing as one")
		}
	}
	if client.Spec.IssuerRef != node.Spec.IssuerRef {
		errs = append(errs, fieldError(fileClientCertificate, "Certificate", client.Name, "spec.issuerRef", "got %+v, want %+v as the node certificate's: each side verifies the other with its own ca.crt", client.Spec.IssuerRef, node.Spec.IssuerRef))
	}
	if cfg.CassandraTLSCertFile != "" && !slices.Contains(client.Spec.Usages, cmv1.UsageClientAuth) {
		errs = append(errs, fieldError(fileClientCertificate, "Certificate", client.Name, "spec.usages", "got %v, want client auth: the nodes require a client certificate", client.Spec.Usages))
	}
	// The client-facing certificate serves clients, and the readiness
	// probe presents it as its client certificate to a port that requires
	// one; the internode certificate serves peers and, with internode
	// require_client_auth, is each other's client.
	for _, u := range []struct {
		file, why string
		c         *cmv1.Certificate
		client    bool
	}{
		{fileNodeCertificate, "the nodes serve clients with it, and the readiness probe presents it to the native port, which requires a client certificate", node, clientAuth},
		{fileInternodeCertificate, "the nodes serve each other with it and, with internode require_client_auth, are each other's clients", b.internodeCertificate, s.enabled(seo + ".require_client_auth")},
	} {
		want := []cmv1.KeyUsage{cmv1.UsageServerAuth}
		if u.client {
			want = append(want, cmv1.UsageClientAuth)
		}
		for _, k := range want {
			if !slices.Contains(u.c.Spec.Usages, k) {
				errs = append(errs, fieldError(u.file, "Certificate", u.c.Name, "spec.usages", "got %v, want %v: %s", u.c.Spec.Usages, want, u.why))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// issuerOf is the Issuer of either authority's file that a Certificate
// names, or nil.
func issuerOf(b *bundle, ref string) *cmv1.Issuer {
	for _, is := range slices.Concat(b.issuers, b.internodeIssuers) {
		if is.Name == ref {
			return is
		}
	}
	return nil
}

// signingCA is the Secret of the CA that signs a Certificate: that of its
// CA Issuer, or "" if the Certificate names no CA Issuer of the
// repository.
func signingCA(b *bundle, c *cmv1.Certificate) string {
	if c.Spec.IssuerRef.Kind != "Issuer" {
		return ""
	}
	if is := issuerOf(b, c.Spec.IssuerRef.Name); is != nil && is.Spec.CA != nil {
		return is.Spec.CA.SecretName
	}
	return ""
}

// leafCertificates are the certificates the CA Issuers sign, with their
// files.
func leafCertificates(b *bundle) []struct {
	file string
	c    *cmv1.Certificate
} {
	return []struct {
		file string
		c    *cmv1.Certificate
	}{
		{fileNodeCertificate, b.nodeCertificate},
		{fileInternodeCertificate, b.internodeCertificate},
		{fileClientCertificate, b.clientCertificate},
		{fileSetupCertificate, b.setupCertificate},
	}
}

// checkInternodeAuthority checks that a client certificate is never a
// node's on the internode port. A node accepts every peer whose
// certificate its server_encryption_options truststore verifies
// (Cassandra's default internode_authenticator asks nothing more), and a
// peer is outside every role and grant. So that truststore is the ca.crt
// of the internode certificate's Secret; the internode certificate comes
// from the CA Issuer of the internode authority (internode-ca.yaml), whose
// CA is not the tracker's; that CA signs no other certificate; and the
// truststore of the native port is another CA.
func checkInternodeAuthority(b *bundle) error {
	s, err := readCassandraSettings(b)
	if err != nil {
		return err
	}
	var errs []error
	sts := func(key, format string, args ...any) {
		errs = append(errs, stsError(b, stsContainerField+".env[JVM_EXTRA_OPTS]", key+": "+format, args...))
	}
	const ceo, seo = "client_encryption_options", "server_encryption_options"
	in, ica := b.internodeCertificate, b.internodeCACertificate
	internodeCA := ica.Spec.SecretName
	if internodeCA == b.caCertificate.Spec.SecretName {
		errs = append(errs, fieldError(fileInternodeCA, "Certificate", ica.Name, "spec.secretName", "got %q, the tracker CA's Secret: want an authority of its own for the internode port", internodeCA))
	}
	if !slices.ContainsFunc(b.internodeIssuers, func(is *cmv1.Issuer) bool {
		return is.Name == in.Spec.IssuerRef.Name && is.Spec.CA != nil && is.Spec.CA.SecretName == internodeCA
	}) || in.Spec.IssuerRef.Kind != "Issuer" {
		errs = append(errs, fieldError(fileInternodeCertificate, "Certificate", in.Name, "spec.issuerRef", "got %+v, want the CA Issuer of %s, which signs with Secret %q: a node accepts as a peer whatever the internode CA signed", in.Spec.IssuerRef, fileInternodeCA, internodeCA))
	}
	for _, l := range leafCertificates(b) {
		if l.c != in && signingCA(b, l.c) == internodeCA {
			errs = append(errs, fieldError(l.file, "Certificate", l.c.Name, "spec.issuerRef", "got %+v, the internode authority, which must sign only %s: the nodes would accept this certificate as a peer on the internode port", l.c.Spec.IssuerRef, fileInternodeCertificate))
		}
	}

	// The truststores, by the Secret their file is in and the CA that
	// signs that Secret's certificate.
	c := cassandraContainer(b)
	if c == nil {
		return errors.Join(errs...)
	}
	p := podFiles{b, &b.statefulSet.Spec.Template.Spec, c, secretSources(b)}
	trusted := func(opts string) (secret, ca string) {
		v, ok := s.settings[opts+".truststore"]
		if !ok {
			sts(opts+".truststore", "missing: want the ca.crt of the Secret of %s", map[string]string{ceo: fileNodeCertificate, seo: fileInternodeCertificate}[opts])
			return "", ""
		}
		f, err := p.resolve(v)
		if err != nil || f.secret == "" {
			return "", ""
		}
		for _, l := range leafCertificates(b) {
			if l.c.Spec.SecretName == f.secret {
				return f.secret, signingCA(b, l.c)
			}
		}
		return f.secret, ""
	}
	_, ceoCA := trusted(ceo)
	seoSecret, seoCA := trusted(seo)
	if seoSecret != "" && seoSecret != in.Spec.SecretName {
		sts(seo+".truststore", "a file of Secret %q; want the ca.crt of %q, the internode certificate's Secret, which holds the internode CA alone", seoSecret, in.Spec.SecretName)
	}
	switch {
	case seoCA != "" && seoCA == ceoCA:
		sts(seo+".truststore", "trusts CA %q, the CA of the native port's clients (%s.truststore): every client certificate it signed (the function's, the Job's) would be accepted as a node on the internode port, where no role applies", seoCA, ceo)
	case seoCA != "" && seoCA != internodeCA:
		sts(seo+".truststore", "trusts CA %q; want %q, the internode authority of %s", seoCA, internodeCA, fileInternodeCA)
	}
	return errors.Join(errs...)
}

// dnsNameMatches reports whether a certificate DNS name covers a host, as
// Go's crypto/x509 decides: exactly, or by a wildcard first label.
func dnsNameMatches(pattern, host string) bool {
	if strings.EqualFold(pattern, host) {
		return true
	}
	rest, ok := strings.CutPrefix(pattern, "*.")
	first, hostRest, found := strings.Cut(host, ".")
	return ok && found && first != "" && strings.EqualFold(rest, hostRest)
}

// checkCertificates checks the cert-manager objects and the Secrets that
// stand in for them: each CA chain (a self-signed Issuer, the CA
// Certificate, the CA Issuer the leaves name), the tracker's CA for the
// native port's certificates and the internode CA for the internode one;
// lifetimes that renew in time; the nodes' keys in the one encoding
// Cassandra reads, next to the combined PEM file their keystores are; no
// wildcard names; and examples that hold every key the Certificate's
// Secret has, and placeholders only.
func checkCertificates(b *bundle) error {
	var errs []error
	cert := func(file string, c *cmv1.Certificate, field, format string, args ...any) {
		errs = append(errs, fieldError(file, "Certificate", c.Name, field, format, args...))
	}
	type leaf struct {
		file string
		c    *cmv1.Certificate
	}
	for _, chain := range []struct {
		file   string
		ca     *cmv1.Certificate
		leaves []leaf
	}{
		{fileIssuer, b.caCertificate, []leaf{{fileNodeCertificate, b.nodeCertificate}, {fileClientCertificate, b.clientCertificate}, {fileSetupCertificate, b.setupCertificate}}},
		{fileInternodeCA, b.internodeCACertificate, []leaf{{fileInternodeCertificate, b.internodeCertificate}}},
	} {
		ca := chain.ca
		if !ca.Spec.IsCA {
			cert(chain.file, ca, "spec.isCA", "got false, want true")
		}
		if is := issuerOf(b, ca.Spec.IssuerRef.Name); ca.Spec.IssuerRef.Kind != "Issuer" || is == nil || is.Spec.SelfSigned == nil {
			cert(chain.file, ca, "spec.issuerRef", "got %+v, want the self-signed Issuer of %s", ca.Spec.IssuerRef, fileIssuer)
		}
		if pk := ca.Spec.PrivateKey; pk == nil || pk.RotationPolicy != cmv1.RotationPolicyNever {
			cert(chain.file, ca, "spec.privateKey.rotationPolicy", "want Never: a renewed CA certificate with a new key would not verify the certificates it signed before")
		}
		leafLife := 0.0
		for _, l := range chain.leaves {
			c := l.c
			if signingCA(b, c) != ca.Spec.SecretName {
				cert(l.file, c, "spec.issuerRef", "got %+v, want the CA Issuer of %s, which signs with Secret %q", c.Spec.IssuerRef, chain.file, ca.Spec.SecretName)
			}
			if c.Spec.Duration == nil || c.Spec.RenewBefore == nil || c.Spec.RenewBefore.Duration >= c.Spec.Duration.Duration {
				cert(l.file, c, "spec.renewBefore", "want duration and renewBefore set, renewBefore the shorter")
			} else {
				leafLife = max(leafLife, c.Spec.Duration.Hours())
			}
		}
		if ca.Spec.RenewBefore == nil || ca.Spec.RenewBefore.Hours() < leafLife {
			cert(chain.file, ca, "spec.renewBefore", "want at least the longest leaf's duration (%gh): a leaf's ca.crt holds the CA certificate of the day it was issued, which must outlive the leaf", leafLife)
		}
	}
	for _, l := range []leaf{{fileNodeCertificate, b.nodeCertificate}, {fileInternodeCertificate, b.internodeCertificate}} {
		if pk := l.c.Spec.PrivateKey; pk == nil || pk.Encoding != cmv1.PKCS8 {
			cert(l.file, l.c, "spec.privateKey.encoding", "want PKCS8: Cassandra's PEMReader reads no other encoding")
		}
		if !slices.ContainsFunc(l.c.Spec.AdditionalOutputFormats, func(f cmv1.CertificateAdditionalOutputFormat) bool {
			return f.Type == cmv1.CertificateOutputFormatCombinedPEM
		}) {
			cert(l.file, l.c, "spec.additionalOutputFormats", "want CombinedPEM: PEMBasedSslContextFactory's keystore is the key and the certificate in one file, tls-combined.pem")
		}
	}
	// A wildcard covers more than the nodes: "*.cassandra" is also
	// <service>.cassandra, a Service of any namespace named cassandra, for
	// Go clients; and the clients verify one name, "cassandra".
	for _, l := range leafCertificates(b) {
		for _, d := range l.c.Spec.DNSNames {
			if strings.Contains(d, "*") {
				cert(l.file, l.c, "spec.dnsNames", "%q is a wildcard: it also names hosts that are no node (*.cassandra covers <service>.cassandra, any Service of a namespace named cassandra); want the exact names clients verify, fully qualified ones in an overlay", d)
			}
		}
	}

	for _, ex := range []struct {
		file string
		s    *corev1.Secret
		c    *cmv1.Certificate
	}{
		{fileNodeTLSSecret, b.nodeTLSSecret, b.nodeCertificate},
		{fileInternodeTLSSecret, b.internodeTLSSecret, b.internodeCertificate},
		{fileSetupTLSSecret, b.setupTLSSecret, b.setupCertificate},
		{fileClientTLSSecret, b.clientTLSSecret, b.clientCertificate},
	} {
		bad := func(field, format string, args ...any) {
			errs = append(errs, fieldError(ex.file, "Secret", ex.s.Name, field, format, args...))
		}
		if ex.s.Name != ex.c.Spec.SecretName {
			bad("metadata.name", "got %q, want %q, the Secret of the Certificate it stands in for", ex.s.Name, ex.c.Spec.SecretName)
		}
		if ex.s.Type != corev1.SecretTypeTLS {
			bad("type", "got %q, want %s, as cert-manager writes it", ex.s.Type, corev1.SecretTypeTLS)
		}
		data := secretData(ex.s)
		for _, k := range certificateKeys(ex.c) {
			if _, ok := data[k]; !ok {
				bad("stringData."+k, "missing; the Certificate's Secret has it")
			}
		}
		for k, v := range data {
			if !strings.HasPrefix(v, "REPLACE-ME") {
				bad("stringData."+k, "not a REPLACE-ME placeholder: no key or certificate belongs in the repository")
			}
		}
	}
	for _, ex := range []struct {
		file string
		s    *corev1.Secret
	}{{fileSecret, b.secret}, {fileSuperuserSecret, b.superuserSecret}} {
		if v := secretData(ex.s)["password"]; !strings.HasPrefix(v, "REPLACE-ME") {
			errs = append(errs, fieldError(ex.file, "Secret", ex.s.Name, "stringData.password", "not a REPLACE-ME placeholder: no password belongs in the repository"))
		}
	}
	return errors.Join(errs...)
}

// nodeNames are the names a client may verify a node by: the client-facing
// certificate's dnsNames and common name (OpenSSL checks the common name
// when a certificate has no DNS name).
func nodeNames(b *bundle) []string {
	names := slices.Clone(b.nodeCertificate.Spec.DNSNames)
	if cn := b.nodeCertificate.Spec.CommonName; cn != "" {
		names = append(names, cn)
	}
	return names
}

// checkJobCertificate checks the client certificate of the setup Job
// (cassandra/role-job.yaml): the Job mounts no Secret of the nodes'
// certificates, whose key would let whoever holds the Job's pod pose as
// every node to the function (and collect its password) or join the
// cluster; it mounts its own certificate's Secret; and that certificate is
// a client's only: the tracker CA's (which the native port trusts), with
// client auth, without server auth (cert-manager's default usages include
// it, so they must be listed), and with none of the names clients verify
// the nodes by.
func checkJobCertificate(b *bundle) error {
	var errs []error
	job, setup := b.roleJob, b.setupCertificate
	spec := &job.Spec.Template.Spec
	nodeSecrets := map[string]string{
		b.nodeCertificate.Spec.SecretName:      fileNodeCertificate,
		b.internodeCertificate.Spec.SecretName: fileInternodeCertificate,
	}
	mounted := map[string]bool{}
	for _, v := range spec.Volumes {
		var secrets []string
		switch {
		case v.Secret != nil:
			secrets = append(secrets, v.Secret.SecretName)
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					secrets = append(secrets, src.Secret.Name)
				}
			}
		}
		for _, name := range secrets {
			mounted[name] = true
			if file, ok := nodeSecrets[name]; ok {
				errs = append(errs, fieldError(fileRoleJob, "Job", job.Name, "spec.volumes["+v.Name+"]", "mounts Secret %q, the nodes' certificate (%s): whoever holds the Job's pod could pose as every node; want the Job's own client certificate, %q", name, file, setup.Spec.SecretName))
			}
		}
	}
	if !mounted[setup.Spec.SecretName] {
		errs = append(errs, fieldError(fileRoleJob, "Job", job.Name, "spec.volumes", "no volume of Secret %q, the Job's client certificate (%s): the native port requires one", setup.Spec.SecretName, fileSetupCertificate))
	}
	cert := func(field, format string, args ...any) {
		errs = append(errs, fieldError(fileSetupCertificate, "Certificate", setup.Name, field, format, args...))
	}
	if setup.Spec.IssuerRef != b.nodeCertificate.Spec.IssuerRef {
		cert("spec.issuerRef", "got %+v, want %+v as the node certificate's: the native port trusts that CA, and the Job verifies the nodes with its ca.crt", setup.Spec.IssuerRef, b.nodeCertificate.Spec.IssuerRef)
	}
	switch u := setup.Spec.Usages; {
	case len(u) == 0:
		cert("spec.usages", "none: cert-manager would issue digital signature, key encipherment and server auth; want client auth only")
	case slices.Contains(u, cmv1.UsageServerAuth):
		cert("spec.usages", "got %v: server auth would let the Job's key serve as a node; want client auth only", u)
	case !slices.Contains(u, cmv1.UsageClientAuth):
		cert("spec.usages", "got %v, want client auth: the native port requires a client certificate", u)
	}
	names := nodeNames(b)
	namesNode := func(d string) bool {
		return d != "" && slices.ContainsFunc(names, func(n string) bool { return dnsNameMatches(d, n) || dnsNameMatches(n, d) })
	}
	for _, d := range setup.Spec.DNSNames {
		if namesNode(d) {
			cert("spec.dnsNames", "%q names the nodes (%v): a client verifying a node by that name would accept the Job's certificate", d, names)
		}
	}
	if namesNode(setup.Spec.CommonName) {
		cert("spec.commonName", "%q names the nodes (%v): OpenSSL verifies a certificate without DNS names by its common name", setup.Spec.CommonName, names)
	}
	return errors.Join(errs...)
}
