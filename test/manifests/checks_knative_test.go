package manifests

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventingconfig "knative.dev/eventing/pkg/apis/config"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/autoscaling"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// The paths func-go serves itself for the probes, and the path of the
// function's tracking endpoint (function/routes.go).
const (
	readinessPath = "/health/readiness"
	livenessPath  = "/health/liveness"
	trackPath     = "/track"
)

// eventingInstallDefaults is the config-br-defaults ConfigMap that Knative
// Eventing's release installs: Brokers without a class annotation get the
// channel-based class. The webhook defaults it from there; the tests hand
// it to SetDefaults the same way.
var eventingInstallDefaults = map[string]string{
	"default-br-config": `
clusterDefault:
  brokerClass: MTChannelBasedBroker
  apiVersion: v1
  kind: ConfigMap
  name: config-br-default-channel
  namespace: knative-eventing
`,
}

// knativeContext is what a fresh Knative install validates a new object
// in: its default configuration (no feature flags turned on), in a create.
func knativeContext() (context.Context, error) {
	defaults, err := eventingconfig.NewDefaultsConfigFromMap(eventingInstallDefaults)
	if err != nil {
		return nil, err
	}
	ctx := eventingconfig.ToContext(context.Background(), &eventingconfig.Config{Defaults: defaults})
	return apis.WithinCreate(ctx), nil
}

// checkKnativeValidation runs Knative's own SetDefaults and Validate on
// the Service, the Brokers and the Trigger, as their admission webhooks do,
// and fails on every error and every warning (Knative warns, for example,
// about insecure security-context defaults).
func checkKnativeValidation(b *bundle) error {
	ctx, err := knativeContext()
	if err != nil {
		return err
	}
	var errs []error
	report := func(file, kind, name string, fe *apis.FieldError) {
		if fe == nil {
			return
		}
		if e := fe.Filter(apis.ErrorLevel); e != nil {
			errs = append(errs, fmt.Errorf("%s: %s %q: Knative validation error: %v", file, kind, name, e))
		}
		if w := fe.Filter(apis.WarningLevel); w != nil {
			errs = append(errs, fmt.Errorf("%s: %s %q: Knative validation warning: %v", file, kind, name, w))
		}
	}
	svc := b.service.DeepCopy()
	svc.SetDefaults(ctx)
	report(fileService, "Service", svc.Name, svc.Validate(ctx))
	for _, br := range b.brokers {
		br := br.DeepCopy()
		br.SetDefaults(ctx)
		report(fileBroker, "Broker", br.Name, br.Validate(ctx))
	}
	tr := b.trigger.DeepCopy()
	tr.SetDefaults(ctx)
	report(fileTrigger, "Trigger", tr.Name, tr.Validate(ctx))
	return errors.Join(errs...)
}

// serviceContainer is the Service's one container, or nil.
func serviceContainer(svc *servingv1.Service) *corev1.Container {
	if len(svc.Spec.Template.Spec.Containers) != 1 {
		return nil
	}
	return &svc.Spec.Template.Spec.Containers[0]
}

// containerPorts lists the container ports of the Service.
func containerPorts(svc *servingv1.Service) []int32 {
	var ports []int32
	if c := serviceContainer(svc); c != nil {
		for _, p := range c.Ports {
			ports = append(ports, p.ContainerPort)
		}
	}
	return ports
}

// serviceError reports a problem of knative/service.yaml.
func serviceError(b *bundle, field, format string, args ...any) error {
	return fieldError(fileService, "Service", b.service.Name, field, format, args...)
}

const containerField = "spec.template.spec.containers[0]"

// checkAutoscaling checks the scaling contract: the KPA on request
// concurrency, a soft target and utilization, scale from zero, a bounded
// maximum, and a hard containerConcurrency at least the soft target.
func checkAutoscaling(b *bundle) error {
	ann := b.service.Spec.Template.Annotations
	var errs []error
	const at = "spec.template.metadata.annotations"
	want := func(key, value string) {
		if got := ann[key]; got != value {
			errs = append(errs, serviceError(b, at+"["+key+"]", "got %q, want %q", got, value))
		}
	}
	number := func(key string, min, max float64) float64 {
		v, err := strconv.ParseFloat(ann[key], 64)
		if err != nil || v < min || v > max {
			errs = append(errs, serviceError(b, at+"["+key+"]", "got %q, want a number from %g to %g", ann[key], min, max))
		}
		return v
	}
	want(autoscaling.ClassAnnotationKey, autoscaling.KPA)
	want(autoscaling.MetricAnnotationKey, autoscaling.Concurrency)
	want(autoscaling.MinScaleAnnotationKey, "0")
	number(autoscaling.MaxScaleAnnotationKey, 1, 1000)
	target := number(autoscaling.TargetAnnotationKey, 1, 1000)
	number(autoscaling.TargetUtilizationPercentageKey, 1, 100)
	cc := b.service.Spec.Template.Spec.ContainerConcurrency
	switch {
	case cc == nil || *cc <= 0:
		errs = append(errs, serviceError(b, "spec.template.spec.containerConcurrency", "got %v, want a positive hard limit", ptrString(cc)))
	case float64(*cc) < target:
		errs = append(errs, serviceError(b, "spec.template.spec.containerConcurrency", "got %d, want at least the soft target %g", *cc, target))
	default:
		// The function's own bound on events in flight must take every
		// single-event request the queue-proxy lets through.
		if cfg, err := effectiveConfig(b); err == nil && int64(cfg.TrackMaxInflight) < *cc {
			errs = append(errs, serviceError(b, "spec.template.spec.containerConcurrency", "got %d, want at most TRACK_MAX_INFLIGHT (%d), or the function turns away requests the queue-proxy admitted", *cc, cfg.TrackMaxInflight))
		}
	}
	return errors.Join(errs...)
}

