package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

// The files under test, relative to the repository root. Error messages
// name them this way.
const (
	fileService               = "knative/service.yaml"
	fileConfigMap             = "knative/configmap.yaml"
	fileSecret                = "knative/secret.example.yaml"
	fileBroker                = "knative/broker.yaml"
	fileTrigger               = "knative/trigger.yaml"
	fileKnativeKustomization  = "knative/kustomization.yaml"
	filePodMonitor            = "knative/monitoring/podmonitor.yaml"
	filePrometheusRule        = "knative/monitoring/prometheusrule.yaml"
	fileDashboard             = "knative/monitoring/dashboard.json"
	fileAlertTests            = "knative/monitoring/alerts.test.yaml"
	fileMonitoringKustomize   = "knative/monitoring/kustomization.yaml"
	fileStorageClass          = "cassandra/storageclass.yaml"
	fileCassandraService      = "cassandra/service.yaml"
	fileStatefulSet           = "cassandra/statefulset.yaml"
	filePDB                   = "cassandra/pdb.yaml"
	fileNetworkPolicy         = "cassandra/networkpolicy.yaml"
	fileCassandraKustomize    = "cassandra/kustomization.yaml"
	fileCompose               = "cassandra/compose.yaml"
	fileRoleJob               = "cassandra/role-job.yaml"
	fileSuperuserSecret       = "cassandra/secret.example.yaml"
	fileSchema                = "cassandra/schema.cql"
	fileIssuer                = "cassandra/tls/issuer.yaml"
	fileNodeCertificate       = "cassandra/tls/certificate.yaml"
	fileNodeTLSSecret         = "cassandra/tls/secret.example.yaml"
	fileInternodeCA           = "cassandra/tls/internode-ca.yaml"
	fileInternodeCertificate  = "cassandra/tls/internode-certificate.yaml"
	fileInternodeTLSSecret    = "cassandra/tls/internode-secret.example.yaml"
	fileSetupCertificate      = "cassandra/tls/setup-certificate.yaml"
	fileSetupTLSSecret        = "cassandra/tls/setup-secret.example.yaml"
	fileCassandraTLSKustomize = "cassandra/tls/kustomization.yaml"
	fileClientCertificate     = "knative/tls/certificate.yaml"
	fileClientTLSSecret       = "knative/tls/secret.example.yaml"
	fileKnativeTLSKustomize   = "knative/tls/kustomization.yaml"
	fileFunc                  = "func.yaml"
	fileDockerfile            = "Dockerfile"
	fileGoMod                 = "go.mod"
)

// bundle holds every deployment file of the repository, decoded. Checks
// read it; the tests of broken manifests change a freshly loaded copy.
type bundle struct {
	root string

	service              *servingv1.Service
	configMap            *corev1.ConfigMap
	secret               *corev1.Secret
	brokers              []*eventingv1.Broker
	trigger              *eventingv1.Trigger
	knativeKustomization *kustomization

	podMonitor              *monitoringv1.PodMonitor
	prometheusRule          *monitoringv1.PrometheusRule
	dashboard               *grafanaDashboard
	alertTests              *promtoolTests
	monitoringKustomization *kustomization

	storageClass       *storagev1.StorageClass
	cassandraService   *corev1.Service
	statefulSet        *appsv1.StatefulSet
	pdb                *policyv1.PodDisruptionBudget
	networkPolicy      *networkingv1.NetworkPolicy
	cassandraKustomize *kustomization
	compose            *compose
	roleJob            *batchv1.Job
	superuserSecret    *corev1.Secret

	// TLS: the cert-manager objects, and the Secrets that stand in for
	// them without cert-manager. cert-manager's Go API (of the version
	// Knative's modules already require) decodes them strictly. Two
	// authorities: the tracker's CA of the native port (issuers,
	// caCertificate), which signs the nodes' client-facing certificate,
	// the function's and the setup Job's; and the internode CA
	// (internodeIssuers, internodeCACertificate), which signs only the
	// nodes' internode certificate.
	issuers                []*cmv1.Issuer
	caCertificate          *cmv1.Certificate
	internodeIssuers       []*cmv1.Issuer
	internodeCACertificate *cmv1.Certificate
	nodeCertificate        *cmv1.Certificate
	nodeTLSSecret          *corev1.Secret
	internodeCertificate   *cmv1.Certificate
	internodeTLSSecret     *corev1.Secret
	setupCertificate       *cmv1.Certificate
	setupTLSSecret         *corev1.Secret
	cassandraTLSKustomize  *kustomization
	clientCertificate      *cmv1.Certificate
	clientTLSSecret        *corev1.Secret
	knativeTLSKustomize    *kustomization

	funcYAML   *funcYAML
	dockerfile *dockerfile
	goMod      []byte
	schema     string // cassandra/schema.cql
}

