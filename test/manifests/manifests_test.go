package manifests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/autoscaling"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// check is one rule over the decoded manifests.
type check struct {
	name string
	fn   func(*bundle) error
}

// checks are all the rules; every one must pass on the repository's files.
var checks = []check{
	{"knative validation", checkKnativeValidation},
	{"autoscaling", checkAutoscaling},
	{"probes", checkProbes},
	{"security context", checkSecurityContext},
	{"service resources", checkServiceResources},
	{"ports", checkPorts},
	{"service env", checkServiceEnv},
	{"effective config", checkEffectiveConfig},
	{"cluster config", checkClusterConfig},
	{"func.yaml", checkFuncYAML},
	{"trigger", checkTrigger},
	{"statefulset", checkStatefulSet},
	{"cassandra resources", checkCassandraResources},
	{"labels", checkLabels},
	{"kustomizations", checkKustomizations},
	{"scrape", checkScrape},
	{"rules", checkRules},
	{"dashboard", checkDashboard},
	{"alert tests", checkAlertTests},
	{"compose", checkCompose},
	{"secret mounts", checkSecretMounts},
	{"mounted files", checkMountedFiles},
	{"cluster TLS", checkClusterTLS},
	{"certificates", checkCertificates},
	{"internode authority", checkInternodeAuthority},
	{"job certificate", checkJobCertificate},
	{"network policy", checkNetworkPolicy},
	{"authentication", checkAuth},
	{"role job", checkRoleJob},
	{"job passwords", checkJobPasswords},
	{"dockerfile", checkDockerfile},
}

var (
	rootOnce sync.Once
	root     string
	rootErr  error
)

// load returns a freshly decoded bundle, which the caller may change.
func load(t *testing.T) *bundle {
	t.Helper()
	rootOnce.Do(func() { root, rootErr = repoRoot() })
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	b, err := loadBundle(root)
	if err != nil {
		t.Fatalf("loading the manifests:\n%v", err)
	}
	return b
}

func TestManifestsPassEveryCheck(t *testing.T) {
	t.Parallel()
	b := load(t)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if err := c.fn(b); err != nil {
				t.Errorf("got errors, want none:\n%v", err)
			}
		})
	}
}

// Helpers that reach into the bundle for the broken-manifest cases.

func svcContainer(b *bundle) *corev1.Container { return serviceContainer(b.service) }

func setServiceEnv(b *bundle, name, value string) {
	c := svcContainer(b)
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env[i] = corev1.EnvVar{Name: name, Value: value}
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

func removeServiceEnv(b *bundle, name string) {
	c := svcContainer(b)
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env = append(c.Env[:i], c.Env[i+1:]...)
			return
		}
	}
}

func setStsEnv(b *bundle, name, value string) {
	c := cassandraContainer(b)
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env[i].Value = value
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

func removeStsEnv(b *bundle, name string) {
	c := cassandraContainer(b)
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env = append(c.Env[:i], c.Env[i+1:]...)
			return
		}
	}
}

func funcEnvIndex(t *testing.T, b *bundle, name string) int {
	t.Helper()
	for i, e := range b.funcYAML.Run.Envs {
		if e.Name != nil && *e.Name == name {
			return i
		}
	}
	t.Fatalf("func.yaml has no env %s", name)
	return -1
}

// setCassandraSetting replaces the value of -Dcassandra.settings.KEY in
// the StatefulSet's JVM_EXTRA_OPTS; the case fails if the option is not
// there, so that it cannot pass vacuously.
func setCassandraSetting(t *testing.T, b *bundle, key, value string) {
	t.Helper()
	setJVMProperty(t, b, settingsPrefix+key, value)
}

// setJVMProperty replaces the value of the -DNAME option of the
// StatefulSet's JVM_EXTRA_OPTS; the case fails if it is not there.
func setJVMProperty(t *testing.T, b *bundle, name, value string) {
	t.Helper()
	c := cassandraContainer(b)
	for i := range c.Env {
		if c.Env[i].Name != "JVM_EXTRA_OPTS" {
			continue
		}
		opts := strings.Fields(c.Env[i].Value)
		j := slices.IndexFunc(opts, func(o string) bool { return strings.HasPrefix(o, "-D"+name+"=") })
		if j < 0 {
			t.Fatalf("JVM_EXTRA_OPTS has no -D%s", name)
		}
		opts[j] = "-D" + name + "=" + value
		c.Env[i].Value = strings.Join(opts, " ")
		return
	}
	t.Fatal("the StatefulSet has no JVM_EXTRA_OPTS")
}

// editJobScript replaces text in the role Job's script; the case fails if
// the text is not there.
func editJobScript(t *testing.T, b *bundle, old, new string) {
	t.Helper()
	c := &b.roleJob.Spec.Template.Spec.Containers[0]
	if !strings.Contains(c.Command[2], old) {
		t.Fatalf("the Job's script has no %q", old)
	}
	c.Command[2] = strings.Replace(c.Command[2], old, new, 1)
}

// dropConfig removes variables from the ConfigMap and the Service.
func dropConfig(b *bundle, names ...string) {
	for _, n := range names {
		delete(b.configMap.Data, n)
		removeServiceEnv(b, n)
	}
}

// podVolume returns the named volume of a pod; the case fails if there is
// none.
func podVolume(t *testing.T, spec *corev1.PodSpec, name string) *corev1.Volume {
	t.Helper()
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	t.Fatalf("no volume %s", name)
	return nil
}

// editDockerfile replaces text in the Dockerfile and parses it again; the
// case fails if the text is not there, so that it cannot pass vacuously.
func editDockerfile(t *testing.T, b *bundle, old, new string) {
	t.Helper()
	if !strings.Contains(b.dockerfile.text, old) {
		t.Fatalf("Dockerfile has no %q", old)
	}
	d, err := parseDockerfile(fileDockerfile, []byte(strings.Replace(b.dockerfile.text, old, new, 1)))
	if err != nil {
		t.Fatal(err)
	}
	b.dockerfile = d
}

func ptr[T any](v T) *T { return &v }

// alertRule returns the rule of the named alert; the case fails if there
// is none.
func alertRule(t *testing.T, b *bundle, alert string) *monitoringv1.Rule {
	t.Helper()
	for gi := range b.prometheusRule.Spec.Groups {
		for ri := range b.prometheusRule.Spec.Groups[gi].Rules {
			if r := &b.prometheusRule.Spec.Groups[gi].Rules[ri]; r.Alert == alert {
				return r
			}
		}
	}
	t.Fatalf("%s has no alert %s", filePrometheusRule, alert)
	return nil
}

// editAlertExpr replaces text in an alert's expression; the case fails if
// the text is not there.
func editAlertExpr(t *testing.T, b *bundle, alert, old, new string) {
	t.Helper()
	r := alertRule(t, b, alert)
	if !strings.Contains(r.Expr.String(), old) {
		t.Fatalf("alert %s has no %q in its expression", alert, old)
	}
	r.Expr = intstr.FromString(strings.Replace(r.Expr.String(), old, new, 1))
}

// removeAlert drops an alert from the PrometheusRule.
func removeAlert(t *testing.T, b *bundle, alert string) {
	t.Helper()
	alertRule(t, b, alert)
	for gi := range b.prometheusRule.Spec.Groups {
		g := &b.prometheusRule.Spec.Groups[gi]
		g.Rules = slices.DeleteFunc(g.Rules, func(r monitoringv1.Rule) bool { return r.Alert == alert })
	}
}

// dashboardPanel returns the panel with the title, in a row or not; the
// case fails if there is none.
func dashboardPanel(t *testing.T, b *bundle, title string) *grafanaPanel {
	t.Helper()
	var find func(ps []grafanaPanel) *grafanaPanel
	find = func(ps []grafanaPanel) *grafanaPanel {
		for i := range ps {
			if ps[i].Title == title {
				return &ps[i]
			}
			if p := find(ps[i].Panels); p != nil {
				return p
			}
		}
		return nil
	}
	p := find(b.dashboard.Panels)
	if p == nil {
		t.Fatalf("%s has no panel %q", fileDashboard, title)
	}
	return p
}

// dropAlertTests removes the promtool tests of an alert for which drop
// is true.
func dropAlertTests(b *bundle, alert string, drop func(promtoolAlertTest) bool) {
	for gi := range b.alertTests.Tests {
		g := &b.alertTests.Tests[gi]
		g.AlertRuleTests = slices.DeleteFunc(g.AlertRuleTests, func(a promtoolAlertTest) bool { return a.Alertname == alert && drop(a) })
	}
}