// checkProbes checks that the readiness and liveness probes ask func-go's
// own health paths on the container's port.
func checkProbes(b *bundle) error {
	c := serviceContainer(b.service)
	if c == nil {
		return serviceError(b, "spec.template.spec.containers", "got %d containers, want 1", len(b.service.Spec.Template.Spec.Containers))
	}
	var errs []error
	probe := func(name string, p *corev1.Probe, path string) {
		field := containerField + "." + name
		if p == nil || p.HTTPGet == nil {
			errs = append(errs, serviceError(b, field+".httpGet", "missing, want a GET of %s", path))
			return
		}
		if p.HTTPGet.Path != path {
			errs = append(errs, serviceError(b, field+".httpGet.path", "got %q, want %q (func-go's)", p.HTTPGet.Path, path))
		}
		if port := p.HTTPGet.Port; port.IntValue() != 0 && !slices.Contains(containerPorts(b.service), int32(port.IntValue())) {
			errs = append(errs, serviceError(b, field+".httpGet.port", "got %s, want the container port %v or none", port.String(), containerPorts(b.service)))
		}
	}
	probe("readinessProbe", c.ReadinessProbe, readinessPath)
	probe("livenessProbe", c.LivenessProbe, livenessPath)
	return errors.Join(errs...)
}

// checkSecurityContext checks the restricted security context: non-root,
// no privilege escalation, no capabilities, RuntimeDefault seccomp and a
// read-only root filesystem.
func checkSecurityContext(b *bundle) error {
	c := serviceContainer(b.service)
	if c == nil {
		return serviceError(b, "spec.template.spec.containers", "want 1 container")
	}
	field := containerField + ".securityContext"
	sc := c.SecurityContext
	if sc == nil {
		return serviceError(b, field, "missing")
	}
	var errs []error
	isTrue := func(name string, v *bool, want bool) {
		if v == nil || *v != want {
			errs = append(errs, serviceError(b, field+"."+name, "got %s, want %v", ptrString(v), want))
		}
	}
	isTrue("runAsNonRoot", sc.RunAsNonRoot, true)
	isTrue("allowPrivilegeEscalation", sc.AllowPrivilegeEscalation, false)
	isTrue("readOnlyRootFilesystem", sc.ReadOnlyRootFilesystem, true)
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		errs = append(errs, serviceError(b, field+".capabilities", "got %+v, want drop [ALL] and nothing added", sc.Capabilities))
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		errs = append(errs, serviceError(b, field+".seccompProfile", "got %+v, want type RuntimeDefault", sc.SeccompProfile))
	}
	return errors.Join(errs...)
}

// checkServiceResources checks that the container has CPU and memory
// requests and limits, requests no larger than limits, and that memory is
// sized with the load it admits: GOMEMLIMIT below the limit, and the
// largest bodies of containerConcurrency requests in at most half of it.
func checkServiceResources(b *bundle) error {
	c := serviceContainer(b.service)
	if c == nil {
		return serviceError(b, "spec.template.spec.containers", "want 1 container")
	}
	field := containerField + ".resources"
	var errs []error
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[name]
		lim, okLim := c.Resources.Limits[name]
		if !okReq {
			errs = append(errs, serviceError(b, field+".requests."+string(name), "missing"))
		}
		if !okLim {
			errs = append(errs, serviceError(b, field+".limits."+string(name), "missing"))
		}
		if okReq && okLim && req.Cmp(lim) > 0 {
			errs = append(errs, serviceError(b, field+".requests."+string(name), "got %s, want at most the limit %s", req.String(), lim.String()))
		}
	}
	limit, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		return errors.Join(errs...)
	}
	env := serviceLiteralEnv(b.service)
	if v, ok := env["GOMEMLIMIT"]; ok {
		n, err := parseGoMemLimit(v)
		if err != nil || n >= limit.Value() {
			errs = append(errs, serviceError(b, containerField+".env[GOMEMLIMIT]", "got %q, want a Go memory limit below the container's %s", v, limit.String()))
		}
	}
	cfg, err := effectiveConfig(b)
	if err == nil && b.service.Spec.Template.Spec.ContainerConcurrency != nil {
		cc := *b.service.Spec.Template.Spec.ContainerConcurrency
		if need := cc * cfg.TrackMaxBodyBytes; need > limit.Value()/2 {
			errs = append(errs, serviceError(b, field+".limits.memory",
				"got %s, want at least twice containerConcurrency (%d) x TRACK_MAX_BODY_BYTES (%d) = %d bytes", limit.String(), cc, cfg.TrackMaxBodyBytes, 2*need))
		}
	}
	return errors.Join(errs...)
}

