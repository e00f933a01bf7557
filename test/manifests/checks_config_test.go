package manifests

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"knative.dev/serving/pkg/apis/autoscaling"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"tracker/function"
)

// runtimeEnv are the variables the Service may set besides the function's
// own (function.EnvNames): func-go's listen address and Go's soft memory
// limit.
var runtimeEnv = []string{"LISTEN_ADDRESS", "GOMEMLIMIT"}

// mustSetOnCluster are the function's variables whose defaults suit only a
// local single node, with the reason.
var mustSetOnCluster = map[string]string{
	"CASSANDRA_HOSTS":       "the default 127.0.0.1:9042 is the function's own pod",
	"CASSANDRA_REPLICATION": "the default SimpleStrategy with one replica loses data with a node",
	"CASSANDRA_LOCAL_DC":    "without it LOCAL_QUORUM has no local data center and the driver may route anywhere",
}

// emptyIsSafe are the function's variables without a default whose empty
// value is a meaningful setting: no authentication, no password file, the
// system's roots and no client certificate, nodes checked by address, no
// OTLP export (or one endpoint for both signals), a sampler ratio of 1, the
// service name from K_SERVICE, no extra resource attributes.
var emptyIsSafe = []string{
	"CASSANDRA_USERNAME", "CASSANDRA_PASSWORD", "CASSANDRA_PASSWORD_FILE",
	"CASSANDRA_TLS_CA_FILE", "CASSANDRA_TLS_CERT_FILE", "CASSANDRA_TLS_KEY_FILE", "CASSANDRA_TLS_SERVER_NAME",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	"OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
}

// knativeEnv are the function's variables that Knative sets in every
// revision's pod (the revision reconciler's K_SERVICE, K_CONFIGURATION and
// K_REVISION). The Service must not set them: Knative's validation refuses
// a container that does, and func deploy would copy them from func.yaml.
var knativeEnv = []string{"K_SERVICE", "K_CONFIGURATION", "K_REVISION"}

// secretEnv are the variables that must come from the Secret when they are
// set. The Service sets only the username: the password is a mounted file
// (CASSANDRA_PASSWORD_FILE), which checkPasswordFile requires.
var secretEnv = []string{"CASSANDRA_USERNAME", "CASSANDRA_PASSWORD"}

// serviceLiteralEnv returns the Service's variables that have a literal
// value.
func serviceLiteralEnv(svc *servingv1.Service) map[string]string {
	out := map[string]string{}
	if c := serviceContainer(svc); c != nil {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				out[e.Name] = e.Value
			}
		}
	}
	return out
}