func TestChecksCatchBrokenManifests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		corrupt func(t *testing.T, b *bundle)
		check   func(*bundle) error
		want    []string // every one must appear in the error
	}{
		// Knative's own validation.
		{"insecure seccomp default warns", func(t *testing.T, b *bundle) {
			svcContainer(b).SecurityContext.SeccompProfile = nil
		}, checkKnativeValidation, []string{fileService, `Service "tracker"`, "warning", "seccompProfile"}},
		{"negative containerConcurrency", func(t *testing.T, b *bundle) {
			b.service.Spec.Template.Spec.ContainerConcurrency = ptr[int64](-1)
		}, checkKnativeValidation, []string{fileService, "error", "containerConcurrency"}},
		{"trigger backoff delay not ISO 8601", func(t *testing.T, b *bundle) {
			b.trigger.Spec.Delivery.BackoffDelay = ptr("1s")
		}, checkKnativeValidation, []string{fileTrigger, `Trigger "tracker-impressions"`, "backoffDelay"}},
		{"broker with negative retry", func(t *testing.T, b *bundle) {
			b.brokers[0].Spec.Delivery = &eventingduckv1.DeliverySpec{Retry: ptr[int32](-1)}
		}, checkKnativeValidation, []string{fileBroker, "Broker", "retry"}},

		// Autoscaling.
		{"scales on rps", func(t *testing.T, b *bundle) {
			b.service.Spec.Template.Annotations[autoscaling.MetricAnnotationKey] = "rps"
		}, checkAutoscaling, []string{fileService, `Service "tracker"`, "autoscaling.knative.dev/metric", `"rps"`}},
		{"never scales to zero", func(t *testing.T, b *bundle) {
			b.service.Spec.Template.Annotations[autoscaling.MinScaleAnnotationKey] = "1"
		}, checkAutoscaling, []string{fileService, "autoscaling.knative.dev/min-scale"}},
		{"unbounded max scale", func(t *testing.T, b *bundle) {
			delete(b.service.Spec.Template.Annotations, autoscaling.MaxScaleAnnotationKey)
		}, checkAutoscaling, []string{fileService, "autoscaling.knative.dev/max-scale"}},
		{"HPA class", func(t *testing.T, b *bundle) {
			b.service.Spec.Template.Annotations[autoscaling.ClassAnnotationKey] = autoscaling.HPA
		}, checkAutoscaling, []string{fileService, "autoscaling.knative.dev/class"}},
		{"no utilization", func(t *testing.T, b *bundle) {
			delete(b.service.Spec.Template.Annotations, autoscaling.TargetUtilizationPercentageKey)
		}, checkAutoscaling, []string{fileService, "target-utilization-percentage"}},
		{"hard limit below soft target", func(t *testing.T, b *bundle) {
			b.service.Spec.Template.Spec.ContainerConcurrency = ptr[int64](1)
		}, checkAutoscaling, []string{fileService, "spec.template.spec.containerConcurrency", "soft target"}},

		{"in-flight bound below the hard limit", func(t *testing.T, b *bundle) {
			b.configMap.Data["TRACK_MAX_BATCH_EVENTS"] = "1"
			b.configMap.Data["TRACK_MAX_INFLIGHT"] = "1"
		}, checkAutoscaling, []string{fileService, "spec.template.spec.containerConcurrency", "TRACK_MAX_INFLIGHT"}},

		// Probes, security, resources, ports.
		{"readiness on another path", func(t *testing.T, b *bundle) {
			svcContainer(b).ReadinessProbe.HTTPGet.Path = "/healthz"
		}, checkProbes, []string{fileService, "readinessProbe.httpGet.path", `"/healthz"`}},
		{"liveness on another port", func(t *testing.T, b *bundle) {
			svcContainer(b).LivenessProbe.HTTPGet.Port = intstr.FromInt32(9090)
		}, checkProbes, []string{fileService, "livenessProbe.httpGet.port"}},
		{"writable root filesystem", func(t *testing.T, b *bundle) {
			svcContainer(b).SecurityContext.ReadOnlyRootFilesystem = ptr(false)
		}, checkSecurityContext, []string{fileService, "securityContext.readOnlyRootFilesystem"}},
		{"added capability", func(t *testing.T, b *bundle) {
			svcContainer(b).SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}, checkSecurityContext, []string{fileService, "securityContext.capabilities"}},
		{"root allowed", func(t *testing.T, b *bundle) {
			svcContainer(b).SecurityContext.RunAsNonRoot = nil
		}, checkSecurityContext, []string{fileService, "securityContext.runAsNonRoot"}},
		{"no CPU limit", func(t *testing.T, b *bundle) {
			delete(svcContainer(b).Resources.Limits, corev1.ResourceCPU)
		}, checkServiceResources, []string{fileService, "resources.limits.cpu", "missing"}},
		{"GOMEMLIMIT above the memory limit", func(t *testing.T, b *bundle) {
			setServiceEnv(b, "GOMEMLIMIT", "300MiB")
		}, checkServiceResources, []string{fileService, "env[GOMEMLIMIT]", `"300MiB"`}},
		{"memory too small for the admitted bodies", func(t *testing.T, b *bundle) {
			svcContainer(b).Resources.Limits[corev1.ResourceMemory] = resource.MustParse("4Mi")
			svcContainer(b).Resources.Requests[corev1.ResourceMemory] = resource.MustParse("4Mi")
			setServiceEnv(b, "GOMEMLIMIT", "3MiB")
		}, checkServiceResources, []string{fileService, "resources.limits.memory", "TRACK_MAX_BODY_BYTES"}},
		{"container port not the listen port", func(t *testing.T, b *bundle) {
			svcContainer(b).Ports[0].ContainerPort = 9090
		}, checkPorts, []string{fileService, "containers[0].ports", "8080"}},
		{"no LISTEN_ADDRESS", func(t *testing.T, b *bundle) {
			removeServiceEnv(b, "LISTEN_ADDRESS")
		}, checkPorts, []string{fileService, "env[LISTEN_ADDRESS]", "127.0.0.1"}},

		// The environment contract.
		{"variable the function ignores", func(t *testing.T, b *bundle) {
			setServiceEnv(b, "CASSANDRA_HOST", "cassandra")
		}, checkServiceEnv, []string{fileService, "env[CASSANDRA_HOST]", "does not read"}},
		{"cluster variable left to its default", func(t *testing.T, b *bundle) {
			removeServiceEnv(b, "CASSANDRA_HOSTS")
		}, checkServiceEnv, []string{fileService, "env[CASSANDRA_HOSTS]", "must be set"}},
		{"reference to another variable's key", func(t *testing.T, b *bundle) {
			for i := range svcContainer(b).Env {
				if e := &svcContainer(b).Env[i]; e.Name == "CASSANDRA_TIMEOUT" {
					e.ValueFrom.ConfigMapKeyRef.Key = "CASSANDRA_CONNECT_TIMEOUT"
				}
			}
		}, checkServiceEnv, []string{fileService, "env[CASSANDRA_TIMEOUT]", "configMapKeyRef.key"}},
		{"key missing from the ConfigMap", func(t *testing.T, b *bundle) {
			delete(b.configMap.Data, "LOG_LEVEL")
		}, checkServiceEnv, []string{fileService, "env[LOG_LEVEL]", "not a key of " + fileConfigMap}},
		{"unused ConfigMap key", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_PORT"] = "9042"
		}, checkServiceEnv, []string{fileConfigMap, `ConfigMap "tracker-config"`, "data.CASSANDRA_PORT"}},
		{"variable that Knative sets", func(t *testing.T, b *bundle) {
			setServiceEnv(b, "K_REVISION", "tracker-00001")
		}, checkServiceEnv, []string{fileService, "env[K_REVISION]", "Knative sets it"}},
		{"OTLP metrics without an endpoint", func(t *testing.T, b *bundle) {
			b.configMap.Data["OTEL_METRICS_EXPORTER"] = "prometheus,otlp"
		}, checkEffectiveConfig, []string{fileService, "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"}},
		{"sampler ratio out of range", func(t *testing.T, b *bundle) {
			b.configMap.Data["OTEL_TRACES_SAMPLER_ARG"] = "10"
		}, checkEffectiveConfig, []string{fileService, "OTEL_TRACES_SAMPLER_ARG"}},
		{"password as a literal", func(t *testing.T, b *bundle) {
			setServiceEnv(b, "CASSANDRA_PASSWORD", "secret")
		}, checkServiceEnv, []string{fileService, "env[CASSANDRA_PASSWORD]", "secretKeyRef"}},
		{"reference to another Secret", func(t *testing.T, b *bundle) {
			for i := range svcContainer(b).Env {
				if e := &svcContainer(b).Env[i]; e.Name == "CASSANDRA_USERNAME" {
					e.ValueFrom.SecretKeyRef.Name = "cassandra"
				}
			}
		}, checkServiceEnv, []string{fileService, "env[CASSANDRA_USERNAME]", "secretKeyRef.name"}},
		{"variable set twice", func(t *testing.T, b *bundle) {
			c := svcContainer(b)
			c.Env = append(c.Env, corev1.EnvVar{Name: "LOG_LEVEL", Value: "debug"})
		}, checkServiceEnv, []string{fileService, "env[LOG_LEVEL]", "set twice"}},
		{"consistency the function cannot parse", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_CONSISTENCY"] = "SOMETIMES"
		}, checkEffectiveConfig, []string{fileService, "CASSANDRA_CONSISTENCY", "SOMETIMES"}},
		{"value the function rejects", func(t *testing.T, b *bundle) {
			b.configMap.Data["TRACK_MAX_BATCH_EVENTS"] = "0"
		}, checkEffectiveConfig, []string{fileService, "rejects", "TRACK_MAX_BATCH_EVENTS"}},

		// The function's configuration against the Cassandra cluster.
		{"SimpleStrategy keyspace", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_REPLICATION"] = "{'class': 'SimpleStrategy', 'replication_factor': 3}"
		}, checkClusterConfig, []string{fileConfigMap, "data.CASSANDRA_REPLICATION", "NetworkTopologyStrategy"}},
		{"more replicas than nodes", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_REPLICATION"] = "{'class': 'NetworkTopologyStrategy', 'dc1': 5}"
		}, checkClusterConfig, []string{fileConfigMap, "data.CASSANDRA_REPLICATION", "3 replicas"}},
		{"another local data center", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_LOCAL_DC"] = "dc2"
		}, checkClusterConfig, []string{fileConfigMap, "data.CASSANDRA_LOCAL_DC", `"dc2"`}},
		{"consistency ALL cannot lose a node", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_CONSISTENCY"] = "ALL"
		}, checkClusterConfig, []string{fileConfigMap, "data.CASSANDRA_CONSISTENCY", "tolerates 0"}},
		{"disruption budget beyond the quorum", func(t *testing.T, b *bundle) {
			b.pdb.Spec.MaxUnavailable = ptr(intstr.FromInt32(2))
		}, checkClusterConfig, []string{fileConfigMap, "data.CASSANDRA_CONSISTENCY", filePDB}},
		{"contact point on loopback", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_HOSTS"] = "127.0.0.1:9042"
		}, checkClusterConfig, []string{fileConfigMap, "data.CASSANDRA_HOSTS", "headless"}},
		{"contact point on another port", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_HOSTS"] = "cassandra:9160"
		}, checkClusterConfig, []string{fileConfigMap, "data.CASSANDRA_HOSTS", "9042"}},
		{"snitch that ignores the data center", func(t *testing.T, b *bundle) {
			setStsEnv(b, "CASSANDRA_ENDPOINT_SNITCH", "SimpleSnitch")
		}, checkClusterConfig, []string{fileStatefulSet, "env[CASSANDRA_ENDPOINT_SNITCH]"}},

		// func.yaml against the Service.
		{"func.yaml scale target differs", func(t *testing.T, b *bundle) {
			b.funcYAML.Deploy.Options.Scale.Target = ptr(30.0)
		}, checkFuncYAML, []string{fileFunc, `function "tracker"`, "deploy.options.scale.target"}},
		{"func.yaml concurrency differs", func(t *testing.T, b *bundle) {
			b.funcYAML.Deploy.Options.Resources.Limits.Concurrency = ptr[int64](100)
		}, checkFuncYAML, []string{fileFunc, "resources.limits.concurrency"}},
		{"func.yaml memory differs", func(t *testing.T, b *bundle) {
			b.funcYAML.Deploy.Options.Resources.Limits.Memory = ptr("512Mi")
		}, checkFuncYAML, []string{fileFunc, "resources.limits.memory", "512Mi"}},
		{"func.yaml env from another ConfigMap", func(t *testing.T, b *bundle) {
			b.funcYAML.Run.Envs[funcEnvIndex(t, b, "LOG_LEVEL")].Value = ptr("{{ configMap:tracker:LOG_LEVEL }}")
		}, checkFuncYAML, []string{fileFunc, "run.envs", "tracker-config"}},
		{"func.yaml env without the reference form", func(t *testing.T, b *bundle) {
			b.funcYAML.Run.Envs[funcEnvIndex(t, b, "LOG_LEVEL")].Value = ptr("{{ configMap:tracker-config }}")
		}, checkFuncYAML, []string{fileFunc, ".value", "configMap:NAME:KEY"}},
		{"func.yaml sets LISTEN_ADDRESS", func(t *testing.T, b *bundle) {
			b.funcYAML.Run.Envs = append(b.funcYAML.Run.Envs, funcEnv{Name: ptr("LISTEN_ADDRESS"), Value: ptr("[::]:8080")})
		}, checkFuncYAML, []string{fileFunc, "run.envs[LISTEN_ADDRESS]"}},
		{"func.yaml without GOMEMLIMIT", func(t *testing.T, b *bundle) {
			i := funcEnvIndex(t, b, "GOMEMLIMIT")
			b.funcYAML.Run.Envs = append(b.funcYAML.Run.Envs[:i], b.funcYAML.Run.Envs[i+1:]...)
		}, checkFuncYAML, []string{fileFunc, "run.envs", "GOMEMLIMIT"}},
		{"func.yaml pack builder", func(t *testing.T, b *bundle) {
			b.funcYAML.Build.Builder = "pack"
		}, checkFuncYAML, []string{fileFunc, "build.builder", `"pack"`}},
		{"func.yaml readiness path", func(t *testing.T, b *bundle) {
			b.funcYAML.Deploy.HealthEndpoints.Readiness = "/ready"
		}, checkFuncYAML, []string{fileFunc, "deploy.healthEndpoints", "/ready"}},

		// The Trigger.
		{"trigger to a path the function does not serve", func(t *testing.T, b *bundle) {
			b.trigger.Spec.Subscriber.URI = &apis.URL{Path: "/events"}
		}, checkTrigger, []string{fileTrigger, `Trigger "tracker-impressions"`, "spec.subscriber.uri", "/events"}},
		{"trigger to another Service", func(t *testing.T, b *bundle) {
			b.trigger.Spec.Subscriber.Ref.Name = "tracker-v2"
		}, checkTrigger, []string{fileTrigger, "spec.subscriber.ref"}},
		{"trigger without a type filter", func(t *testing.T, b *bundle) {
			b.trigger.Spec.Filter = nil
		}, checkTrigger, []string{fileTrigger, "spec.filter.attributes.type"}},
		{"dead letters back into the source Broker", func(t *testing.T, b *bundle) {
			b.trigger.Spec.Delivery.DeadLetterSink.Ref.Name = b.trigger.Spec.Broker
		}, checkTrigger, []string{fileTrigger, "spec.delivery.deadLetterSink.ref"}},
		{"linear backoff", func(t *testing.T, b *bundle) {
			b.trigger.Spec.Delivery.BackoffPolicy = ptr(eventingduckv1.BackoffPolicyLinear)
		}, checkTrigger, []string{fileTrigger, "spec.delivery.backoffPolicy"}},
		{"no retries", func(t *testing.T, b *bundle) {
			b.trigger.Spec.Delivery.Retry = ptr[int32](0)
		}, checkTrigger, []string{fileTrigger, "spec.delivery.retry"}},
		{"unknown Broker", func(t *testing.T, b *bundle) {
			b.trigger.Spec.Broker = "default"
		}, checkTrigger, []string{fileTrigger, "spec.broker", `"default"`}},

		// The Cassandra StatefulSet and its companions.
		{"serviceName not the headless Service", func(t *testing.T, b *bundle) {
			b.statefulSet.Spec.ServiceName = "cassandra-headless"
		}, checkStatefulSet, []string{fileStatefulSet, `StatefulSet "cassandra"`, "spec.serviceName"}},
		{"Service not headless", func(t *testing.T, b *bundle) {
			b.cassandraService.Spec.ClusterIP = ""
		}, checkStatefulSet, []string{fileCassandraService, `Service "cassandra"`, "spec.clusterIP"}},
		{"not-ready pods unpublished", func(t *testing.T, b *bundle) {
			b.cassandraService.Spec.PublishNotReadyAddresses = false
		}, checkStatefulSet, []string{fileCassandraService, "spec.publishNotReadyAddresses"}},
		{"claims from an unknown StorageClass", func(t *testing.T, b *bundle) {
			b.statefulSet.Spec.VolumeClaimTemplates[0].Spec.StorageClassName = ptr("standard")
		}, checkStatefulSet, []string{fileStatefulSet, "storageClassName", fileStorageClass}},
		{"another image", func(t *testing.T, b *bundle) {
			cassandraContainer(b).Image = "cassandra:4.1"
		}, checkStatefulSet, []string{fileStatefulSet, ".image", "cassandra:4.1"}},
		{"one replica", func(t *testing.T, b *bundle) {
			b.statefulSet.Spec.Replicas = ptr[int32](1)
		}, checkStatefulSet, []string{fileStatefulSet, "spec.replicas"}},
		{"seed that is no pod", func(t *testing.T, b *bundle) {
			setStsEnv(b, "CASSANDRA_SEEDS", "cassandra-0.cassandra,cassandra-5.cassandra")
		}, checkStatefulSet, []string{fileStatefulSet, "env[CASSANDRA_SEEDS]", "cassandra-5"}},
		{"readiness without CQL", func(t *testing.T, b *bundle) {
			cassandraContainer(b).ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9042)}}}
		}, checkStatefulSet, []string{fileStatefulSet, "readinessProbe", "CQL OPTIONS over TLS"}},
		{"no drain before stop", func(t *testing.T, b *bundle) {
			cassandraContainer(b).Lifecycle = nil
		}, checkStatefulSet, []string{fileStatefulSet, "lifecycle.preStop"}},
		{"anti-affinity only preferred", func(t *testing.T, b *bundle) {
			b.statefulSet.Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution = nil
		}, checkStatefulSet, []string{fileStatefulSet, "podAntiAffinity"}},
		{"internode port open to every pod", func(t *testing.T, b *bundle) {
			b.networkPolicy.Spec.Ingress[0].From[0].PodSelector = &metav1.LabelSelector{}
		}, checkNetworkPolicy, []string{fileNetworkPolicy, `NetworkPolicy "cassandra"`, "spec.ingress[0].from[0].podSelector", "internode port 7000"}},
		{"internode port open to the Job's pods", func(t *testing.T, b *bundle) {
			delete(b.networkPolicy.Spec.Ingress[0].From[0].PodSelector.MatchLabels, "app.kubernetes.io/component")
		}, checkNetworkPolicy, []string{fileNetworkPolicy, "spec.ingress[0].from[0].podSelector", "setup Job's"}},
		{"internode port open to other namespaces", func(t *testing.T, b *bundle) {
			b.networkPolicy.Spec.Ingress[0].From[0].NamespaceSelector = &metav1.LabelSelector{}
		}, checkNetworkPolicy, []string{fileNetworkPolicy, "spec.ingress[0].from[0]", "other namespaces"}},
		{"internode port by name open to everything", func(t *testing.T, b *bundle) {
			b.networkPolicy.Spec.Ingress[0].From = nil
			b.networkPolicy.Spec.Ingress[0].Ports[0].Port = ptr(intstr.FromString("intra-node"))
		}, checkNetworkPolicy, []string{fileNetworkPolicy, "spec.ingress[0].from", "every pod and address", "no rule admits the nodes"}},
		{"clients reach every port", func(t *testing.T, b *bundle) {
			b.networkPolicy.Spec.Ingress[1].Ports = nil
		}, checkNetworkPolicy, []string{fileNetworkPolicy, "spec.ingress[1].from[0].podSelector", "every port"}},
		{"nodes cut off from each other", func(t *testing.T, b *bundle) {
			b.networkPolicy.Spec.Ingress[0].Ports[0].Port = ptr(intstr.FromInt32(7001))
		}, checkNetworkPolicy, []string{fileNetworkPolicy, "spec.ingress", "no rule admits the nodes", "7000"}},
		{"function cut off from CQL", func(t *testing.T, b *bundle) {
			b.networkPolicy.Spec.Ingress = b.networkPolicy.Spec.Ingress[:1]
		}, checkNetworkPolicy, []string{fileNetworkPolicy, "function's pods", "setup Job's pods", "9042"}},
		{"NetworkPolicy for other pods", func(t *testing.T, b *bundle) {
			b.networkPolicy.Spec.PodSelector.MatchLabels = map[string]string{"app": "cassandra"}
		}, checkNetworkPolicy, []string{fileNetworkPolicy, "spec.podSelector"}},
		{"NetworkPolicy that restricts no ingress", func(t *testing.T, b *bundle) {
			b.networkPolicy.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		}, checkNetworkPolicy, []string{fileNetworkPolicy, "spec.policyTypes", "Ingress"}},
		{"kustomization forgets the NetworkPolicy", func(t *testing.T, b *bundle) {
			b.cassandraKustomize.Resources = slices.DeleteFunc(b.cassandraKustomize.Resources, func(r string) bool { return r == "networkpolicy.yaml" })
		}, checkKustomizations, []string{fileCassandraKustomize, "resources", "networkpolicy.yaml"}},
		{"NetworkPolicy without component label", func(t *testing.T, b *bundle) {
			delete(b.networkPolicy.Labels, "app.kubernetes.io/component")
		}, checkLabels, []string{fileNetworkPolicy, "metadata.labels[app.kubernetes.io/component]"}},
		{"budget selects other pods", func(t *testing.T, b *bundle) {
			b.pdb.Spec.Selector.MatchLabels = map[string]string{"app": "cassandra"}
		}, checkStatefulSet, []string{filePDB, `PodDisruptionBudget "cassandra"`, "spec.selector"}},
		{"Service port to a missing container port", func(t *testing.T, b *bundle) {
			b.cassandraService.Spec.Ports[0].TargetPort = intstr.FromString("native")
		}, checkStatefulSet, []string{fileCassandraService, "spec.ports[cql]"}},
		{"heap above half the memory", func(t *testing.T, b *bundle) {
			setStsEnv(b, "MAX_HEAP_SIZE", "3G")
		}, checkCassandraResources, []string{fileStatefulSet, "env[MAX_HEAP_SIZE]", "half"}},
		{"heap from the host's memory", func(t *testing.T, b *bundle) {
			removeStsEnv(b, "MAX_HEAP_SIZE")
		}, checkCassandraResources, []string{fileStatefulSet, "env[MAX_HEAP_SIZE]", "host"}},
		{"HEAP_NEWSIZE with G1", func(t *testing.T, b *bundle) {
			setStsEnv(b, "HEAP_NEWSIZE", "400M")
		}, checkCassandraResources, []string{fileStatefulSet, "env[HEAP_NEWSIZE]"}},
		{"heap plus direct memory too large", func(t *testing.T, b *bundle) {
			setStsEnv(b, "MAX_DIRECT_MEMORY_SIZE", "2G")
		}, checkCassandraResources, []string{fileStatefulSet, "env[MAX_DIRECT_MEMORY_SIZE]"}},
		{"off-heap memtables too large", func(t *testing.T, b *bundle) {
			setStsEnv(b, "JVM_EXTRA_OPTS", strings.Replace(containerEnv(cassandraContainer(b))["JVM_EXTRA_OPTS"], "memtable_offheap_space=512MiB", "memtable_offheap_space=1GiB", 1))
		}, checkCassandraResources, []string{fileStatefulSet, "env[MAX_DIRECT_MEMORY_SIZE]", "off-heap memtables 1024 MiB"}},
		{"burstable QoS", func(t *testing.T, b *bundle) {
			cassandraContainer(b).Resources.Requests[corev1.ResourceMemory] = resource.MustParse("2Gi")
		}, checkCassandraResources, []string{fileStatefulSet, "resources", "Guaranteed"}},

		// Labels and Kustomizations.
		{"object without component label", func(t *testing.T, b *bundle) {
			delete(b.pdb.Labels, "app.kubernetes.io/component")
		}, checkLabels, []string{filePDB, `PodDisruptionBudget "cassandra"`, "metadata.labels[app.kubernetes.io/component]"}},
		{"object part of something else", func(t *testing.T, b *bundle) {
			b.configMap.Labels["app.kubernetes.io/part-of"] = "shop"
		}, checkLabels, []string{fileConfigMap, "app.kubernetes.io/part-of", `"shop"`}},
		{"kustomization forgets a file", func(t *testing.T, b *bundle) {
			b.knativeKustomization.Resources = []string{"configmap.yaml", "service.yaml", "broker.yaml"}
		}, checkKustomizations, []string{fileKnativeKustomization, "resources", "trigger.yaml"}},
		{"kustomization applies the placeholder Secret", func(t *testing.T, b *bundle) {
			b.knativeKustomization.Resources = append(b.knativeKustomization.Resources, "secret.example.yaml")
		}, checkKustomizations, []string{fileKnativeKustomization, "resources"}},
		{"kustomization cannot set the image", func(t *testing.T, b *bundle) {
			b.knativeKustomization.Images[0].Name = "ghcr.io/tracker"
		}, checkKustomizations, []string{fileKnativeKustomization, "images"}},

		// The monitoring Kustomization, and the Grafana dashboard's ConfigMap.
		{"monitoring kustomization forgets a file", func(t *testing.T, b *bundle) {
			b.monitoringKustomization.Resources = []string{"podmonitor.yaml"}
		}, checkKustomizations, []string{fileMonitoringKustomize, "resources", "prometheusrule.yaml"}},
		{"dashboard without the sidecar's label", func(t *testing.T, b *bundle) {
			delete(b.monitoringKustomization.ConfigMapGenerator[0].Options.Labels, "grafana_dashboard")
		}, checkKustomizations, []string{fileMonitoringKustomize, "configMapGenerator[0].options.labels[grafana_dashboard]"}},
		{"dashboard not shipped", func(t *testing.T, b *bundle) {
			b.monitoringKustomization.ConfigMapGenerator = nil
		}, checkKustomizations, []string{fileMonitoringKustomize, "configMapGenerator", fileDashboard}},
		{"generator in the default kustomization", func(t *testing.T, b *bundle) {
			b.knativeKustomization.ConfigMapGenerator = b.monitoringKustomization.ConfigMapGenerator
		}, checkKustomizations, []string{fileKnativeKustomization, "configMapGenerator"}},
		{"PodMonitor without component label", func(t *testing.T, b *bundle) {
			delete(b.podMonitor.Labels, "app.kubernetes.io/component")
		}, checkLabels, []string{filePodMonitor, `PodMonitor "tracker"`, "metadata.labels[app.kubernetes.io/component]"}},
		{"dashboard ConfigMap part of something else", func(t *testing.T, b *bundle) {
			b.monitoringKustomization.ConfigMapGenerator[0].Options.Labels["app.kubernetes.io/part-of"] = "shop"
		}, checkLabels, []string{fileMonitoringKustomize, `ConfigMap "tracker-dashboard"`, `"shop"`}},

		// Secrets as files: mounts, paths and keys.
		{"Secret mounted with subPath", func(t *testing.T, b *bundle) {
			svcContainer(b).VolumeMounts[0].SubPath = "ca.crt"
		}, checkSecretMounts, []string{fileService, "volumeMounts[cassandra-tls].subPath", "no update"}},
		{"Secret mounted writable", func(t *testing.T, b *bundle) {
			cassandraContainer(b).VolumeMounts[1].ReadOnly = false
		}, checkSecretMounts, []string{fileStatefulSet, "volumeMounts[tls].readOnly"}},
		{"Secret nothing in the repository makes", func(t *testing.T, b *bundle) {
			podVolume(t, &b.statefulSet.Spec.Template.Spec, "tls").Secret.SecretName = "cassandra-tls"
		}, checkSecretMounts, []string{fileStatefulSet, "spec.volumes[tls]", `"cassandra-tls"`, "no file"}},
		{"Job mounts a key the Secret lacks", func(t *testing.T, b *bundle) {
			podVolume(t, &b.roleJob.Spec.Template.Spec, "tracker-password").Secret.Items[0].Key = "CASSANDRA_PASSWORD"
		}, checkSecretMounts, []string{fileRoleJob, "items[CASSANDRA_PASSWORD]", fileSecret}},
		{"TLS key outside the mounts", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_TLS_KEY_FILE"] = "/etc/tracker/tls.key"
		}, checkMountedFiles, []string{fileConfigMap, "data.CASSANDRA_TLS_KEY_FILE", "no mounted volume"}},
		{"certificate and key swapped", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_TLS_CERT_FILE"] = "/var/run/secrets/tracker/cassandra-tls/tls.key"
			b.configMap.Data["CASSANDRA_TLS_KEY_FILE"] = "/var/run/secrets/tracker/cassandra-tls/tls.crt"
		}, checkMountedFiles, []string{"data.CASSANDRA_TLS_CERT_FILE", `want key "tls.crt"`, "data.CASSANDRA_TLS_KEY_FILE"}},
		{"password in the TLS Secret", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_PASSWORD_FILE"] = "/var/run/secrets/tracker/cassandra-tls/password"
		}, checkMountedFiles, []string{"data.CASSANDRA_PASSWORD_FILE", `no key "password"`, fileClientCertificate}},
		{"TLS mounted elsewhere", func(t *testing.T, b *bundle) {
			svcContainer(b).VolumeMounts[0].MountPath = "/etc/cassandra-tls"
		}, checkMountedFiles, []string{"data.CASSANDRA_TLS_CA_FILE", "no mounted volume"}},
		{"keystore without the key", func(t *testing.T, b *bundle) {
			setCassandraSetting(t, b, "client_encryption_options.keystore", "/var/run/secrets/cassandra/tls/tls.crt")
		}, checkMountedFiles, []string{fileStatefulSet, "client_encryption_options.keystore", `want key "tls-combined.pem"`}},
		{"node certificate without the combined PEM", func(t *testing.T, b *bundle) {
			b.nodeCertificate.Spec.AdditionalOutputFormats = nil
		}, checkMountedFiles, []string{fileStatefulSet, "keystore", `no key "tls-combined.pem"`, fileNodeCertificate}},
		{"internode truststore from the client-facing Secret", func(t *testing.T, b *bundle) {
			setCassandraSetting(t, b, "server_encryption_options.truststore", "/var/run/secrets/cassandra/tls/ca.crt")
		}, checkMountedFiles, []string{fileStatefulSet, "server_encryption_options.truststore", `want key "ca.crt" of Secret "cassandra-internode-tls"`}},
		{"nodes dial peers with the client-facing certificate", func(t *testing.T, b *bundle) {
			setCassandraSetting(t, b, "server_encryption_options.outbound_keystore", "/var/run/secrets/cassandra/tls/tls-combined.pem")
		}, checkMountedFiles, []string{fileStatefulSet, "server_encryption_options.outbound_keystore", `"cassandra-internode-tls"`}},

		// The internode authority: no client certificate is a peer.
		{"internode port trusts the clients' CA", func(t *testing.T, b *bundle) {
			setCassandraSetting(t, b, "server_encryption_options.truststore", "/var/run/secrets/cassandra/tls/ca.crt")
		}, checkInternodeAuthority, []string{fileStatefulSet, "server_encryption_options.truststore", "the CA of the native port's clients", "no role applies"}},
		{"internode certificate from the tracker CA", func(t *testing.T, b *bundle) {
			b.internodeCertificate.Spec.IssuerRef.Name = "tracker-ca"
		}, checkInternodeAuthority, []string{fileInternodeCertificate, "spec.issuerRef", fileInternodeCA, "the CA of the native port's clients"}},
		{"internode authority signs a client", func(t *testing.T, b *bundle) {
			b.setupCertificate.Spec.IssuerRef.Name = "cassandra-internode-ca"
		}, checkInternodeAuthority, []string{fileSetupCertificate, "spec.issuerRef", "as a peer"}},
		{"internode CA in the tracker CA's Secret", func(t *testing.T, b *bundle) {
			b.internodeCACertificate.Spec.SecretName = b.caCertificate.Spec.SecretName
		}, checkInternodeAuthority, []string{fileInternodeCA, "spec.secretName", "of its own"}},

		// TLS: the function against the nodes.
		{"function in the clear to TLS-only nodes", func(t *testing.T, b *bundle) {
			dropConfig(b, "CASSANDRA_TLS_CA_FILE", "CASSANDRA_TLS_CERT_FILE", "CASSANDRA_TLS_KEY_FILE", "CASSANDRA_TLS_SERVER_NAME")
			b.configMap.Data["CASSANDRA_TLS"] = "false"
		}, checkClusterTLS, []string{fileConfigMap, "data.CASSANDRA_TLS", "accept only TLS"}},
		{"TLS optional on the nodes", func(t *testing.T, b *bundle) {
			setCassandraSetting(t, b, "client_encryption_options.optional", "true")
		}, checkClusterTLS, []string{fileStatefulSet, "client_encryption_options", "not required"}},
		{"nodes that take any client certificate", func(t *testing.T, b *bundle) {
			setCassandraSetting(t, b, "client_encryption_options.require_client_auth", "false")
		}, checkClusterTLS, []string{fileStatefulSet, "client_encryption_options.require_client_auth"}},
		{"function without the client certificate the nodes require", func(t *testing.T, b *bundle) {
			dropConfig(b, "CASSANDRA_TLS_CERT_FILE", "CASSANDRA_TLS_KEY_FILE")
		}, checkClusterTLS, []string{fileConfigMap, "data.CASSANDRA_TLS_CERT_FILE", "require a client certificate"}},
		{"server name the node certificate lacks", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_TLS_SERVER_NAME"] = "cassandra.tracker.svc"
		}, checkClusterTLS, []string{fileConfigMap, "data.CASSANDRA_TLS_SERVER_NAME", "does not carry"}},
		{"nodes checked by their IPs", func(t *testing.T, b *bundle) {
			dropConfig(b, "CASSANDRA_TLS_SERVER_NAME")
		}, checkClusterTLS, []string{"data.CASSANDRA_TLS_SERVER_NAME", "pod IP"}},
		{"node certificates not verified", func(t *testing.T, b *bundle) {
			setServiceEnv(b, "CASSANDRA_TLS_INSECURE_SKIP_VERIFY", "true")
		}, checkClusterTLS, []string{"CASSANDRA_TLS_INSECURE_SKIP_VERIFY", "anything posing"}},
		{"nodes in the clear between them", func(t *testing.T, b *bundle) {
			setCassandraSetting(t, b, "server_encryption_options.internode_encryption", "dc")
		}, checkClusterTLS, []string{fileStatefulSet, "server_encryption_options.internode_encryption", `"dc"`}},
		{"keystore factory for JKS", func(t *testing.T, b *bundle) {
			setCassandraSetting(t, b, "server_encryption_options.ssl_context_factory.class_name", "org.apache.cassandra.security.DefaultSslContextFactory")
		}, checkClusterTLS, []string{fileStatefulSet, "server_encryption_options.ssl_context_factory", "PEMBased"}},
		{"client certificate from another authority", func(t *testing.T, b *bundle) {
			b.clientCertificate.Spec.IssuerRef.Name = "letsencrypt"
		}, checkClusterTLS, []string{fileClientCertificate, "spec.issuerRef", "ca.crt"}},
		{"client certificate without client auth", func(t *testing.T, b *bundle) {
			b.clientCertificate.Spec.Usages = []cmv1.KeyUsage{cmv1.UsageDigitalSignature, cmv1.UsageServerAuth}
		}, checkClusterTLS, []string{fileClientCertificate, "spec.usages", "client auth"}},
		{"node certificate only for servers", func(t *testing.T, b *bundle) {
			b.nodeCertificate.Spec.Usages = []cmv1.KeyUsage{cmv1.UsageDigitalSignature, cmv1.UsageServerAuth}
		}, checkClusterTLS, []string{fileNodeCertificate, "spec.usages", "readiness probe"}},
		{"internode certificate only for servers", func(t *testing.T, b *bundle) {
			b.internodeCertificate.Spec.Usages = []cmv1.KeyUsage{cmv1.UsageDigitalSignature, cmv1.UsageServerAuth}
		}, checkClusterTLS, []string{fileInternodeCertificate, "spec.usages", "each other's clients"}},
		{"TLS settings ignored", func(t *testing.T, b *bundle) {
			setJVMProperty(t, b, "cassandra.config.allow_system_properties", "false")
		}, checkClusterTLS, []string{fileStatefulSet, "allow_system_properties", "ignore"}},

		// The certificates and their stand-ins.
		{"node key Cassandra cannot read", func(t *testing.T, b *bundle) {
			b.nodeCertificate.Spec.PrivateKey.Encoding = cmv1.PKCS1
		}, checkCertificates, []string{fileNodeCertificate, "spec.privateKey.encoding", "PKCS8"}},
		{"CA key replaced at renewal", func(t *testing.T, b *bundle) {
			b.caCertificate.Spec.PrivateKey.RotationPolicy = cmv1.RotationPolicyAlways
		}, checkCertificates, []string{fileIssuer, `Certificate "tracker-ca"`, "rotationPolicy", "Never"}},
		{"CA renewed too late for its leaves", func(t *testing.T, b *bundle) {
			b.caCertificate.Spec.RenewBefore.Duration = 720 * time.Hour
		}, checkCertificates, []string{fileIssuer, "spec.renewBefore", "outlive the leaf"}},
		{"leaf renewed after it expires", func(t *testing.T, b *bundle) {
			b.clientCertificate.Spec.RenewBefore.Duration = 3000 * time.Hour
		}, checkCertificates, []string{fileClientCertificate, "spec.renewBefore"}},
		{"leaf signed by the self-signed Issuer", func(t *testing.T, b *bundle) {
			b.nodeCertificate.Spec.IssuerRef.Name = "tracker-selfsigned"
		}, checkCertificates, []string{fileNodeCertificate, "spec.issuerRef", "CA Issuer"}},
		{"TLS example with a real key", func(t *testing.T, b *bundle) {
			b.nodeTLSSecret.StringData["tls.key"] = "-----BEGIN PRIVATE KEY-----"
		}, checkCertificates, []string{fileNodeTLSSecret, "stringData.tls.key", "placeholder"}},
		{"TLS example short of a key", func(t *testing.T, b *bundle) {
			delete(b.clientTLSSecret.StringData, "ca.crt")
		}, checkCertificates, []string{fileClientTLSSecret, "stringData.ca.crt", "missing"}},
		{"wildcard node name", func(t *testing.T, b *bundle) {
			b.nodeCertificate.Spec.DNSNames = append(b.nodeCertificate.Spec.DNSNames, "*.cassandra")
		}, checkCertificates, []string{fileNodeCertificate, "spec.dnsNames", `"*.cassandra"`, "<service>.cassandra"}},
		{"internode CA key replaced at renewal", func(t *testing.T, b *bundle) {
			b.internodeCACertificate.Spec.PrivateKey.RotationPolicy = cmv1.RotationPolicyAlways
		}, checkCertificates, []string{fileInternodeCA, `Certificate "cassandra-internode-ca"`, "rotationPolicy"}},
		{"internode key Cassandra cannot read", func(t *testing.T, b *bundle) {
			b.internodeCertificate.Spec.PrivateKey.Encoding = cmv1.PKCS1
		}, checkCertificates, []string{fileInternodeCertificate, "spec.privateKey.encoding", "PKCS8"}},
		{"internode certificate from the wrong chain", func(t *testing.T, b *bundle) {
			b.internodeCertificate.Spec.IssuerRef.Name = "tracker-ca"
		}, checkCertificates, []string{fileInternodeCertificate, "spec.issuerRef", fileInternodeCA}},
		{"setup TLS example short of a key", func(t *testing.T, b *bundle) {
			delete(b.setupTLSSecret.StringData, "tls.key")
		}, checkCertificates, []string{fileSetupTLSSecret, "stringData.tls.key", "missing"}},
		{"internode TLS example with a real key", func(t *testing.T, b *bundle) {
			b.internodeTLSSecret.StringData["tls.key"] = "-----BEGIN PRIVATE KEY-----"
		}, checkCertificates, []string{fileInternodeTLSSecret, "stringData.tls.key", "placeholder"}},

		// The setup Job's client certificate.
		{"Job mounts the nodes' key", func(t *testing.T, b *bundle) {
			podVolume(t, &b.roleJob.Spec.Template.Spec, "tls").Secret.SecretName = b.nodeCertificate.Spec.SecretName
		}, checkJobCertificate, []string{fileRoleJob, "spec.volumes[tls]", `"cassandra-node-tls"`, "pose as every node", "no volume of Secret"}},
		{"Job mounts the internode key too", func(t *testing.T, b *bundle) {
			spec := &b.roleJob.Spec.Template.Spec
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "peer", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: b.internodeCertificate.Spec.SecretName}}}}}}})
		}, checkJobCertificate, []string{fileRoleJob, "spec.volumes[peer]", fileInternodeCertificate}},
		{"Job certificate that may serve", func(t *testing.T, b *bundle) {
			b.setupCertificate.Spec.Usages = append(b.setupCertificate.Spec.Usages, cmv1.UsageServerAuth)
		}, checkJobCertificate, []string{fileSetupCertificate, "spec.usages", "serve as a node"}},
		{"Job certificate with cert-manager's default usages", func(t *testing.T, b *bundle) {
			b.setupCertificate.Spec.Usages = nil
		}, checkJobCertificate, []string{fileSetupCertificate, "spec.usages", "server auth"}},
		{"Job certificate named like the nodes", func(t *testing.T, b *bundle) {
			b.setupCertificate.Spec.DNSNames = []string{"cassandra"}
		}, checkJobCertificate, []string{fileSetupCertificate, "spec.dnsNames", `"cassandra"`}},
		{"Job certificate with the nodes' common name", func(t *testing.T, b *bundle) {
			b.setupCertificate.Spec.CommonName = "cassandra"
		}, checkJobCertificate, []string{fileSetupCertificate, "spec.commonName", "OpenSSL"}},

		{"superuser example with a password", func(t *testing.T, b *bundle) {
			b.superuserSecret.StringData["password"] = "cassandra"
		}, checkCertificates, []string{fileSuperuserSecret, "stringData.password", "placeholder"}},

		// Authentication.
		{"nodes without passwords", func(t *testing.T, b *bundle) {
			setCassandraSetting(t, b, "authenticator.class_name", "org.apache.cassandra.auth.AllowAllAuthenticator")
		}, checkAuth, []string{fileStatefulSet, "authenticator", "PasswordAuthenticator"}},
		{"function without a role", func(t *testing.T, b *bundle) {
			dropConfig(b, "CASSANDRA_USERNAME", "CASSANDRA_PASSWORD_FILE")
		}, checkAuth, []string{fileService, "env[CASSANDRA_USERNAME]", "require a password"}},
		{"grants not enforced", func(t *testing.T, b *bundle) {
			setCassandraSetting(t, b, "authorizer.class_name", "org.apache.cassandra.auth.AllowAllAuthorizer")
		}, checkAuth, []string{fileStatefulSet, "authorizer", "CassandraAuthorizer"}},
		{"password as an environment variable", func(t *testing.T, b *bundle) {
			dropConfig(b, "CASSANDRA_PASSWORD_FILE")
			b.secret.StringData["CASSANDRA_PASSWORD"] = "REPLACE-ME"
			svcContainer(b).Env = append(svcContainer(b).Env, corev1.EnvVar{Name: "CASSANDRA_PASSWORD", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tracker-cassandra"}, Key: "CASSANDRA_PASSWORD"}}})
		}, checkAuth, []string{"data.CASSANDRA_PASSWORD_FILE", "env[CASSANDRA_PASSWORD]", "rotation"}},
		{"role tables on one node", func(t *testing.T, b *bundle) {
			setJVMProperty(t, b, "cassandra.system_auth.default_rf", "1")
		}, checkAuth, []string{fileStatefulSet, "cassandra.system_auth.default_rf", "logins"}},

		// The role Job: least privilege.
		{"role may CREATE", func(t *testing.T, b *bundle) {
			editJobScript(t, b, "GRANT SELECT ON", "GRANT CREATE ON KEYSPACE $CASSANDRA_KEYSPACE TO \"$(ident \"$CASSANDRA_USERNAME\")\";\nGRANT SELECT ON")
		}, checkRoleJob, []string{fileRoleJob, `Job "tracker-setup"`, "grants CREATE"}},
		{"role may do anything", func(t *testing.T, b *bundle) {
			editJobScript(t, b, "GRANT SELECT ON", "GRANT ALL PERMISSIONS ON")
		}, checkRoleJob, []string{fileRoleJob, "grants ALL", "no GRANT SELECT"}},
		{"grant on every keyspace", func(t *testing.T, b *bundle) {
			editJobScript(t, b, "MODIFY ON KEYSPACE $CASSANDRA_KEYSPACE", "MODIFY ON ALL KEYSPACES")
		}, checkRoleJob, []string{fileRoleJob, "ALL KEYSPACES", "only KEYSPACE tracking"}},
		{"role that cannot write", func(t *testing.T, b *bundle) {
			editJobScript(t, b, "GRANT MODIFY", "-- GRANT MODIFY")
		}, checkRoleJob, []string{fileRoleJob, "no GRANT MODIFY"}},
		{"role a superuser", func(t *testing.T, b *bundle) {
			editJobScript(t, b, "SUPERUSER = false AND LOGIN = true", "SUPERUSER = true AND LOGIN = true")
		}, checkRoleJob, []string{fileRoleJob, "superuser"}},
		{"function creates the schema without CREATE", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_SCHEMA_CREATE"] = "true"
		}, checkRoleJob, []string{fileConfigMap, "data.CASSANDRA_SCHEMA_CREATE", "may not CREATE"}},
		{"Job grants on a keyspace of its own", func(t *testing.T, b *bundle) {
			b.roleJob.Spec.Template.Spec.Containers[0].Env[3] = corev1.EnvVar{Name: "CASSANDRA_KEYSPACE", Value: "events"}
		}, checkRoleJob, []string{fileRoleJob, "env[CASSANDRA_KEYSPACE]", "KEYSPACE events"}},
		{"Job creates another role", func(t *testing.T, b *bundle) {
			b.roleJob.Spec.Template.Spec.Containers[0].Env[2] = corev1.EnvVar{Name: "CASSANDRA_USERNAME", Value: "tracker"}
		}, checkRoleJob, []string{fileRoleJob, "env[CASSANDRA_USERNAME]", "logs in as"}},
		{"Job gives the role another password", func(t *testing.T, b *bundle) {
			podVolume(t, &b.roleJob.Spec.Template.Spec, "tracker-password").Secret.Items[0].Key = "CASSANDRA_USERNAME"
		}, checkRoleJob, []string{fileRoleJob, `key "password" of Secret "tracker-cassandra"`}},
		{"Job never replaces the replication", func(t *testing.T, b *bundle) {
			editJobScript(t, b, "'replication_factor': 1}|", "'replication_factor': 3}|")
		}, checkRoleJob, []string{fileRoleJob, fileSchema, "'replication_factor': 3"}},
		{"Job without the schema", func(t *testing.T, b *bundle) {
			podVolume(t, &b.roleJob.Spec.Template.Spec, "schema").ConfigMap.Name = "schema"
		}, checkRoleJob, []string{fileRoleJob, `ConfigMap "schema"`, "configMapGenerator"}},
		{"Job logs in with the nodes' certificate", func(t *testing.T, b *bundle) {
			spec := &b.roleJob.Spec.Template.Spec
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "node-tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: b.nodeCertificate.Spec.SecretName}}})
			c := &spec.Containers[0]
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "node-tls", MountPath: "/var/run/secrets/cassandra/tls", ReadOnly: true})
			editJobScript(t, b, "tls=/var/run/secrets/tracker-setup/tls", "tls=/var/run/secrets/cassandra/tls")
		}, checkRoleJob, []string{fileRoleJob, `key "tls.crt" of Secret "tracker-setup-tls"`, fileSetupCertificate}},
		{"password in a cqlsh -e argument", func(t *testing.T, b *bundle) {
			editJobScript(t, b, `echo "role $CASSANDRA_USERNAME may`, `as "$admin" "$admin_password" -e "ALTER ROLE tracker WITH PASSWORD = '$(quote "$role_password")'"`+"\n"+`echo "role $CASSANDRA_USERNAME may`)
		}, checkJobPasswords, []string{fileRoleJob, `Job "tracker-setup"`, "$role_password", "-e argument", "/proc"}},
		{"password in a cqlsh argument through another variable", func(t *testing.T, b *bundle) {
			editJobScript(t, b, `echo "role $CASSANDRA_USERNAME may`, `stmt="ALTER ROLE tracker WITH PASSWORD = '$(quote "$role_password")'"`+"\n"+`as "$admin" "$admin_password" --execute="$stmt"`+"\n"+`echo "role $CASSANDRA_USERNAME may`)
		}, checkJobPasswords, []string{fileRoleJob, "$stmt", "--execute argument"}},
		{"password on cqlsh's command line by Kubernetes", func(t *testing.T, b *bundle) {
			c := &b.roleJob.Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "ROLE_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "tracker-cassandra"}, Key: "password"}}})
			c.Command = []string{"cqlsh"}
			c.Args = []string{"--ssl", "-u", "admin", "-p", "$(ROLE_SECRET)", "cassandra"}
		}, checkJobPasswords, []string{fileRoleJob, "$ROLE_SECRET", "-p argument"}},

		{"Job with another cqlsh", func(t *testing.T, b *bundle) {
			b.roleJob.Spec.Template.Spec.Containers[0].Image = "cassandra:4.1"
		}, checkRoleJob, []string{fileRoleJob, ".image", "cassandra:4.1"}},

		// What the function itself rejects (function.LoadConfig).
		{"TLS files while TLS is off", func(t *testing.T, b *bundle) {
			b.configMap.Data["CASSANDRA_TLS"] = "false"
		}, checkEffectiveConfig, []string{fileService, "rejects", "CASSANDRA_TLS_CA_FILE"}},
		{"client certificate without its key", func(t *testing.T, b *bundle) {
			dropConfig(b, "CASSANDRA_TLS_KEY_FILE")
		}, checkEffectiveConfig, []string{fileService, "rejects", "CASSANDRA_TLS_KEY_FILE"}},
		{"password and password file", func(t *testing.T, b *bundle) {
			setServiceEnv(b, "CASSANDRA_PASSWORD", "secret")
		}, checkEffectiveConfig, []string{fileService, "rejects", "CASSANDRA_PASSWORD_FILE"}},
		{"password file without a role", func(t *testing.T, b *bundle) {
			dropConfig(b, "CASSANDRA_USERNAME")
		}, checkEffectiveConfig, []string{fileService, "rejects", "CASSANDRA_USERNAME"}},
		{"password never mounted", func(t *testing.T, b *bundle) {
			c := svcContainer(b)
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "cassandra-password" })
			b.service.Spec.Template.Spec.Volumes = slices.DeleteFunc(b.service.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "cassandra-password" })
		}, checkServiceEnv, []string{fileSecret, "stringData.password", "not used"}},
		{"func.yaml mounts a Secret elsewhere", func(t *testing.T, b *bundle) {
			b.funcYAML.Run.Volumes[0].Path = ptr("/etc/tls")
		}, checkFuncYAML, []string{fileFunc, "run.volumes", "same paths"}},
		{"kustomization applies a TLS Secret example", func(t *testing.T, b *bundle) {
			b.cassandraTLSKustomize.Resources = append(b.cassandraTLSKustomize.Resources, "secret.example.yaml")
		}, checkKustomizations, []string{fileCassandraTLSKustomize, "resources", "*.example.yaml"}},
		{"kustomization generates another ConfigMap", func(t *testing.T, b *bundle) {
			b.cassandraKustomize.ConfigMapGenerator[0].Files = append(b.cassandraKustomize.ConfigMapGenerator[0].Files, "cassandra.yaml")
		}, checkKustomizations, []string{fileCassandraKustomize, "configMapGenerator[0]", "schema.cql"}},
		{"certificate Secret without labels", func(t *testing.T, b *bundle) {
			b.nodeCertificate.Spec.SecretTemplate = nil
		}, checkLabels, []string{fileNodeCertificate, "spec.secretTemplate.labels"}},
		{"readiness by a name Python refuses", func(t *testing.T, b *bundle) {
			cassandraContainer(b).ReadinessProbe.Exec.Command[5] = "cassandra-0.cassandra"
		}, checkStatefulSet, []string{fileStatefulSet, "readinessProbe", "cassandra-0.cassandra"}},

		// The PodMonitor.
		{"PodMonitor selects another Service", func(t *testing.T, b *bundle) {
			b.podMonitor.Spec.Selector.MatchLabels[serving.ServiceLabelKey] = "tracker-v2"
		}, checkScrape, []string{filePodMonitor, `PodMonitor "tracker"`, "spec.selector.matchLabels[serving.knative.dev/service]", "tracker-v2"}},
		{"PodMonitor selects on a label the pods lack", func(t *testing.T, b *bundle) {
			b.podMonitor.Spec.Selector.MatchLabels["app"] = "tracker"
		}, checkScrape, []string{filePodMonitor, "spec.selector.matchLabels[app]"}},
		{"PodMonitor scrapes a port by number", func(t *testing.T, b *bundle) {
			b.podMonitor.Spec.PodMetricsEndpoints[0].Port = nil
			b.podMonitor.Spec.PodMetricsEndpoints[0].PortNumber = ptr[int32](8080)
		}, checkScrape, []string{filePodMonitor, "spec.podMetricsEndpoints[0].port", servingv1.UserPortName}},
		{"PodMonitor scrapes another path", func(t *testing.T, b *bundle) {
			b.podMonitor.Spec.PodMetricsEndpoints[0].Path = "/"
		}, checkScrape, []string{filePodMonitor, "spec.podMetricsEndpoints[0].path", "/metrics"}},
		{"relabeling that breaks IPv6 addresses", func(t *testing.T, b *bundle) {
			b.podMonitor.Spec.PodMetricsEndpoints[0].RelabelConfigs[0].Regex = `([^:]+):\d+`
		}, checkScrape, []string{filePodMonitor, "relabelings", `"[fd00:10:244::7]:9464"`}},
		{"metrics listener on another port", func(t *testing.T, b *bundle) {
			b.configMap.Data["METRICS_ADDRESS"] = "[::]:9465"
		}, checkScrape, []string{filePodMonitor, "relabelings", `"10.244.1.7:9465"`, "METRICS_ADDRESS"}},
		{"metrics on the public serving port", func(t *testing.T, b *bundle) {
			b.configMap.Data["METRICS_ADDRESS"] = "[::]:8080"
		}, checkScrape, []string{filePodMonitor, "serving port", "public"}},
		{"no /metrics to scrape", func(t *testing.T, b *bundle) {
			b.configMap.Data["OTEL_METRICS_EXPORTER"] = "none"
		}, checkScrape, []string{filePodMonitor, "OTEL_METRICS_EXPORTER", "no /metrics"}},
		{"revision label dropped", func(t *testing.T, b *bundle) {
			ep := &b.podMonitor.Spec.PodMetricsEndpoints[0]
			ep.RelabelConfigs = ep.RelabelConfigs[:1]
		}, checkScrape, []string{filePodMonitor, "relabelings", "revision"}},
		{"scrape interval left to Prometheus", func(t *testing.T, b *bundle) {
			b.podMonitor.Spec.PodMetricsEndpoints[0].Interval = ""
		}, checkScrape, []string{filePodMonitor, "spec.podMetricsEndpoints[0].interval"}},

		// The PrometheusRule.
		{"alert missing", func(t *testing.T, b *bundle) {
			removeAlert(t, b, "TrackerNotReady")
		}, checkRules, []string{filePrometheusRule, `PrometheusRule "tracker"`, "no alert TrackerNotReady"}},
		{"alert without severity", func(t *testing.T, b *bundle) {
			delete(alertRule(t, b, "TrackerServerErrors").Labels, "severity")
		}, checkRules, []string{filePrometheusRule, "rules[TrackerServerErrors].labels.severity"}},
		{"alert without description", func(t *testing.T, b *bundle) {
			delete(alertRule(t, b, "TrackerEventsOverloaded").Annotations, "description")
		}, checkRules, []string{filePrometheusRule, "rules[TrackerEventsOverloaded].annotations.description", "missing"}},
		{"alert without for", func(t *testing.T, b *bundle) {
			alertRule(t, b, "TrackerNotReady").For = nil
		}, checkRules, []string{filePrometheusRule, "rules[TrackerNotReady].for", "missing"}},
		{"alert on a metric the function does not export", func(t *testing.T, b *bundle) {
			editAlertExpr(t, b, "TrackerEventsNotStored", "tracker_events_stored_total", "tracker_events_saved_total")
		}, checkRules, []string{filePrometheusRule, "rules[TrackerEventsNotStored].expr", "tracker_events_saved_total", "not exported"}},
		{"expression that does not parse", func(t *testing.T, b *bundle) {
			editAlertExpr(t, b, "TrackerServerErrors", "[5m]))", "[5m])")
		}, checkRules, []string{filePrometheusRule, "rules[TrackerServerErrors].expr", "does not parse"}},
		{"alert on absent series", func(t *testing.T, b *bundle) {
			alertRule(t, b, "TrackerNotReady").Expr = intstr.FromString("absent(tracker_store_ready == 1)")
		}, checkRules, []string{filePrometheusRule, "rules[TrackerNotReady].expr", "absent()", "scale-to-zero"}},
		{"label the metric does not have", func(t *testing.T, b *bundle) {
			editAlertExpr(t, b, "TrackerServerErrors", `code=~"5.."`, `status=~"5.."`)
		}, checkRules, []string{filePrometheusRule, "rules[TrackerServerErrors].expr", `label "status"`}},
		{"failure reason the function never counts", func(t *testing.T, b *bundle) {
			editAlertExpr(t, b, "TrackerCassandraUnavailable", `reason=~"unavailable|timeout"`, `reason=~"unavailable|timed_out"`)
		}, checkRules, []string{filePrometheusRule, "rules[TrackerCassandraUnavailable].expr", "timed_out"}},
		{"rate window of fewer than four scrapes", func(t *testing.T, b *bundle) {
			editAlertExpr(t, b, "TrackerEventsOverloaded", "[5m]", "[30s]")
		}, checkRules, []string{filePrometheusRule, "rules[TrackerEventsOverloaded].expr", "4 scrape intervals"}},
		{"Cassandra alert blind to the nodes", func(t *testing.T, b *bundle) {
			editAlertExpr(t, b, "TrackerCassandraUnavailable", "max by (namespace) (tracker_cassandra_hosts_up) == 0", "vector(1) == 0")
		}, checkRules, []string{filePrometheusRule, "TrackerCassandraUnavailable", "does not read tracker_cassandra_hosts_up"}},

		// The Grafana dashboard.
		{"dashboard with a datasource uid of its own", func(t *testing.T, b *bundle) {
			dashboardPanel(t, b, "Events/s by outcome").Datasource = json.RawMessage(`{"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}`)
		}, checkDashboard, []string{fileDashboard, `dashboard "Tracker"`, "Events/s by outcome", "datasource uid"}},
		{"dashboard query by datasource name", func(t *testing.T, b *bundle) {
			dashboardPanel(t, b, "Events/s by outcome").Targets[0].Datasource = json.RawMessage(`"Prometheus"`)
		}, checkDashboard, []string{fileDashboard, "targets[A].datasource", `"Prometheus"`}},
		{"dashboard without a datasource variable", func(t *testing.T, b *bundle) {
			b.dashboard.Templating.List = slices.DeleteFunc(b.dashboard.Templating.List, func(v grafanaVariable) bool { return v.Type == "datasource" })
		}, checkDashboard, []string{fileDashboard, "templating.list", "datasource"}},
		{"dashboard query of an unknown metric", func(t *testing.T, b *bundle) {
			dashboardPanel(t, b, "Events/s by outcome").Targets[0].Expr = `sum(rate(tracker_events_total{namespace="$namespace"}[$__rate_interval]))`
		}, checkDashboard, []string{fileDashboard, "Events/s by outcome", "targets[A].expr", "tracker_events_total", "not exported"}},
		{"dashboard query that does not parse", func(t *testing.T, b *bundle) {
			dashboardPanel(t, b, "Writer wait p99").Targets[0].Expr = `histogram_quantile(0.99, sum by (le) (rate(tracker_store_writer_wait_seconds_bucket[$__rate_interval]))`
		}, checkDashboard, []string{fileDashboard, "Writer wait p99", "does not parse"}},
		{"dashboard variable that does not exist", func(t *testing.T, b *bundle) {
			dashboardPanel(t, b, "Events/s by outcome").Targets[0].Expr = `sum(rate(tracker_events_stored_total{cluster="$cluster"}[$__rate_interval]))`
		}, checkDashboard, []string{fileDashboard, "$cluster"}},
		{"metric missing from the dashboard", func(t *testing.T, b *bundle) {
			p := dashboardPanel(t, b, "Pods and ready pods")
			p.Targets = slices.DeleteFunc(p.Targets, func(t grafanaTarget) bool { return strings.Contains(t.Expr, "tracker_store_ready") })
		}, checkDashboard, []string{fileDashboard, "no query reads tracker_store_ready"}},

		// The promtool unit tests of the alerts.
		{"alert never tested firing", func(t *testing.T, b *bundle) {
			dropAlertTests(b, "TrackerEventsRejected", func(a promtoolAlertTest) bool { return len(a.ExpAlerts) > 0 })
		}, checkAlertTests, []string{fileAlertTests, "no test where TrackerEventsRejected fires"}},
		{"alert never tested quiet", func(t *testing.T, b *bundle) {
			dropAlertTests(b, "TrackerNotReady", func(a promtoolAlertTest) bool { return len(a.ExpAlerts) == 0 })
		}, checkAlertTests, []string{fileAlertTests, "no test where TrackerNotReady stays quiet"}},
		{"no test of a Service scaled to zero", func(t *testing.T, b *bundle) {
			b.alertTests.Tests = slices.DeleteFunc(b.alertTests.Tests, func(g promtoolTestGroup) bool { return len(g.InputSeries) == 0 })
		}, checkAlertTests, []string{fileAlertTests, "no test without input series"}},
		{"test of an alert that does not exist", func(t *testing.T, b *bundle) {
			b.alertTests.Tests[0].AlertRuleTests[0].Alertname = "TrackerDown"
		}, checkAlertTests, []string{fileAlertTests, "alertname", `"TrackerDown" is no alert`}},
		{"test series the function does not export", func(t *testing.T, b *bundle) {
			b.alertTests.Tests[0].InputSeries[0].Series = `tracker_events_total{namespace="tracker"}`
		}, checkAlertTests, []string{fileAlertTests, "input_series[0]", "tracker_events_total"}},

		// Dockerfile.
		{"cgo left on", func(t *testing.T, b *bundle) {
			editDockerfile(t, b, "CGO_ENABLED=0 go build", "go build")
		}, checkDockerfile, []string{fileDockerfile, "CGO_ENABLED=0"}},
		{"paths kept in the binary", func(t *testing.T, b *bundle) {
			editDockerfile(t, b, " -trimpath", "")
		}, checkDockerfile, []string{fileDockerfile, "-trimpath"}},
		{"final stage with a shell", func(t *testing.T, b *bundle) {
			editDockerfile(t, b, "FROM gcr.io/distroless/static-debian12:nonroot", "FROM alpine:3")
		}, checkDockerfile, []string{fileDockerfile, "FROM", "alpine"}},
		{"user by name", func(t *testing.T, b *bundle) {
			editDockerfile(t, b, "USER 65532:65532", "USER nonroot")
		}, checkDockerfile, []string{fileDockerfile, "USER", "numeric"}},
		{"killed, not stopped", func(t *testing.T, b *bundle) {
			editDockerfile(t, b, "STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL")
		}, checkDockerfile, []string{fileDockerfile, "STOPSIGNAL"}},
		{"exposes another port", func(t *testing.T, b *bundle) {
			editDockerfile(t, b, "EXPOSE 8080", "EXPOSE 9090")
		}, checkDockerfile, []string{fileDockerfile, "EXPOSE", "8080"}},
		{"listens elsewhere", func(t *testing.T, b *bundle) {
			editDockerfile(t, b, "ENV LISTEN_ADDRESS=[::]:8080", "ENV LISTEN_ADDRESS=127.0.0.1:8080")
		}, checkDockerfile, []string{fileDockerfile, "ENV LISTEN_ADDRESS"}},
		{"build line with a variable", func(t *testing.T, b *bundle) {
			editDockerfile(t, b, "-o /out/tracker", "-o $OUT")
		}, checkDockerfile, []string{fileDockerfile, "go build", "variables"}},

		// Compose.
		{"compose runs another Cassandra", func(t *testing.T, b *bundle) {
			s := b.compose.Services["cassandra"]
			s.Image = "cassandra:4.1"
			b.compose.Services["cassandra"] = s
		}, checkCompose, []string{fileCompose, `service "cassandra"`, "image"}},
		{"compose sets an unknown variable", func(t *testing.T, b *bundle) {
			b.compose.Services["tracker"].Environment["PORT"] = "8080"
		}, checkCompose, []string{fileCompose, `service "tracker"`, "environment[PORT]"}},
		{"compose function on its own loopback", func(t *testing.T, b *bundle) {
			b.compose.Services["tracker"].Environment["CASSANDRA_HOSTS"] = "127.0.0.1:9042"
		}, checkCompose, []string{fileCompose, "environment[CASSANDRA_HOSTS]"}},
		{"compose builds another context", func(t *testing.T, b *bundle) {
			b.compose.Services["tracker"].Build.Context = "."
		}, checkCompose, []string{fileCompose, "build"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := load(t)
			tt.corrupt(t, b)
			err := tt.check(b)
			if err == nil {
				t.Fatalf("got no error, want one naming %q", tt.want)
			}
			t.Logf("got, as wanted:\n%v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestStrictDecodingRejects(t *testing.T) {
	t.Parallel()
	rootOnce.Do(func() { root, rootErr = repoRoot() })
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	read := func(t *testing.T, file string) string {
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	edit := func(t *testing.T, file, old, new string) []byte {
		text := read(t, file)
		if !strings.Contains(text, old) {
			t.Fatalf("%s has no %q", file, old)
		}
		return []byte(strings.Replace(text, old, new, 1))
	}
	kube := func(apiVersion, kind string, into any) func(file string, data []byte) error {
		return func(file string, data []byte) error {
			return decodeStrict(file, data, apiVersion, kind, into)
		}
	}
	tests := []struct {
		name   string
		file   string
		old    string
		new    string
		decode func(file string, data []byte) error
		want   []string
	}{
		{"misspelled Knative field", fileService, "containerConcurrency:", "containerConcurency:",
			kube("serving.knative.dev/v1", "Service", new(servingv1.Service)), []string{fileService, "containerConcurency"}},
		{"field at the wrong level", fileTrigger, "  broker: tracker", "  broker: tracker\n  retry: 3",
			kube("eventing.knative.dev/v1", "Trigger", new(eventingv1.Trigger)), []string{fileTrigger, "retry"}},
		{"duplicated ConfigMap key", fileConfigMap, `  LOG_LEVEL: "info"`, "  LOG_LEVEL: \"info\"\n  LOG_LEVEL: \"debug\"",
			kube("v1", "ConfigMap", new(corev1.ConfigMap)), []string{fileConfigMap, "LOG_LEVEL"}},
		{"wrong kind in a file", fileStatefulSet, "kind: StatefulSet", "kind: Deployment",
			kube("apps/v1", "StatefulSet", new(appsv1.StatefulSet)), []string{fileStatefulSet, "kind", "Deployment"}},
		{"func.yaml deploy envs func does not read", fileFunc, "deploy:\n", "deploy:\n  envs: []\n",
			func(file string, data []byte) error { return decodePlainBytes(file, data, new(funcYAML)) }, []string{fileFunc, "envs"}},
		{"func.yaml misspelled option", fileFunc, "utilization:", "utilisation:",
			func(file string, data []byte) error { return decodePlainBytes(file, data, new(funcYAML)) }, []string{fileFunc, "utilisation"}},
		{"kustomization field not checked", fileKnativeKustomization, "resources:", "commonLabels: {}\nresources:",
			func(file string, data []byte) error { return decodePlainBytes(file, data, new(kustomization)) }, []string{fileKnativeKustomization, "commonLabels"}},
		{"misspelled PodMonitor field", filePodMonitor, "podMetricsEndpoints:", "podMetricEndpoints:",
			kube("monitoring.coreos.com/v1", "PodMonitor", new(monitoringv1.PodMonitor)), []string{filePodMonitor, "podMetricEndpoints"}},
		{"PrometheusRule field at the wrong level", filePrometheusRule, "          for: 5m\n", "          for: 5m\n          severity: critical\n",
			kube("monitoring.coreos.com/v1", "PrometheusRule", new(monitoringv1.PrometheusRule)), []string{filePrometheusRule, "severity"}},
		{"misspelled Certificate field", fileNodeCertificate, "renewBefore:", "renewBfore:",
			kube("cert-manager.io/v1", "Certificate", new(cmv1.Certificate)), []string{fileNodeCertificate, "renewBfore"}},
		{"misspelled NetworkPolicy field", fileNetworkPolicy, "policyTypes:", "policyType:",
			kube("networking.k8s.io/v1", "NetworkPolicy", new(networkingv1.NetworkPolicy)), []string{fileNetworkPolicy, "policyType"}},
		{"Job field at the wrong level", fileRoleJob, "  backoffLimit: 3", "  backoffLimit: 3\n  restartPolicy: Never",
			kube("batch/v1", "Job", new(batchv1.Job)), []string{fileRoleJob, "restartPolicy"}},
		{"promtool test field promtool does not read", fileAlertTests, "evaluation_interval: 30s", "evaluation_interval: 30s\nevaluation_intervall: 1m",
			func(file string, data []byte) error { return decodePlainBytes(file, data, new(promtoolTests)) }, []string{fileAlertTests, "evaluation_intervall"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := edit(t, tt.file, tt.old, tt.new)
			err := tt.decode(tt.file, data)
			if err == nil {
				t.Fatalf("got no error, want one naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error:\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}