// parseGoMemLimit parses a GOMEMLIMIT value: bytes with an optional B,
// KiB, MiB, GiB or TiB suffix.
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	factor := int64(1)
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, factor = v, u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid GOMEMLIMIT %q", s)
	}
	return n * factor, nil
}

// checkPorts checks that the container port is the port of LISTEN_ADDRESS,
// the address func-go listens on.
func checkPorts(b *bundle) error {
	c := serviceContainer(b.service)
	if c == nil {
		return serviceError(b, "spec.template.spec.containers", "want 1 container")
	}
	listen, ok := serviceLiteralEnv(b.service)["LISTEN_ADDRESS"]
	if !ok {
		return serviceError(b, containerField+".env[LISTEN_ADDRESS]", "missing; Knative injects PORT, and func-go would then listen on 127.0.0.1 only")
	}
	port, err := listenPort(listen)
	if err != nil {
		return serviceError(b, containerField+".env[LISTEN_ADDRESS]", "got %q: %v", listen, err)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port {
		return serviceError(b, containerField+".ports", "got %v, want one port %d, LISTEN_ADDRESS's", containerPorts(b.service), port)
	}
	return nil
}

// listenPort is the port of a host:port listen address.
func listenPort(addr string) (int32, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return 0, errors.New("no port")
	}
	p, err := strconv.ParseUint(addr[i+1:], 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", addr[i+1:])
	}
	return int32(p), nil
}

// checkTrigger checks that the Trigger takes impressions from a Broker of
// broker.yaml to a path the function serves, retries with exponential
// backoff, and dead-letters into another Broker of broker.yaml.
func checkTrigger(b *bundle) error {
	t := b.trigger
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldError(fileTrigger, "Trigger", t.Name, field, format, args...))
	}
	var brokers []string
	for _, br := range b.brokers {
		brokers = append(brokers, br.Name)
	}
	if !slices.Contains(brokers, t.Spec.Broker) {
		bad("spec.broker", "got %q, want one of the Brokers of %s %v", t.Spec.Broker, fileBroker, brokers)
	}
	if t.Spec.Filter == nil || t.Spec.Filter.Attributes["type"] == "" {
		bad("spec.filter.attributes.type", "missing; want the impression event type")
	}
	ref := t.Spec.Subscriber.Ref
	if ref == nil || ref.APIVersion != "serving.knative.dev/v1" || ref.Kind != "Service" || ref.Name != b.service.Name {
		bad("spec.subscriber.ref", "got %+v, want the Knative Service %q", ref, b.service.Name)
	}
	if u := t.Spec.Subscriber.URI; u == nil {
		bad("spec.subscriber.uri", "missing; want %s", trackPath)
	} else if got := (*url.URL)(u); got.Host != "" || got.Path != trackPath {
		bad("spec.subscriber.uri", "got %q, want %q, the function's tracking path", got.String(), trackPath)
	}
	d := t.Spec.Delivery
	if d == nil {
		bad("spec.delivery", "missing; want retries, exponential backoff and a dead-letter sink")
		return errors.Join(errs...)
	}
	if d.Retry == nil || *d.Retry < 1 {
		bad("spec.delivery.retry", "got %s, want at least 1", ptrString(d.Retry))
	}
	if d.BackoffPolicy == nil || *d.BackoffPolicy != "exponential" {
		bad("spec.delivery.backoffPolicy", "got %s, want exponential", ptrString(d.BackoffPolicy))
	}
	if d.BackoffDelay == nil {
		bad("spec.delivery.backoffDelay", "missing")
	}
	if d.DeadLetterSink == nil || d.DeadLetterSink.Ref == nil {
		bad("spec.delivery.deadLetterSink.ref", "missing")
	} else if dl := d.DeadLetterSink.Ref; dl.Kind != "Broker" || !slices.Contains(brokers, dl.Name) || dl.Name == t.Spec.Broker {
		bad("spec.delivery.deadLetterSink.ref", "got %s %q, want a Broker of %s other than the Trigger's own (%q), which would deliver dead letters back to it", dl.Kind, dl.Name, fileBroker, t.Spec.Broker)
	}
	return errors.Join(errs...)
}

// ptrString prints a pointer's value, or <nil>.
func ptrString[T any](p *T) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}
