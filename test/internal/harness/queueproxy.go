package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	netcfg "knative.dev/networking/pkg/config"
	netheader "knative.dev/networking/pkg/http/header"
	"knative.dev/pkg/logging"
	"knative.dev/pkg/system"
	"knative.dev/serving/pkg/apis/autoscaling"
	apicfg "knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	"knative.dev/serving/pkg/deployment"
	"knative.dev/serving/pkg/networking"
	"knative.dev/serving/pkg/observability"
	configurationresources "knative.dev/serving/pkg/reconciler/configuration/resources"
	revisionconfig "knative.dev/serving/pkg/reconciler/revision/config"
	revisionresources "knative.dev/serving/pkg/reconciler/revision/resources"
	serviceresources "knative.dev/serving/pkg/reconciler/service/resources"
	"sigs.k8s.io/yaml"
)

// Revision is the pod that Knative Serving makes of knative/service.yaml,
// made by Knative's own code at the version test/go.mod requires: the
// Service defaulted as the webhook defaults it, its Configuration and first
// Revision as the service and configuration reconcilers make them, and the
// Deployment's pod as the revision reconciler makes it
// (revisionresources.MakeDeployment), under the settings of a Knative
// install whose config maps hold only their shipped examples. So the
// queue-proxy's environment (CONTAINER_CONCURRENCY,
// REVISION_TIMEOUT_SECONDS, SERVING_READINESS_PROBE with the user port
// applied, ...), the user container's preStop hook and the pod's grace
// period are Knative's, not copies of them.
type Revision struct {
	// Service is knative/service.yaml as the webhook defaults it.
	Service *servingv1.Service
	// Pod is the revision's pod: the user container and the queue-proxy.
	Pod corev1.PodSpec
}

// serviceFile is the manifest the revision is made from, relative to Root.
const serviceFile = "knative/service.yaml"

// queueProxyPodIP is the pod IP the queue-proxy is told it has (it only
// logs it): everything here runs on loopback.
const queueProxyPodIP = "127.0.0.1"

var systemNamespace sync.Once

// MakeRevision makes the first revision's pod of knative/service.yaml
// with the user container's port set to userPort, the port the function
// listens on here, as if the manifest declared it (0 keeps the manifest's
// port). Knative's code then points the readiness probe and USER_PORT at
// it.
func MakeRevision(userPort int) (*Revision, error) {
	// The revision reconciler names its own namespace in the queue-proxy's
	// environment (SYSTEM_NAMESPACE), which a controller reads from its
	// pod; Knative installs itself in knative-serving.
	systemNamespace.Do(func() {
		if _, ok := os.LookupEnv(system.NamespaceEnvKey); !ok {
			_ = os.Setenv(system.NamespaceEnvKey, "knative-serving")
		}
	})
	data, err := os.ReadFile(filepath.Join(Root(), serviceFile))
	if err != nil {
		return nil, err
	}
	svc := new(servingv1.Service)
	if err := yaml.UnmarshalStrict(data, svc); err != nil {
		return nil, fmt.Errorf("%s: %w", serviceFile, err)
	}
	svc.Namespace = "default"
	api, cfg, err := knativeDefaults()
	if err != nil {
		return nil, err
	}
	ctx := apicfg.ToContext(context.Background(), api)
	svc.SetDefaults(ctx)
	if err := svc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("%s: Knative would refuse it: %w", serviceFile, err)
	}
	if userPort != 0 {
		containers := svc.Spec.Template.Spec.Containers
		if len(containers) != 1 || len(containers[0].Ports) != 1 {
			return nil, fmt.Errorf("%s: want one container with one port", serviceFile)
		}
		containers[0].Ports[0].ContainerPort = int32(userPort)
	}
	configuration := serviceresources.MakeConfiguration(svc)
	configuration.Generation = 1
	rev := configurationresources.MakeRevision(ctx, configuration, time.Now())
	d, err := revisionresources.MakeDeployment(rev, cfg)
	if err != nil {
		return nil, fmt.Errorf("the revision reconciler's deployment of %s: %w", serviceFile, err)
	}
	return &Revision{Service: svc, Pod: d.Spec.Template.Spec}, nil
}