// checkServiceEnv checks the Service's environment against the function's
// configuration contract: it sets only variables the function (or its
// runtime) reads, each once; it sets every variable whose default is wrong
// on a cluster; every variable it leaves out has a default or may be
// empty; credentials come from the Secret; and every reference resolves to
// a key of the same name in the ConfigMap or the Secret example, with no
// unused keys left there (a key the Service mounts as a file is used).
func checkServiceEnv(b *bundle) error {
	c := serviceContainer(b.service)
	if c == nil {
		return serviceError(b, "spec.template.spec.containers", "want 1 container")
	}
	known := append(function.EnvNames(), runtimeEnv...)
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, serviceError(b, containerField+".env["+name+"]", format, args...))
	}
	set := map[string]bool{}
	usedCM, usedSecret := map[string]bool{}, map[string]bool{}
	for _, e := range c.Env {
		if set[e.Name] {
			bad(e.Name, "set twice")
		}
		set[e.Name] = true
		if !slices.Contains(known, e.Name) {
			bad(e.Name, "the function does not read it; want one of %v", known)
		}
		if slices.Contains(knativeEnv, e.Name) {
			bad(e.Name, "set; Knative sets it in every revision's pod, and refuses a Service that sets it")
		}
		if len(c.EnvFrom) > 0 {
			bad(e.Name, "envFrom is set; want each variable named, so that the contract can be checked")
		}
		isSecret := slices.Contains(secretEnv, e.Name)
		switch {
		case e.ValueFrom == nil:
			if isSecret {
				bad(e.Name, "a literal value; want a secretKeyRef to Secret %q", b.secret.Name)
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			if isSecret {
				bad(e.Name, "from ConfigMap %q; want a secretKeyRef to Secret %q", ref.Name, b.secret.Name)
			}
			if ref.Name != b.configMap.Name {
				bad(e.Name, "configMapKeyRef.name: got %q, want %q (%s)", ref.Name, b.configMap.Name, fileConfigMap)
			}
			if ref.Key != e.Name {
				bad(e.Name, "configMapKeyRef.key: got %q, want %q, the variable's own name", ref.Key, e.Name)
			}
			if _, ok := b.configMap.Data[ref.Key]; !ok {
				bad(e.Name, "configMapKeyRef.key: %q is not a key of %s", ref.Key, fileConfigMap)
			}
			usedCM[ref.Key] = true
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if !isSecret {
				bad(e.Name, "from Secret %q; want configuration in ConfigMap %q", ref.Name, b.configMap.Name)
			}
			if ref.Name != b.secret.Name {
				bad(e.Name, "secretKeyRef.name: got %q, want %q (%s)", ref.Name, b.secret.Name, fileSecret)
			}
			if ref.Key != e.Name {
				bad(e.Name, "secretKeyRef.key: got %q, want %q, the variable's own name", ref.Key, e.Name)
			}
			if _, ok := secretData(b.secret)[ref.Key]; !ok {
				bad(e.Name, "secretKeyRef.key: %q is not a key of %s", ref.Key, fileSecret)
			}
			usedSecret[ref.Key] = true
		default:
			bad(e.Name, "valueFrom: want a configMapKeyRef or a secretKeyRef")
		}
	}
	for _, name := range function.EnvNames() {
		if set[name] || slices.Contains(knativeEnv, name) {
			continue
		}
		if why, ok := mustSetOnCluster[name]; ok {
			bad(name, "missing; it must be set on a cluster: %s", why)
		} else if _, ok := function.EnvDefault(name); !ok && !slices.Contains(emptyIsSafe, name) {
			bad(name, "missing, and the function has no default for it")
		}
	}
	for key := range b.configMap.Data {
		if !usedCM[key] {
			errs = append(errs, fieldError(fileConfigMap, "ConfigMap", b.configMap.Name, "data."+key, "not used by %s; the function would never see it", fileService))
		}
	}
	for _, v := range b.service.Spec.Template.Spec.Volumes {
		if v.Secret == nil || v.Secret.SecretName != b.secret.Name {
			continue
		}
		for key := range secretData(b.secret) {
			if len(v.Secret.Items) == 0 || slices.ContainsFunc(v.Secret.Items, func(i corev1.KeyToPath) bool { return i.Key == key }) {
				usedSecret[key] = true
			}
		}
	}
	for key := range secretData(b.secret) {
		if !usedSecret[key] {
			errs = append(errs, fieldError(fileSecret, "Secret", b.secret.Name, "stringData."+key, "not used by %s, as a variable or a file; the function would never see it", fileService))
		}
	}
	return errors.Join(errs...)
}

// secretData merges a Secret's data and stringData, as the API server does.
func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

// resolvedEnv is the environment the function's pod gets: literal values,
// references resolved through the ConfigMap and the Secret example, and
// the names Knative adds (those of the first revision).
func resolvedEnv(b *bundle) map[string]string {
	out := map[string]string{
		"K_SERVICE":       b.service.Name,
		"K_CONFIGURATION": b.service.Name,
		"K_REVISION":      b.service.Name + "-00001",
	}
	c := serviceContainer(b.service)
	if c == nil {
		return out
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			if v, ok := b.configMap.Data[e.ValueFrom.ConfigMapKeyRef.Key]; ok {
				out[e.Name] = v
			}
		case e.ValueFrom.SecretKeyRef != nil:
			if v, ok := secretData(b.secret)[e.ValueFrom.SecretKeyRef.Key]; ok {
				out[e.Name] = v
			}
		}
	}
	return out
}