// kustomization is the part of kustomize's Kustomization that this
// repository uses; strict decoding makes any other field an error, so that
// a new field is added here (and checked) on purpose.
type kustomization struct {
	APIVersion         string                        `json:"apiVersion"`
	Kind               string                        `json:"kind"`
	Resources          []string                      `json:"resources"`
	Images             []kustomizeImage              `json:"images,omitempty"`
	ConfigMapGenerator []kustomizeConfigMapGenerator `json:"configMapGenerator,omitempty"`
}

// kustomizeConfigMapGenerator is one entry of a Kustomization's
// configMapGenerator: a ConfigMap made from files, each "key=file" or a
// file whose name is the key.
type kustomizeConfigMapGenerator struct {
	Name    string                     `json:"name"`
	Files   []string                   `json:"files"`
	Options *kustomizeGeneratorOptions `json:"options,omitempty"`
}

// kustomizeGeneratorOptions are the options of one generator.
type kustomizeGeneratorOptions struct {
	Labels                map[string]string `json:"labels,omitempty"`
	Annotations           map[string]string `json:"annotations,omitempty"`
	DisableNameSuffixHash bool              `json:"disableNameSuffixHash,omitempty"`
}

// kustomizeImage is one entry of a Kustomization's images list.
type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// compose is the part of the Compose specification that
// cassandra/compose.yaml uses.
type compose struct {
	Name     string                    `json:"name,omitempty"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]*struct{}      `json:"volumes,omitempty"`
}

// composeService is one service of a compose file.
type composeService struct {
	Image           string                      `json:"image,omitempty"`
	Build           *composeBuild               `json:"build,omitempty"`
	Environment     map[string]string           `json:"environment,omitempty"`
	Ports           []string                    `json:"ports,omitempty"`
	Healthcheck     *composeHealthcheck         `json:"healthcheck,omitempty"`
	DependsOn       map[string]composeDependsOn `json:"depends_on,omitempty"`
	Volumes         []string                    `json:"volumes,omitempty"`
	StopGracePeriod string                      `json:"stop_grace_period,omitempty"`
}

// composeBuild says where a compose service's image is built from.
type composeBuild struct {
	Context    string `json:"context"`
	Dockerfile string `json:"dockerfile,omitempty"`
}

// composeHealthcheck is a compose service's health check.
type composeHealthcheck struct {
	Test        []string `json:"test"`
	Interval    string   `json:"interval,omitempty"`
	Timeout     string   `json:"timeout,omitempty"`
	Retries     int      `json:"retries,omitempty"`
	StartPeriod string   `json:"start_period,omitempty"`
}

// composeDependsOn is the long form of a depends_on entry.
type composeDependsOn struct {
	Condition string `json:"condition"`
}

// repoRoot is the repository root: the parent of the test module.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	// go test runs in the package directory, test/manifests.
	root := filepath.Dir(filepath.Dir(wd))
	if _, err := os.Stat(filepath.Join(root, fileFunc)); err != nil {
		return "", fmt.Errorf("repository root not found from %s: %w", wd, err)
	}
	return root, nil
}

// loadBundle reads and strictly decodes every deployment file under root.
// It returns every problem it finds, not only the first.
func loadBundle(root string) (*bundle, error) {
	b := &bundle{root: root}
	var errs []error
	one := func(file, apiVersion, kind string, into any) {
		if err := decodeOne(root, file, apiVersion, kind, into); err != nil {
			errs = append(errs, err)
		}
	}
	b.service = new(servingv1.Service)
	one(fileService, "serving.knative.dev/v1", "Service", b.service)
	b.configMap = new(corev1.ConfigMap)
	one(fileConfigMap, "v1", "ConfigMap", b.configMap)
	b.secret = new(corev1.Secret)
	one(fileSecret, "v1", "Secret", b.secret)
	b.trigger = new(eventingv1.Trigger)
	one(fileTrigger, "eventing.knative.dev/v1", "Trigger", b.trigger)
	b.knativeKustomization = new(kustomization)
	one(fileKnativeKustomization, "kustomize.config.k8s.io/v1beta1", "Kustomization", b.knativeKustomization)
	b.podMonitor = new(monitoringv1.PodMonitor)
	one(filePodMonitor, "monitoring.coreos.com/v1", "PodMonitor", b.podMonitor)
	b.prometheusRule = new(monitoringv1.PrometheusRule)
	one(filePrometheusRule, "monitoring.coreos.com/v1", "PrometheusRule", b.prometheusRule)
	b.monitoringKustomization = new(kustomization)
	one(fileMonitoringKustomize, "kustomize.config.k8s.io/v1beta1", "Kustomization", b.monitoringKustomization)
	b.storageClass = new(storagev1.StorageClass)
	one(fileStorageClass, "storage.k8s.io/v1", "StorageClass", b.storageClass)
	b.cassandraService = new(corev1.Service)
	one(fileCassandraService, "v1", "Service", b.cassandraService)
	b.statefulSet = new(appsv1.StatefulSet)
	one(fileStatefulSet, "apps/v1", "StatefulSet", b.statefulSet)
	b.pdb = new(policyv1.PodDisruptionBudget)
	one(filePDB, "policy/v1", "PodDisruptionBudget", b.pdb)
	b.networkPolicy = new(networkingv1.NetworkPolicy)
	one(fileNetworkPolicy, "networking.k8s.io/v1", "NetworkPolicy", b.networkPolicy)
	b.cassandraKustomize = new(kustomization)
	one(fileCassandraKustomize, "kustomize.config.k8s.io/v1beta1", "Kustomization", b.cassandraKustomize)
	b.roleJob = new(batchv1.Job)
	one(fileRoleJob, "batch/v1", "Job", b.roleJob)
	b.superuserSecret = new(corev1.Secret)
	one(fileSuperuserSecret, "v1", "Secret", b.superuserSecret)
	b.nodeCertificate = new(cmv1.Certificate)
	one(fileNodeCertificate, "cert-manager.io/v1", "Certificate", b.nodeCertificate)
	b.nodeTLSSecret = new(corev1.Secret)
	one(fileNodeTLSSecret, "v1", "Secret", b.nodeTLSSecret)
	b.internodeCertificate = new(cmv1.Certificate)
	one(fileInternodeCertificate, "cert-manager.io/v1", "Certificate", b.internodeCertificate)
	b.internodeTLSSecret = new(corev1.Secret)
	one(fileInternodeTLSSecret, "v1", "Secret", b.internodeTLSSecret)
	b.setupCertificate = new(cmv1.Certificate)
	one(fileSetupCertificate, "cert-manager.io/v1", "Certificate", b.setupCertificate)
	b.setupTLSSecret = new(corev1.Secret)
	one(fileSetupTLSSecret, "v1", "Secret", b.setupTLSSecret)
	b.cassandraTLSKustomize = new(kustomization)
	one(fileCassandraTLSKustomize, "kustomize.config.k8s.io/v1beta1", "Kustomization", b.cassandraTLSKustomize)
	b.clientCertificate = new(cmv1.Certificate)
	one(fileClientCertificate, "cert-manager.io/v1", "Certificate", b.clientCertificate)
	b.clientTLSSecret = new(corev1.Secret)
	one(fileClientTLSSecret, "v1", "Secret", b.clientTLSSecret)
	b.knativeTLSKustomize = new(kustomization)
	one(fileKnativeTLSKustomize, "kustomize.config.k8s.io/v1beta1", "Kustomization", b.knativeTLSKustomize)

	docs, err := readDocuments(root, fileBroker)
	if err != nil {
		errs = append(errs, err)
	}
	for i, doc := range docs {
		br := new(eventingv1.Broker)
		if err := decodeStrict(fmt.Sprintf("%s (document %d)", fileBroker, i+1), doc, "eventing.knative.dev/v1", "Broker", br); err != nil {
			errs = append(errs, err)
			continue
		}
		b.brokers = append(b.brokers, br)
	}

	// The CA chains: Issuers and the CA's own Certificate, one file each.
	var caErrs []error
	b.issuers, b.caCertificate, caErrs = readCAFile(root, fileIssuer)
	errs = append(errs, caErrs...)
	b.internodeIssuers, b.internodeCACertificate, caErrs = readCAFile(root, fileInternodeCA)
	errs = append(errs, caErrs...)

	b.compose = new(compose)
	if err := decodePlain(root, fileCompose, b.compose); err != nil {
		errs = append(errs, err)
	}
	b.funcYAML = new(funcYAML)
	if err := decodePlain(root, fileFunc, b.funcYAML); err != nil {
		errs = append(errs, err)
	}
	b.alertTests = new(promtoolTests)
	if err := decodePlain(root, fileAlertTests, b.alertTests); err != nil {
		errs = append(errs, err)
	}
	if data, err := os.ReadFile(filepath.Join(root, fileDashboard)); err != nil {
		errs = append(errs, err)
	} else if b.dashboard, err = parseDashboard(fileDashboard, data); err != nil {
		errs = append(errs, err)
	}
	if data, err := os.ReadFile(filepath.Join(root, fileDockerfile)); err != nil {
		errs = append(errs, err)
	} else if b.dockerfile, err = parseDockerfile(fileDockerfile, data); err != nil {
		errs = append(errs, err)
	}
	if b.goMod, err = os.ReadFile(filepath.Join(root, fileGoMod)); err != nil {
		errs = append(errs, err)
	}
	if data, err := os.ReadFile(filepath.Join(root, fileSchema)); err != nil {
		errs = append(errs, err)
	} else {
		b.schema = string(data)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

// readCAFile decodes a file of cert-manager Issuers and exactly one
// Certificate, the CA's own; the Certificate is never nil.
func readCAFile(root, file string) ([]*cmv1.Issuer, *cmv1.Certificate, []error) {
	var (
		issuers []*cmv1.Issuer
		ca      *cmv1.Certificate
		errs    []error
	)
	docs, err := readDocuments(root, file)
	if err != nil {
		errs = append(errs, err)
	}
	for i, doc := range docs {
		where := fmt.Sprintf("%s (document %d)", file, i+1)
		switch kind := documentKind(doc); kind {
		case "Issuer":
			is := new(cmv1.Issuer)
			if err := decodeStrict(where, doc, "cert-manager.io/v1", "Issuer", is); err != nil {
				errs = append(errs, err)
				continue
			}
			issuers = append(issuers, is)
		case "Certificate":
			if ca != nil {
				errs = append(errs, fmt.Errorf("%s: a second Certificate; want one, the CA's", where))
				continue
			}
			ca = new(cmv1.Certificate)
			if err := decodeStrict(where, doc, "cert-manager.io/v1", "Certificate", ca); err != nil {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, fmt.Errorf("%s: kind %q; want Issuer or Certificate", where, kind))
		}
	}
	if ca == nil {
		errs = append(errs, fmt.Errorf("%s: no Certificate; want one, the CA's", file))
		ca = new(cmv1.Certificate)
	}
	return issuers, ca, errs
}

// decodeOne decodes a file that holds exactly one Kubernetes object.
func decodeOne(root, file, apiVersion, kind string, into any) error {
	docs, err := readDocuments(root, file)
	if err != nil {
		return err
	}
	if len(docs) != 1 {
		return fmt.Errorf("%s: got %d YAML documents, want 1", file, len(docs))
	}
	return decodeStrict(file, docs[0], apiVersion, kind, into)
}

// decodePlain decodes a file that is not a Kubernetes object (func.yaml,
// a compose file) strictly into into.
func decodePlain(root, file string, into any) error {
	data, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return err
	}
	return decodePlainBytes(file, data, into)
}

// decodePlainBytes decodes YAML text strictly into into.
func decodePlainBytes(file string, data []byte, into any) error {
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	return nil
}

// readDocuments splits a YAML file into its non-empty documents.
func readDocuments(root, file string) ([][]byte, error) {
	data, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return nil, err
	}
	return splitDocuments(data), nil
}

// splitDocuments splits YAML text at its "---" separator lines and drops
// documents that hold only comments or blank lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if hasContent(cur.Bytes()) {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for line := range bytes.Lines(data) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			flush()
			continue
		}
		cur.Write(line)
	}
	flush()
	return docs
}

func hasContent(doc []byte) bool {
	for line := range bytes.Lines(doc) {
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' {
			return true
		}
	}
	return false
}

// documentKind is the kind of one YAML document, or "" if it has none.
func documentKind(doc []byte) string {
	var meta struct {
		Kind string `json:"kind"`
	}
	if yaml.Unmarshal(doc, &meta) != nil {
		return ""
	}
	return meta.Kind
}

// decodeStrict decodes one YAML document into a typed object: an unknown
// or duplicated field is an error, and so is an apiVersion or kind other
// than the one the file must hold.
func decodeStrict(file string, doc []byte, apiVersion, kind string, into any) error {
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		return fmt.Errorf("%s: %s: %v", file, kind, err)
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	if meta.APIVersion != apiVersion || meta.Kind != kind {
		return fmt.Errorf("%s: %s %q: apiVersion, kind: got %s %s, want %s %s",
			file, meta.Kind, meta.Metadata.Name, meta.APIVersion, meta.Kind, apiVersion, kind)
	}
	return nil
}

// fieldError is how every check reports a problem: the file, the object
// and the field, then what is wrong.
func fieldError(file, kind, name, field, format string, args ...any) error {
	return fmt.Errorf("%s: %s %q: %s: %s", file, kind, name, field, fmt.Sprintf(format, args...))
}