// knativeDefaults are the settings of a Knative install whose config maps
// (config-defaults, config-features, config-autoscaler, config-deployment,
// config-logging, config-network, config-observability) hold only the
// _example key they ship with. config-deployment ships the queue-proxy's
// image reference, which only names what a cluster would pull.
func knativeDefaults() (*apicfg.Config, *revisionconfig.Config, error) {
	defaults, err1 := apicfg.NewDefaultsConfigFromMap(nil)
	features, err2 := apicfg.NewFeaturesConfigFromMap(nil)
	autoscaler, err3 := asconfig.NewConfigFromMap(nil)
	dep, err4 := deployment.NewConfigFromMap(map[string]string{deployment.QueueSidecarImageKey: "queue"})
	logs, err5 := logging.NewConfigFromMap(nil)
	network, err6 := netcfg.NewConfigFromMap(nil)
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return nil, nil, fmt.Errorf("Knative's default settings: %w", err)
	}
	api := &apicfg.Config{Defaults: defaults, Features: features, Autoscaler: autoscaler}
	return api, &revisionconfig.Config{
		Config: api, Deployment: dep, Logging: logs, Network: network, Observability: observability.DefaultConfig(),
	}, nil
}

// container is the pod's container of that name.
func (r *Revision) container(name string) (*corev1.Container, error) {
	for i := range r.Pod.Containers {
		if r.Pod.Containers[i].Name == name {
			return &r.Pod.Containers[i], nil
		}
	}
	return nil, fmt.Errorf("the revision's pod has no container %q", name)
}

// userContainer is the function's container: the one that is not the
// queue-proxy.
func (r *Revision) userContainer() (*corev1.Container, error) {
	for i := range r.Pod.Containers {
		if r.Pod.Containers[i].Name != revisionresources.QueueContainerName {
			return &r.Pod.Containers[i], nil
		}
	}
	return nil, errors.New("the revision's pod has no user container")
}

// ContainerConcurrency is the Service's containerConcurrency: the
// requests the queue-proxy lets through to the function at once.
func (r *Revision) ContainerConcurrency() int {
	return int(r.Service.Spec.Template.Spec.GetContainerConcurrency())
}

// QueueDepth is how many requests the queue-proxy's breaker holds beyond
// ContainerConcurrency before it answers 503: ten times it, a constant of
// the queue-proxy (sharedmain.buildBreaker).
func (r *Revision) QueueDepth() int { return 10 * r.ContainerConcurrency() }

// Target is the autoscaling.knative.dev/target annotation: the requests
// in flight per pod the autoscaler aims at.
func (r *Revision) Target() (float64, error) {
	v, ok := r.Service.Spec.Template.Annotations[autoscaling.TargetAnnotationKey]
	if !ok {
		return 0, fmt.Errorf("%s sets no %s", serviceFile, autoscaling.TargetAnnotationKey)
	}
	return strconv.ParseFloat(v, 64)
}

// GracePeriod is the pod's terminationGracePeriodSeconds, which Knative
// derives from the revision's timeoutSeconds.
func (r *Revision) GracePeriod() time.Duration {
	if r.Pod.TerminationGracePeriodSeconds == nil {
		return 30 * time.Second // Kubernetes's default
	}
	return time.Duration(*r.Pod.TerminationGracePeriodSeconds) * time.Second
}

// MemoryLimit is the user container's memory limit in bytes.
func (r *Revision) MemoryLimit() (int64, error) {
	c, err := r.userContainer()
	if err != nil {
		return 0, err
	}
	q, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		return 0, fmt.Errorf("%s sets no memory limit", serviceFile)
	}
	return q.Value(), nil
}

// FunctionEnv is the literal environment of the user container, as
// NAME=value: the manifest's own values (GOMEMLIMIT, ...) and what Knative
// adds (PORT, K_SERVICE, K_CONFIGURATION, K_REVISION). LISTEN_ADDRESS is
// left out: the harness chooses the function's address. Values from
// ConfigMaps and Secrets are left out too; the caller sets what it needs.
func (r *Revision) FunctionEnv() ([]string, error) {
	c, err := r.userContainer()
	if err != nil {
		return nil, err
	}
	var env []string
	for _, e := range c.Env {
		if e.ValueFrom != nil || e.Name == "LISTEN_ADDRESS" {
			continue
		}
		env = append(env, e.Name+"="+e.Value)
	}
	return env, nil
}