// effectiveConfig is the function's configuration in the Service's pod:
// the resolved environment read by the function's own LoadConfig, which
// Validate checks as well.
func effectiveConfig(b *bundle) (function.Config, error) {
	cfg, ignored, err := function.LoadConfig(function.LookupIn(resolvedEnv(b)))
	if err != nil {
		return cfg, fmt.Errorf("the function rejects its configuration: %w", err)
	}
	if len(ignored) > 0 {
		return cfg, fmt.Errorf("the function ignores %v: unresolved func templates", ignored)
	}
	return cfg, nil
}

// checkEffectiveConfig checks that the function accepts the configuration
// the Service gives it.
func checkEffectiveConfig(b *bundle) error {
	if _, err := effectiveConfig(b); err != nil {
		return serviceError(b, containerField+".env", "%v", err)
	}
	return nil
}

// The forms of func.yaml env values that func's ProcessEnvs turns into a
// reference (pkg/functions/function.go at knative-v1.22.2).
var (
	funcKeyFromSecret    = regexp.MustCompile(`^{{\s*secret:((?:\w|['-]\w)+):([-._a-zA-Z0-9]+)\s*}}$`)
	funcKeyFromConfigMap = regexp.MustCompile(`^{{\s*configMap:((?:\w|['-]\w)+):([-._a-zA-Z0-9]+)\s*}}$`)
	funcEnvName          = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	funcName             = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// funcEnvVars turns func.yaml's envs into the container env that func
// deploy writes: a literal, or a configMapKeyRef/secretKeyRef.
func funcEnvVars(fn string, envs []funcEnv) ([]corev1.EnvVar, error) {
	var out []corev1.EnvVar
	var errs []error
	for i, e := range envs {
		if e.Name == nil || e.Value == nil {
			errs = append(errs, fieldError(fileFunc, "function", fn, fmt.Sprintf("run.envs[%d]", i), "want both name and value (whole ConfigMap or Secret imports cannot be checked)"))
			continue
		}
		name, value := *e.Name, *e.Value
		if !funcEnvName.MatchString(name) {
			errs = append(errs, fieldError(fileFunc, "function", fn, fmt.Sprintf("run.envs[%d].name", i), "got %q, not an environment variable name", name))
		}
		ev := corev1.EnvVar{Name: name}
		switch m1, m2 := funcKeyFromConfigMap.FindStringSubmatch(value), funcKeyFromSecret.FindStringSubmatch(value); {
		case m1 != nil:
			ev.ValueFrom = &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: m1[1]}, Key: m1[2]}}
		case m2 != nil:
			ev.ValueFrom = &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: m2[1]}, Key: m2[2]}}
		case strings.HasPrefix(value, "{{"):
			errs = append(errs, fieldError(fileFunc, "function", fn, fmt.Sprintf("run.envs[%d].value", i), "got %q; want {{ configMap:NAME:KEY }} or {{ secret:NAME:KEY }}, which func deploy turns into the Service's references", value))
			continue
		default:
			ev.Value = value
		}
		out = append(out, ev)
	}
	return out, errors.Join(errs...)
}

