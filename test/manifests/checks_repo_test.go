package manifests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"sigs.k8s.io/yaml"

	"tracker/function"
)

// labeled is one set of labels to check, with where it is.
type labeled struct {
	file, kind, name, field string
	labels                  map[string]string
}

// allLabels lists every object's labels, and those of the pod templates.
func allLabels(b *bundle) []labeled {
	out := []labeled{
		{fileService, "Service", b.service.Name, "metadata.labels", b.service.Labels},
		{fileService, "Service", b.service.Name, "spec.template.metadata.labels", b.service.Spec.Template.Labels},
		{fileConfigMap, "ConfigMap", b.configMap.Name, "metadata.labels", b.configMap.Labels},
		{fileSecret, "Secret", b.secret.Name, "metadata.labels", b.secret.Labels},
		{fileTrigger, "Trigger", b.trigger.Name, "metadata.labels", b.trigger.Labels},
		{fileStorageClass, "StorageClass", b.storageClass.Name, "metadata.labels", b.storageClass.Labels},
		{fileCassandraService, "Service", b.cassandraService.Name, "metadata.labels", b.cassandraService.Labels},
		{fileStatefulSet, "StatefulSet", b.statefulSet.Name, "metadata.labels", b.statefulSet.Labels},
		{fileStatefulSet, "StatefulSet", b.statefulSet.Name, "spec.template.metadata.labels", b.statefulSet.Spec.Template.Labels},
		{filePDB, "PodDisruptionBudget", b.pdb.Name, "metadata.labels", b.pdb.Labels},
		{fileNetworkPolicy, "NetworkPolicy", b.networkPolicy.Name, "metadata.labels", b.networkPolicy.Labels},
		{fileRoleJob, "Job", b.roleJob.Name, "metadata.labels", b.roleJob.Labels},
		{fileRoleJob, "Job", b.roleJob.Name, "spec.template.metadata.labels", b.roleJob.Spec.Template.Labels},
		{fileSuperuserSecret, "Secret", b.superuserSecret.Name, "metadata.labels", b.superuserSecret.Labels},
		{fileNodeTLSSecret, "Secret", b.nodeTLSSecret.Name, "metadata.labels", b.nodeTLSSecret.Labels},
		{fileInternodeTLSSecret, "Secret", b.internodeTLSSecret.Name, "metadata.labels", b.internodeTLSSecret.Labels},
		{fileSetupTLSSecret, "Secret", b.setupTLSSecret.Name, "metadata.labels", b.setupTLSSecret.Labels},
		{fileClientTLSSecret, "Secret", b.clientTLSSecret.Name, "metadata.labels", b.clientTLSSecret.Labels},
	}
	// cert-manager objects, and the Secrets cert-manager writes for them.
	for _, c := range []struct {
		file string
		c    *cmv1.Certificate
	}{
		{fileIssuer, b.caCertificate}, {fileInternodeCA, b.internodeCACertificate}, {fileNodeCertificate, b.nodeCertificate},
		{fileInternodeCertificate, b.internodeCertificate}, {fileSetupCertificate, b.setupCertificate}, {fileClientCertificate, b.clientCertificate},
	} {
		out = append(out, labeled{c.file, "Certificate", c.c.Name, "metadata.labels", c.c.Labels})
		var l map[string]string
		if c.c.Spec.SecretTemplate != nil {
			l = c.c.Spec.SecretTemplate.Labels
		}
		out = append(out, labeled{c.file, "Certificate", c.c.Name, "spec.secretTemplate.labels", l})
	}
	for _, is := range b.issuers {
		out = append(out, labeled{fileIssuer, "Issuer", is.Name, "metadata.labels", is.Labels})
	}
	for _, is := range b.internodeIssuers {
		out = append(out, labeled{fileInternodeCA, "Issuer", is.Name, "metadata.labels", is.Labels})
	}
	for i, g := range b.cassandraKustomize.ConfigMapGenerator {
		var l map[string]string
		if g.Options != nil {
			l = g.Options.Labels
		}
		out = append(out, labeled{fileCassandraKustomize, "ConfigMap", g.Name, fmt.Sprintf("configMapGenerator[%d].options.labels", i), l})
	}
	for _, br := range b.brokers {
		out = append(out, labeled{fileBroker, "Broker", br.Name, "metadata.labels", br.Labels})
	}
	out = append(out,
		labeled{filePodMonitor, "PodMonitor", b.podMonitor.Name, "metadata.labels", b.podMonitor.Labels},
		labeled{filePrometheusRule, "PrometheusRule", b.prometheusRule.Name, "metadata.labels", b.prometheusRule.Labels},
	)
	for i, g := range b.monitoringKustomization.ConfigMapGenerator {
		var l map[string]string
		if g.Options != nil {
			l = g.Options.Labels
		}
		out = append(out, labeled{fileMonitoringKustomize, "ConfigMap", g.Name, fmt.Sprintf("configMapGenerator[%d].options.labels", i), l})
	}
	return out
}