// QueueProxyEnv is the queue-proxy container's environment, as NAME=value,
// with its serving port moved from Knative's 8012 to servingPort and the
// downward-API values of a local pod (the pod's name and IPs).
func (r *Revision) QueueProxyEnv(servingPort int) ([]string, error) {
	c, err := r.container(revisionresources.QueueContainerName)
	if err != nil {
		return nil, err
	}
	fields := map[string]string{
		"metadata.name": r.Service.Name + "-00001-deployment-local",
		"status.podIP":  queueProxyPodIP,
		"status.hostIP": queueProxyPodIP,
	}
	var env []string
	for _, e := range c.Env {
		value := e.Value
		switch {
		case e.Name == "QUEUE_SERVING_PORT":
			value = strconv.Itoa(servingPort)
		case e.ValueFrom != nil:
			ref := e.ValueFrom.FieldRef
			if ref == nil || fields[ref.FieldPath] == "" {
				return nil, fmt.Errorf("the queue-proxy's %s comes from %v, which the harness cannot resolve", e.Name, e.ValueFrom)
			}
			value = fields[ref.FieldPath]
		}
		env = append(env, e.Name+"="+value)
	}
	return env, nil
}

// kubeletProbe is the queue-proxy container's readiness probe, which the
// kubelet runs: GET on the serving port with Knative's K-Network-Probe
// header.
func (r *Revision) kubeletProbe() (*corev1.HTTPGetAction, error) {
	c, err := r.container(revisionresources.QueueContainerName)
	if err != nil {
		return nil, err
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil {
		return nil, errors.New("the queue-proxy has no HTTP readiness probe")
	}
	return c.ReadinessProbe.HTTPGet, nil
}

// preStop is the user container's preStop hook, which Knative points at
// the queue-proxy's admin port: it returns once the queue-proxy drained.
func (r *Revision) preStop() (*corev1.HTTPGetAction, error) {
	c, err := r.userContainer()
	if err != nil {
		return nil, err
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.HTTPGet == nil {
		return nil, errors.New("the user container has no HTTP preStop hook")
	}
	return c.Lifecycle.PreStop.HTTPGet, nil
}

// queueBuild is the queue-proxy's binary, built once per process.
var queueBuild struct {
	sync.Mutex
	path string
}

// queueTool is the directory of the module whose go.mod names the
// queue-proxy as a tool, relative to Root. It is a module of its own so
// that the queue-proxy is built with the dependency versions of its
// release: in test/'s module OpenTelemetry resolves newer, and the
// queue-proxy then stops at start (conflicting resource schema URLs).
const queueTool = "test/queueproxy/queue"

// QueueProxyBinary builds knative.dev/serving/cmd/queue, the go tool of
// queueTool, and returns its path. go tool -n keeps the linked binary in
// the Go build cache, so later builds are a cache hit of seconds; the
// first build on a machine compiles the queue-proxy's dependencies.
func QueueProxyBinary(ctx context.Context) (string, error) {
	queueBuild.Lock()
	defer queueBuild.Unlock()
	if queueBuild.path != "" {
		return queueBuild.path, nil
	}
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", "queue")
	cmd.Dir = filepath.Join(Root(), queueTool)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build the queue-proxy (go tool -n queue in %s): %v\n%s", queueTool, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	path := strings.TrimSpace(lines[len(lines)-1])
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("build the queue-proxy: go tool -n printed %q: %v", out, err)
	}
	queueBuild.path = path
	return path, nil
}

// The queue-proxy listens on fixed ports besides its serving port: its
// admin port (the preStop hook's /wait-for-drain) and the autoscaler's
// metrics port. Only one can run on a machine at a time; queueProxyLock,
// a file lock in the temporary directory, makes every process that starts
// one through this harness take turns.
var (
	queueAdminPort   = networking.QueueAdminPort
	queueMetricsPort = networking.AutoscalingQueueMetricsPort
	queueProxyLock   = filepath.Join(os.TempDir(), "tracker-knative-queue-proxy.lock")
)

// lockQueuePorts takes the file lock, waiting until ctx ends, and checks
// that the fixed ports are free.
func lockQueuePorts(ctx context.Context) (*os.File, error) {
	f, err := os.OpenFile(queueProxyLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", queueProxyLock, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another queue-proxy holds %s (ports %d and %d): %w", queueProxyLock, queueAdminPort, queueMetricsPort, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, port := range []int{queueAdminPort, queueMetricsPort} {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("port %d, which the queue-proxy always listens on, is taken by another program: %w", port, err)
		}
		l.Close()
	}
	return f, nil
}

// QueueProxy is Knative's queue-proxy run as a process in front of a
// function process, configured by MakeRevision from knative/service.yaml:
// the pod of one revision, on loopback.
type QueueProxy struct {
	Addr     string // 127.0.0.1:port, its serving port
	URL      string // http://127.0.0.1:port
	LogPath  string
	Revision *Revision
	Function *Function

	d    *daemon
	lock *os.File
}

// StartQueueProxy starts the queue-proxy in front of fn, its output in
// logPath, once the fixed ports are its (waiting for another queue-proxy
// to end, until ctx ends). It returns once the queue-proxy accepts
// connections; WaitReady waits until it reports the function ready.
func StartQueueProxy(ctx context.Context, fn *Function, logPath string) (*QueueProxy, error) {
	_, portText, err := net.SplitHostPort(fn.Addr)
	if err != nil {
		return nil, err
	}
	userPort, err := strconv.Atoi(portText)
	if err != nil {
		return nil, err
	}
	rev, err := MakeRevision(userPort)
	if err != nil {
		return nil, err
	}
	bin, err := QueueProxyBinary(ctx)
	if err != nil {
		return nil, err
	}
	lock, err := lockQueuePorts(ctx)
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		lock.Close()
		return nil, err
	}
	env, err := rev.QueueProxyEnv(port)
	if err != nil {
		lock.Close()
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	d, err := startCmd("queue-proxy", cmd, logPath)
	if err != nil {
		lock.Close()
		return nil, err
	}
	q := &QueueProxy{
		Addr: "127.0.0.1:" + strconv.Itoa(port), LogPath: logPath, Revision: rev, Function: fn, d: d, lock: lock,
	}
	q.URL = "http://" + q.Addr
	go func() {
		<-d.exited
		lock.Close() // the ports are free again
	}()
	if err := d.waitHTTP(ctx, "accepting connections", func(ctx context.Context) error {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", q.Addr)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		_ = q.Kill()
		return nil, d.failed(err)
	}
	return q, nil
}

// PID is the queue-proxy's process id.
func (q *QueueProxy) PID() int { return q.d.cmd.Process.Pid }

// Exited is closed when the queue-proxy has exited.
func (q *QueueProxy) Exited() <-chan struct{} { return q.d.exited }

// LogTail returns the last n lines of the queue-proxy's output.
func (q *QueueProxy) LogTail(n int) string { return q.d.logTail(n) }

// Kill ends the queue-proxy at once, for a test's cleanup: a SIGTERM
// would keep it draining for 30 s.
func (q *QueueProxy) Kill() error {
	select {
	case <-q.d.exited:
		return nil
	default:
	}
	if err := q.d.cmd.Process.Kill(); err != nil {
		return err
	}
	<-q.d.exited
	return nil
}

// The probes that reach the queue-proxy: the kubelet's (the queue-proxy
// container's readiness probe) and the activator's, which both carry
// K-Network-Probe: queue and are told apart from requests by their
// User-Agent. The queue-proxy answers them itself from the function's
// readiness probe (SERVING_READINESS_PROBE), or 503 once it drains.
const (
	// KubeletUserAgent is the User-Agent of the kubelet's probes
	// (kube-probe/<major>.<minor>).
	KubeletUserAgent = netheader.KubeProbeUAPrefix + "1.33"
	// ActivatorUserAgent is the User-Agent of the activator's probes.
	ActivatorUserAgent = netheader.ActivatorUserAgent
)

// Probe sends the queue-proxy container's readiness probe as the kubelet
// (KubeletUserAgent) or the activator (ActivatorUserAgent) sends it, and
// returns the status and body. While the function is not ready the
// queue-proxy keeps probing it for up to 10 s before it answers (its
// "aggressive" probing, as the manifest sets no periodSeconds), so ctx
// should allow more than that.
func (q *QueueProxy) Probe(ctx context.Context, userAgent string) (int, string, error) {
	action, err := q.Revision.kubeletProbe()
	if err != nil {
		return 0, "", err
	}
	path := action.Path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, q.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	for _, h := range action.HTTPHeaders {
		req.Header.Set(h.Name, h.Value)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// probeClient opens a connection per probe, as the kubelet does.
var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// PollProbe probes as the kubelet does until the queue-proxy answers
// want, the queue-proxy exits or timeout passes.
func (q *QueueProxy) PollProbe(want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return q.d.waitHTTP(ctx, fmt.Sprintf("a readiness probe answered %d", want), func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		status, body, err := q.Probe(pctx, KubeletUserAgent)
		if err != nil {
			return err
		}
		if status != want {
			return fmt.Errorf("probe answered %d %q", status, body)
		}
		return nil
	})
}

// WaitReady waits until the queue-proxy reports the function ready to the
// kubelet.
func (q *QueueProxy) WaitReady(timeout time.Duration) error {
	return q.PollProbe(http.StatusOK, timeout)
}

// Termination is what happened to the pod's two processes when Terminate
// ended it, each time since Terminate began.
type Termination struct {
	Grace time.Duration
	// QueueExited is when the queue-proxy exited; QueueKilled that the
	// grace period ran out first and it was killed.
	QueueExited time.Duration
	QueueKilled bool
	// HookReturned is when the user container's preStop hook returned,
	// with HookErr its error (nil for a 2xx); the function got SIGTERM
	// then.
	HookReturned time.Duration
	HookErr      error
	// FunctionExited is when the function exited; FunctionKilled that it
	// was killed, and FunctionErr its exit error otherwise.
	FunctionExited time.Duration
	FunctionKilled bool
	FunctionErr    error
}

// preStopExtension is the kubelet's one-off extension of the grace period
// for a container whose preStop hook ran past it: the container still gets
// its SIGTERM, and this long before SIGKILL (Kubernetes documentation,
// "Termination of Pods"; minimumGracePeriodInSeconds in the kubelet).
const preStopExtension = 2 * time.Second

// Terminate ends the pod as the kubelet does when it is deleted, both
// containers at once, each with the pod's grace period. The queue-proxy
// has no preStop hook: SIGTERM now, SIGKILL when the grace period ends.
// The user container's preStop hook (GET the queue-proxy's
// /wait-for-drain, which returns once the queue-proxy has drained) runs
// first, for at most the grace period; then the function gets SIGTERM, and
// SIGKILL once the rest of the grace period, or preStopExtension at
// least, has passed.
func (q *QueueProxy) Terminate() (Termination, error) {
	hook, err := q.Revision.preStop()
	if err != nil {
		return Termination{}, err
	}
	fn := q.Function
	term := Termination{Grace: q.Revision.GracePeriod()}
	began := time.Now()
	deadline := began.Add(term.Grace)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = q.d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-q.d.exited:
		case <-time.After(time.Until(deadline)):
			term.QueueKilled = true
			_ = q.d.cmd.Process.Kill()
			<-q.d.exited
		}
		term.QueueExited = time.Since(began)
	}()
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		term.HookErr = runHTTPHook(ctx, hook)
		cancel()
		term.HookReturned = time.Since(began)
		_ = fn.Signal(syscall.SIGTERM)
		kill := max(time.Until(deadline), preStopExtension)
		select {
		case <-fn.Exited():
			term.FunctionErr = fn.ExitErr()
		case <-time.After(kill):
			term.FunctionKilled = true
			_ = fn.d.cmd.Process.Kill()
			<-fn.Exited()
		}
		term.FunctionExited = time.Since(began)
	}()
	wg.Wait()
	return term, nil
}

// runHTTPHook runs an HTTP lifecycle hook on the pod's loopback address
// and returns nil for a 2xx answer.
func runHTTPHook(ctx context.Context, hook *corev1.HTTPGetAction) error {
	if hook.Port.Type != intstr.Int {
		return fmt.Errorf("hook port %s is not a number", hook.Port.String())
	}
	host := hook.Host
	if host == "" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, hook.Port.String()) + hook.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