// checkFuncYAML checks func.yaml against the Service: the same name,
// scale options, resources, containerConcurrency, environment and volumes
// (as func deploy would write them) and health paths, the Go runtime and
// the host builder; and it leaves LISTEN_ADDRESS to func.
func checkFuncYAML(b *bundle) error {
	f := b.funcYAML
	svc := b.service
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldError(fileFunc, "function", f.Name, field, format, args...))
	}
	if f.SpecVersion != "0.36.0" {
		bad("specVersion", "got %q, want 0.36.0", f.SpecVersion)
	}
	if f.Name != svc.Name || !funcName.MatchString(f.Name) {
		bad("name", "got %q, want %q, the Service's name", f.Name, svc.Name)
	}
	if f.Runtime != "go" {
		bad("runtime", "got %q, want go", f.Runtime)
	}
	if f.Build.Builder != "host" {
		bad("build.builder", "got %q, want host (it needs no Docker daemon)", f.Build.Builder)
	}
	if _, err := time.Parse(time.RFC3339, f.Created); err != nil {
		bad("created", "got %q, want an RFC 3339 time", f.Created)
	}

	// Environment: func deploy writes run.envs as the container's env.
	got, err := funcEnvVars(f.Name, f.Run.Envs)
	if err != nil {
		errs = append(errs, err)
	}
	var want []corev1.EnvVar
	if c := serviceContainer(svc); c != nil {
		for _, e := range c.Env {
			if e.Name != "LISTEN_ADDRESS" {
				want = append(want, e)
			}
		}
	}
	for _, e := range got {
		if e.Name == "LISTEN_ADDRESS" {
			bad("run.envs[LISTEN_ADDRESS]", "set; leave it to func (its image sets [::]:8080, and func run needs its own address to poll readiness)")
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		bad("run.envs", "differs from %s env (without LISTEN_ADDRESS) (-service +func.yaml):\n%s", fileService, diff)
	}

	// Volumes: the same Secrets at the same paths.
	errs = append(errs, checkFuncVolumes(b)...)

	// Scale options: func deploy writes them as these annotations.
	ann := svc.Spec.Template.Annotations
	s := f.Deploy.Options.Scale
	if s == nil {
		bad("deploy.options.scale", "missing")
	} else {
		num := func(field string, got *float64, key string) {
			w, err := strconv.ParseFloat(ann[key], 64)
			if got == nil || err != nil || *got != w {
				bad("deploy.options.scale."+field, "got %s, want %q as the Service's %s", ptrString(got), ann[key], key)
			}
		}
		toFloat := func(p *int64) *float64 {
			if p == nil {
				return nil
			}
			v := float64(*p)
			return &v
		}
		num("min", toFloat(s.Min), autoscaling.MinScaleAnnotationKey)
		num("max", toFloat(s.Max), autoscaling.MaxScaleAnnotationKey)
		num("target", s.Target, autoscaling.TargetAnnotationKey)
		num("utilization", s.Utilization, autoscaling.TargetUtilizationPercentageKey)
		if s.Metric == nil || *s.Metric != ann[autoscaling.MetricAnnotationKey] {
			bad("deploy.options.scale.metric", "got %s, want %q as the Service's", ptrString(s.Metric), ann[autoscaling.MetricAnnotationKey])
		}
	}

	// Resources and containerConcurrency.
	r := f.Deploy.Options.Resources
	c := serviceContainer(svc)
	if r == nil || r.Requests == nil || r.Limits == nil || c == nil {
		bad("deploy.options.resources", "want requests and limits equal to the Service's")
	} else {
		qty := func(field string, got *string, list corev1.ResourceList, name corev1.ResourceName) {
			w := list[name]
			if got == nil {
				bad("deploy.options.resources."+field, "missing, want %s as the Service's", w.String())
				return
			}
			q, err := resource.ParseQuantity(*got)
			if err != nil || q.Cmp(w) != 0 {
				bad("deploy.options.resources."+field, "got %q, want %s as the Service's", *got, w.String())
			}
		}
		qty("requests.cpu", r.Requests.CPU, c.Resources.Requests, corev1.ResourceCPU)
		qty("requests.memory", r.Requests.Memory, c.Resources.Requests, corev1.ResourceMemory)
		qty("limits.cpu", r.Limits.CPU, c.Resources.Limits, corev1.ResourceCPU)
		qty("limits.memory", r.Limits.Memory, c.Resources.Limits, corev1.ResourceMemory)
		cc := svc.Spec.Template.Spec.ContainerConcurrency
		if r.Limits.Concurrency == nil || cc == nil || *r.Limits.Concurrency != *cc {
			bad("deploy.options.resources.limits.concurrency", "got %s, want %s, the Service's containerConcurrency", ptrString(r.Limits.Concurrency), ptrString(cc))
		}
	}

	// Health endpoints: func deploy writes them as the probes' paths.
	if h := f.Deploy.HealthEndpoints; h.Readiness != readinessPath || h.Liveness != livenessPath {
		bad("deploy.healthEndpoints", "got readiness %q liveness %q, want %q and %q (func-go's)", h.Readiness, h.Liveness, readinessPath, livenessPath)
	}

	// Labels: the same app.kubernetes.io labels as the Service.
	for k, v := range svc.Labels {
		i := slices.IndexFunc(f.Deploy.Labels, func(l funcLabel) bool { return l.Key == k })
		if i < 0 || f.Deploy.Labels[i].Value == nil || *f.Deploy.Labels[i].Value != v {
			bad("deploy.labels["+k+"]", "want %q as the Service's", v)
		}
	}
	return errors.Join(errs...)
}