// checkLabels checks that every object carries the app.kubernetes.io
// name, part-of (tracker) and component labels.
func checkLabels(b *bundle) error {
	var errs []error
	for _, l := range allLabels(b) {
		for _, key := range []string{"app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/component"} {
			if l.labels[key] == "" {
				errs = append(errs, fieldError(l.file, l.kind, l.name, l.field+"["+key+"]", "missing"))
			}
		}
		if v := l.labels["app.kubernetes.io/part-of"]; v != "" && v != "tracker" {
			errs = append(errs, fieldError(l.file, l.kind, l.name, l.field+"[app.kubernetes.io/part-of]", "got %q, want tracker", v))
		}
	}
	return errors.Join(errs...)
}

// kubernetesFiles lists the YAML files of a folder that hold Kubernetes
// objects (a top-level apiVersion and kind), other than the Kustomization.
func kubernetesFiles(root, dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		for _, doc := range splitDocuments(data) {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if yaml.Unmarshal(doc, &meta) == nil && meta.APIVersion != "" && meta.Kind != "" && meta.Kind != "Kustomization" {
				out = append(out, filepath.Base(p))
				break
			}
		}
	}
	return out, nil
}

// grafanaDashboardLabel is the label Grafana's dashboard sidecar looks
// for on ConfigMaps (kube-prometheus-stack's default), with its value.
var grafanaDashboardLabel = [2]string{"grafana_dashboard", "1"}

// examplePattern names the files of placeholder Secrets, which no
// Kustomization applies: `kubectl apply -k` would overwrite real
// credentials and keys with their placeholders.
const examplePattern = "*.example.yaml"