// secretMount is a Secret mounted at a path.
type secretMount struct{ secret, path string }

// serviceSecretMounts lists the Secrets the Service's container mounts,
// and where; a mount of anything else is reported by checkSecretMounts.
func serviceSecretMounts(b *bundle) []secretMount {
	var out []secretMount
	c := serviceContainer(b.service)
	if c == nil {
		return nil
	}
	for _, m := range c.VolumeMounts {
		for _, v := range b.service.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				out = append(out, secretMount{v.Secret.SecretName, m.MountPath})
			}
		}
	}
	slices.SortFunc(out, func(x, y secretMount) int { return strings.Compare(x.path, y.path) })
	return out
}

// checkFuncVolumes checks func.yaml's run.volumes against the Service.
// func deploy mounts each Secret whole at its path, as a volume
// "secret-NAME", without readOnly (pkg/k8s/deployer.go, ProcessVolumes, at
// knative-v1.22.2); so func.yaml must list the Secrets the Service mounts,
// at the same paths, where the same files then appear (with the Secret's
// other keys beside them). Knative's defaulting makes such a mount
// read-only; the check applies it to the Service func deploy would write,
// and validates that Service as Knative's webhook would.
func checkFuncVolumes(b *bundle) []error {
	f := b.funcYAML
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldError(fileFunc, "function", f.Name, field, format, args...))
	}
	var got []secretMount
	var volumes []corev1.Volume
	var mounts []corev1.VolumeMount
	for i, v := range f.Run.Volumes {
		if v.Secret == nil || v.Path == nil || v.ConfigMap != nil || v.PersistentVolumeClaim != nil || v.EmptyDir != nil {
			bad(fmt.Sprintf("run.volumes[%d]", i), "want a secret and a path, as the Service mounts only Secrets")
			continue
		}
		got = append(got, secretMount{*v.Secret, *v.Path})
		name := "secret-" + *v.Secret
		volumes = append(volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: *v.Secret}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: *v.Path})
	}
	slices.SortFunc(got, func(x, y secretMount) int { return strings.Compare(x.path, y.path) })
	if want := serviceSecretMounts(b); !slices.Equal(want, got) {
		bad("run.volumes", "got %v, want the Secrets the Service mounts, at the same paths: %v", got, want)
	}
	ctx, err := knativeContext()
	if err != nil {
		return append(errs, err)
	}
	svc := b.service.DeepCopy()
	svc.Spec.Template.Spec.Volumes = volumes
	if c := serviceContainer(svc); c != nil {
		c.VolumeMounts = mounts
	}
	svc.SetDefaults(ctx)
	if fe := svc.Validate(ctx); fe != nil {
		bad("run.volumes", "the Service func deploy would write fails Knative's validation: %v", fe)
	}
	if c := serviceContainer(svc); c != nil {
		for _, m := range c.VolumeMounts {
			if !m.ReadOnly {
				bad("run.volumes", "%s: Knative's defaulting left the mount writable", m.MountPath)
			}
		}
	}
	return errs
}