// checkKustomizations checks that each Kustomization applies every
// Kubernetes file of its folder, except the Secret examples, and names
// only files that exist; that the knative one can set the Service's image;
// that the monitoring one ships the dashboard as a ConfigMap that
// Grafana's sidecar loads; and that the cassandra one generates only the
// schema ConfigMap its Job mounts. The monitoring objects need the
// Prometheus Operator's CRDs, and the tls/ ones cert-manager's, so they
// live in folders (and Kustomizations) of their own.
func checkKustomizations(b *bundle) error {
	var errs []error
	for _, k := range []struct {
		file string
		kust *kustomization
	}{
		{fileKnativeKustomization, b.knativeKustomization},
		{fileMonitoringKustomize, b.monitoringKustomization},
		{fileCassandraKustomize, b.cassandraKustomize},
		{fileCassandraTLSKustomize, b.cassandraTLSKustomize},
		{fileKnativeTLSKustomize, b.knativeTLSKustomize},
	} {
		dir := filepath.Dir(k.file)
		files, err := kubernetesFiles(b.root, dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		want := slices.DeleteFunc(files, func(f string) bool {
			example, _ := filepath.Match(examplePattern, f)
			return example
		})
		got := slices.Sorted(slices.Values(k.kust.Resources))
		slices.Sort(want)
		if !slices.Equal(got, want) {
			errs = append(errs, fieldError(k.file, "Kustomization", dir, "resources", "got %v, want %v (every Kubernetes file of %s/ except %s)", got, want, dir, examplePattern))
		}
	}
	if c := serviceContainer(b.service); c != nil && !slices.ContainsFunc(b.knativeKustomization.Images, func(i kustomizeImage) bool { return i.Name == c.Image }) {
		errs = append(errs, fieldError(fileKnativeKustomization, "Kustomization", "knative", "images", "want an entry named %q, the Service's image, so that `kustomize edit set image` can point it at a registry", c.Image))
	}
	for _, k := range []struct {
		file string
		kust *kustomization
	}{{fileKnativeKustomization, b.knativeKustomization}, {fileCassandraTLSKustomize, b.cassandraTLSKustomize}, {fileKnativeTLSKustomize, b.knativeTLSKustomize}} {
		if len(k.kust.ConfigMapGenerator) > 0 {
			errs = append(errs, fieldError(k.file, "Kustomization", filepath.Dir(k.file), "configMapGenerator", "set; its ConfigMaps are not checked"))
		}
	}
	for i, g := range b.cassandraKustomize.ConfigMapGenerator {
		if g.Name != schemaConfigMap || !slices.Equal(g.Files, []string{filepath.Base(fileSchema)}) {
			errs = append(errs, fieldError(fileCassandraKustomize, "Kustomization", "cassandra", fmt.Sprintf("configMapGenerator[%d]", i), "got %s from %v; want only %s from %s, the schema %s mounts", g.Name, g.Files, schemaConfigMap, filepath.Base(fileSchema), fileRoleJob))
		}
	}
	dashboard := -1
	for i, g := range b.monitoringKustomization.ConfigMapGenerator {
		at := fmt.Sprintf("configMapGenerator[%d]", i)
		for _, f := range g.Files {
			key, file, ok := strings.Cut(f, "=")
			if !ok {
				key, file = filepath.Base(f), f
			}
			path := filepath.Join(filepath.Dir(fileMonitoringKustomize), file)
			if _, err := os.Stat(filepath.Join(b.root, path)); err != nil {
				errs = append(errs, fieldError(fileMonitoringKustomize, "Kustomization", "monitoring", at+".files", "%q: %v", f, err))
			}
			if path == fileDashboard {
				dashboard = i
				if !strings.HasSuffix(key, ".json") {
					errs = append(errs, fieldError(fileMonitoringKustomize, "Kustomization", "monitoring", at+".files", "key %q: want a name ending in .json, the file Grafana's sidecar writes", key))
				}
			}
		}
	}
	if dashboard < 0 {
		errs = append(errs, fieldError(fileMonitoringKustomize, "Kustomization", "monitoring", "configMapGenerator", "no ConfigMap made from %s; want one, for Grafana's dashboard sidecar", fileDashboard))
	} else if g := b.monitoringKustomization.ConfigMapGenerator[dashboard]; g.Options == nil || g.Options.Labels[grafanaDashboardLabel[0]] != grafanaDashboardLabel[1] {
		errs = append(errs, fieldError(fileMonitoringKustomize, "Kustomization", "monitoring", fmt.Sprintf("configMapGenerator[%d].options.labels[%s]", dashboard, grafanaDashboardLabel[0]), "missing; want %q, the label Grafana's dashboard sidecar looks for", grafanaDashboardLabel[1]))
	}
	return errors.Join(errs...)
}

// checkCompose checks the compose file: Cassandra from the StatefulSet's
// image, the function built from the repository's Dockerfile, reaching
// that Cassandra by its compose name, published on the Service's port, and
// given only variables the function reads.
func checkCompose(b *bundle) error {
	cf := b.compose
	var errs []error
	bad := func(service, field, format string, args ...any) {
		errs = append(errs, fieldError(fileCompose, "service", service, field, format, args...))
	}
	var cassandra, fn string
	for name, s := range cf.Services {
		switch {
		case s.Image != "" && strings.HasPrefix(s.Image, "cassandra:"):
			cassandra = name
			if c := cassandraContainer(b); c != nil && s.Image != c.Image {
				bad(name, "image", "got %q, want %q as in %s", s.Image, c.Image, fileStatefulSet)
			}
		case s.Build != nil:
			fn = name
			dockerfile := filepath.Join(filepath.Dir(fileCompose), s.Build.Context, s.Build.Dockerfile)
			if s.Build.Dockerfile == "" {
				dockerfile = filepath.Join(filepath.Dir(fileCompose), s.Build.Context, "Dockerfile")
			}
			if filepath.Clean(dockerfile) != fileDockerfile {
				bad(name, "build", "got %s, want the repository's %s with the repository root as context", dockerfile, fileDockerfile)
			}
		}
	}
	if cassandra == "" || fn == "" {
		bad("", "services", "want a cassandra: service and one built from the Dockerfile")
		return errors.Join(errs...)
	}
	s := cf.Services[fn]
	known := append(function.EnvNames(), runtimeEnv...)
	for name := range s.Environment {
		if !slices.Contains(known, name) {
			bad(fn, "environment["+name+"]", "the function does not read it; want one of %v", known)
		}
	}
	if h := s.Environment["CASSANDRA_HOSTS"]; h != cassandra && !strings.HasPrefix(h, cassandra+":") {
		bad(fn, "environment[CASSANDRA_HOSTS]", "got %q, want the %q service", h, cassandra)
	}
	for _, p := range containerPorts(b.service) {
		if !slices.ContainsFunc(s.Ports, func(m string) bool { return strings.HasSuffix(m, fmt.Sprintf(":%d", p)) }) {
			bad(fn, "ports", "got %v, want the container port %d published", s.Ports, p)
		}
	}
	return errors.Join(errs...)
}
