package manifests

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const cassandraImage = "cassandra:5.0"

// stsError reports a problem of cassandra/statefulset.yaml.
func stsError(b *bundle, field, format string, args ...any) error {
	return fieldError(fileStatefulSet, "StatefulSet", b.statefulSet.Name, field, format, args...)
}

// cassandraContainer is the StatefulSet's cassandra container, or nil.
func cassandraContainer(b *bundle) *corev1.Container {
	for i := range b.statefulSet.Spec.Template.Spec.Containers {
		if c := &b.statefulSet.Spec.Template.Spec.Containers[i]; c.Image == cassandraImage || c.Name == "cassandra" {
			return c
		}
	}
	return nil
}

// containerEnv is a container's literal environment.
func containerEnv(c *corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			out[e.Name] = e.Value
		}
	}
	return out
}

const stsContainerField = "spec.template.spec.containers[cassandra]"

// checkStatefulSet checks the Cassandra StatefulSet and its companions:
// the headless Service it names, the StorageClass its claims use, the
// official image, three replicas or more, seeds among its own pods, a
// readiness probe that speaks CQL over TLS, a preStop drain, required pod
// anti-affinity, and selectors (Service, PDB, anti-affinity) that match
// its pods.
func checkStatefulSet(b *bundle) error {
	sts := b.statefulSet
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, stsError(b, field, format, args...)) }
	podLabels := labels.Set(sts.Spec.Template.Labels)

	if sts.Spec.ServiceName != b.cassandraService.Name {
		bad("spec.serviceName", "got %q, want %q, the headless Service of %s", sts.Spec.ServiceName, b.cassandraService.Name, fileCassandraService)
	}
	svc := b.cassandraService
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		errs = append(errs, fieldError(fileCassandraService, "Service", svc.Name, "spec.clusterIP", "got %q, want None (headless)", svc.Spec.ClusterIP))
	}
	if !svc.Spec.PublishNotReadyAddresses {
		errs = append(errs, fieldError(fileCassandraService, "Service", svc.Name, "spec.publishNotReadyAddresses", "got false, want true: a starting node must resolve the seeds"))
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		errs = append(errs, fieldError(fileCassandraService, "Service", svc.Name, "spec.selector", "got %v, want labels of the StatefulSet's pods %v", svc.Spec.Selector, sts.Spec.Template.Labels))
	}
	if sel := b.pdb.Spec.Selector; sel == nil || len(sel.MatchLabels) == 0 || !labels.SelectorFromSet(sel.MatchLabels).Matches(podLabels) {
		errs = append(errs, fieldError(filePDB, "PodDisruptionBudget", b.pdb.Name, "spec.selector", "got %v, want labels of the StatefulSet's pods %v", sel, sts.Spec.Template.Labels))
	}
	if sel := sts.Spec.Selector; sel == nil || !labels.SelectorFromSet(sel.MatchLabels).Matches(podLabels) {
		bad("spec.selector", "got %v, want labels of its pods", sel)
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas < 3 {
		bad("spec.replicas", "got %s, want at least 3 (replication factor 3 needs three nodes)", ptrString(sts.Spec.Replicas))
	}

	// Storage: every claim template from the StorageClass of this folder,
	// and the data directory on a claim.
	var claims []string
	for i, pvc := range sts.Spec.VolumeClaimTemplates {
		claims = append(claims, pvc.Name)
		if sc := pvc.Spec.StorageClassName; sc == nil || *sc != b.storageClass.Name {
			bad(fmt.Sprintf("spec.volumeClaimTemplates[%d].spec.storageClassName", i), "got %s, want %q, the StorageClass of %s", ptrString(sc), b.storageClass.Name, fileStorageClass)
		}
	}
	c := cassandraContainer(b)
	if c == nil {
		bad("spec.template.spec.containers", "no cassandra container")
		return errors.Join(errs...)
	}
	if c.Image != cassandraImage {
		bad(stsContainerField+".image", "got %q, want %q (the official image)", c.Image, cassandraImage)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.MountPath == "/var/lib/cassandra" && slices.Contains(claims, m.Name)
	}) {
		bad(stsContainerField+".volumeMounts", "want /var/lib/cassandra on one of the volume claim templates %v", claims)
	}

	// Seeds: pods of this StatefulSet, by their names under the headless
	// Service.
	env := containerEnv(c)
	seeds := strings.Split(env["CASSANDRA_SEEDS"], ",")
	for _, seed := range seeds {
		if !isPodDNSName(b, strings.TrimSpace(seed)) {
			bad(stsContainerField+".env[CASSANDRA_SEEDS]", "got seed %q, want %s-N.%s with N below the replica count", seed, sts.Name, b.cassandraService.Name)
		}
	}

	// Readiness means CQL answers, over the TLS every client needs.
	if why := readinessSpeaksCQL(b, c); why != "" {
		bad(stsContainerField+".readinessProbe", "%s", why)
	}
	if l := c.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Exec == nil || !slices.Equal(l.PreStop.Exec.Command, []string{"nodetool", "drain"}) {
		bad(stsContainerField+".lifecycle.preStop", "want exec [nodetool drain], so that a stopping node flushes and leaves cleanly")
	}

	// Anti-affinity: never two replicas on one Kubernetes node.
	aa := sts.Spec.Template.Spec.Affinity
	if aa == nil || aa.PodAntiAffinity == nil || !slices.ContainsFunc(aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, func(t corev1.PodAffinityTerm) bool {
		return t.TopologyKey == "kubernetes.io/hostname" && t.LabelSelector != nil && len(t.LabelSelector.MatchLabels) > 0 &&
			labels.SelectorFromSet(t.LabelSelector.MatchLabels).Matches(podLabels)
	}) {
		bad("spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution", "want a term on kubernetes.io/hostname selecting the StatefulSet's own pods")
	}

	// Ports: what the headless Service names exists on the container.
	for _, p := range svc.Spec.Ports {
		i := slices.IndexFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.String() })
		if i < 0 || c.Ports[i].ContainerPort != p.Port {
			errs = append(errs, fieldError(fileCassandraService, "Service", svc.Name, "spec.ports["+p.Name+"]", "port %d targets %q; want a container port of that name and number", p.Port, p.TargetPort.String()))
		}
	}
	return errors.Join(errs...)
}

// isPodDNSName reports whether host is NAME-N.SERVICE of a pod of the
// StatefulSet (a namespace suffix allowed).
func isPodDNSName(b *bundle, host string) bool {
	pod, rest, ok := strings.Cut(host, ".")
	if !ok || (rest != b.cassandraService.Name && !strings.HasPrefix(rest, b.cassandraService.Name+".")) {
		return false
	}
	n, ok := strings.CutPrefix(pod, b.statefulSet.Name+"-")
	i, err := strconv.Atoi(n)
	return ok && err == nil && i >= 0 && b.statefulSet.Spec.Replicas != nil && int32(i) < *b.statefulSet.Spec.Replicas
}

// javaSize parses a JVM size such as 2G or 512M into bytes.
var javaSizePattern = regexp.MustCompile(`^([0-9]+)([kKmMgG]?)$`)

func javaSize(s string) (int64, error) {
	m := javaSizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("got %q, want a size such as 2G or 512M", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	switch strings.ToUpper(m[2]) {
	case "K":
		n <<= 10
	case "M":
		n <<= 20
	case "G":
		n <<= 30
	}
	return n, nil
}

// offHeapMemtables is the memory the node's memtables take outside the
// heap and direct memory: memtable_offheap_space (a quarter of the heap by
// default) when memtable_allocation_type puts them off the heap, else 0.
func offHeapMemtables(b *bundle, heap int64) (int64, error) {
	s, err := readCassandraSettings(b)
	if err != nil {
		return 0, err
	}
	switch s.settings["memtable_allocation_type"] {
	case "offheap_objects", "offheap_buffers":
	default:
		return 0, nil
	}
	space, ok := s.settings["memtable_offheap_space"]
	if !ok {
		return heap / 4, nil
	}
	m := dataStoragePattern.FindStringSubmatch(space)
	if m == nil {
		return 0, stsError(b, stsContainerField+".env[JVM_EXTRA_OPTS]", "memtable_offheap_space: got %q, want a size such as 512MiB", space)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n << map[string]int{"B": 0, "KiB": 10, "MiB": 20, "GiB": 30}[m[2]], nil
}

// dataStoragePattern is a size in cassandra.yaml's units.
var dataStoragePattern = regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB)$`)

// checkCassandraResources checks that the heap and the resources are sized
// together: requests equal limits (Guaranteed QoS), the heap is set
// explicitly (cassandra-env.sh would size it from the host's memory) to at
// most half the memory limit, HEAP_NEWSIZE is unset (G1), and heap, direct
// memory and off-heap memtables stay within three quarters of the limit.
func checkCassandraResources(b *bundle) error {
	c := cassandraContainer(b)
	if c == nil {
		return stsError(b, "spec.template.spec.containers", "no cassandra container")
	}
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, stsError(b, field, format, args...)) }
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[name]
		lim, okLim := c.Resources.Limits[name]
		if !okReq || !okLim || req.Cmp(lim) != 0 {
			bad(stsContainerField+".resources", "%s: got request %s and limit %s, want both set and equal (Guaranteed QoS)", name, req.String(), lim.String())
		}
	}
	limit, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		return errors.Join(errs...)
	}
	env := containerEnv(c)
	heap, err := javaSize(env["MAX_HEAP_SIZE"])
	if err != nil {
		bad(stsContainerField+".env[MAX_HEAP_SIZE]", "%v; set it, or Cassandra sizes the heap from the host's memory", err)
		return errors.Join(errs...)
	}
	if _, ok := env["HEAP_NEWSIZE"]; ok {
		bad(stsContainerField+".env[HEAP_NEWSIZE]", "set; Cassandra 5.0 on Java 17 uses G1, where it must stay unset")
	}
	if heap > limit.Value()/2 {
		bad(stsContainerField+".env[MAX_HEAP_SIZE]", "got %s, want at most half the memory limit %s", env["MAX_HEAP_SIZE"], limit.String())
	}
	memtables, err := offHeapMemtables(b, heap)
	if err != nil {
		errs = append(errs, err)
	}
	direct, err := javaSize(env["MAX_DIRECT_MEMORY_SIZE"])
	if err != nil {
		bad(stsContainerField+".env[MAX_DIRECT_MEMORY_SIZE]", "%v; set it, or Cassandra sizes it from the host's memory", err)
	} else if heap+direct+memtables > limit.Value()*3/4 {
		bad(stsContainerField+".env[MAX_DIRECT_MEMORY_SIZE]", "heap %s + direct %s + off-heap memtables %d MiB exceed three quarters of the memory limit %s; the JVM needs the rest for metaspace, stacks and GC", env["MAX_HEAP_SIZE"], env["MAX_DIRECT_MEMORY_SIZE"], memtables>>20, limit.String())
	}
	return errors.Join(errs...)
}

// parseCQLMap parses a CQL map literal of quoted keys and quoted or
// numeric values, such as {'class': 'NetworkTopologyStrategy', 'dc1': 3}.
func parseCQLMap(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	inner, ok := strings.CutPrefix(s, "{")
	if inner, ok = strings.CutSuffix(inner, "}"); !ok {
		return nil, fmt.Errorf("got %q, want a CQL map {'key': value, ...}", s)
	}
	out := map[string]string{}
	unquote := func(v string) string {
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			return v[1 : len(v)-1]
		}
		return v
	}
	for _, pair := range strings.Split(inner, ",") {
		k, v, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("got %q, want 'key': value pairs", s)
		}
		out[unquote(k)] = unquote(v)
	}
	return out, nil
}

// acksNeeded is how many replicas must acknowledge a write at a
// consistency level, for a replication factor in the local data center.
func acksNeeded(level string, rf int) (int, error) {
	switch level {
	case "ONE", "LOCAL_ONE":
		return 1, nil
	case "TWO":
		return 2, nil
	case "THREE":
		return 3, nil
	case "QUORUM", "LOCAL_QUORUM", "EACH_QUORUM":
		return rf/2 + 1, nil
	case "ALL":
		return rf, nil
	}
	return 0, fmt.Errorf("consistency %s cannot be used for the function's writes", level)
}

// checkClusterConfig checks that the function's configuration for the
// cluster matches the Cassandra manifests: its contact points are the
// headless Service on its CQL port; the keyspace replicates with
// NetworkTopologyStrategy into the StatefulSet's data center, which is the
// function's local one; and the consistency level can be met with as many
// nodes down as the PodDisruptionBudget allows.
func checkClusterConfig(b *bundle) error {
	cfg, err := effectiveConfig(b)
	if err != nil {
		return serviceError(b, containerField+".env", "%v", err)
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fieldError(fileConfigMap, "ConfigMap", b.configMap.Name, "data."+name, format, args...))
	}
	cqlPort := int32(0)
	for _, p := range b.cassandraService.Spec.Ports {
		if p.Name == "cql" {
			cqlPort = p.Port
		}
	}
	for _, h := range cfg.CassandraHosts {
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = h, "9042"
		}
		svc := b.cassandraService.Name
		if (host != svc && !strings.HasPrefix(host, svc+".") && !isPodDNSName(b, host)) || port != strconv.Itoa(int(cqlPort)) {
			bad("CASSANDRA_HOSTS", "got %q, want the headless Service %q (or its pods) on its cql port %d", h, svc, cqlPort)
		}
	}

	c := cassandraContainer(b)
	if c == nil {
		return errors.Join(append(errs, stsError(b, "spec.template.spec.containers", "no cassandra container"))...)
	}
	stsEnv := containerEnv(c)
	dc := stsEnv["CASSANDRA_DC"]
	if dc == "" {
		errs = append(errs, stsError(b, stsContainerField+".env[CASSANDRA_DC]", "missing; the keyspace and the function name the data center"))
	}
	if stsEnv["CASSANDRA_ENDPOINT_SNITCH"] != "GossipingPropertyFileSnitch" {
		errs = append(errs, stsError(b, stsContainerField+".env[CASSANDRA_ENDPOINT_SNITCH]", "got %q, want GossipingPropertyFileSnitch, which reads CASSANDRA_DC", stsEnv["CASSANDRA_ENDPOINT_SNITCH"]))
	}
	if cfg.CassandraLocalDC != dc {
		bad("CASSANDRA_LOCAL_DC", "got %q, want %q, the StatefulSet's CASSANDRA_DC", cfg.CassandraLocalDC, dc)
	}

	repl, err := parseCQLMap(cfg.CassandraReplication)
	if err != nil {
		bad("CASSANDRA_REPLICATION", "%v", err)
		return errors.Join(errs...)
	}
	if repl["class"] != "NetworkTopologyStrategy" && repl["class"] != "org.apache.cassandra.locator.NetworkTopologyStrategy" {
		bad("CASSANDRA_REPLICATION", "class: got %q, want NetworkTopologyStrategy", repl["class"])
	}
	var dcs []string
	for k := range repl {
		if k != "class" {
			dcs = append(dcs, k)
		}
	}
	if len(dcs) != 1 || dcs[0] != dc {
		bad("CASSANDRA_REPLICATION", "data centers: got %v, want [%s], the StatefulSet's", dcs, dc)
		return errors.Join(errs...)
	}
	rf, err := strconv.Atoi(repl[dc])
	replicas := int32(0)
	if b.statefulSet.Spec.Replicas != nil {
		replicas = *b.statefulSet.Spec.Replicas
	}
	if err != nil || rf < 1 || int32(rf) > replicas {
		bad("CASSANDRA_REPLICATION", "%s: got %q, want a replication factor from 1 to the StatefulSet's %d replicas", dc, repl[dc], replicas)
		return errors.Join(errs...)
	}
	level := cfg.CassandraConsistency.String()
	need, err := acksNeeded(level, rf)
	if err != nil {
		bad("CASSANDRA_CONSISTENCY", "%v", err)
		return errors.Join(errs...)
	}
	if strings.HasPrefix(level, "LOCAL_") && cfg.CassandraLocalDC == "" {
		bad("CASSANDRA_LOCAL_DC", "empty; %s needs the local data center", level)
	}
	maxDown := 0
	if mu := b.pdb.Spec.MaxUnavailable; mu != nil && mu.IntValue() > 0 {
		maxDown = mu.IntValue()
	} else {
		errs = append(errs, fieldError(filePDB, "PodDisruptionBudget", b.pdb.Name, "spec.maxUnavailable", "got %v, want a number of at least 1 (0 blocks every node drain)", mu))
	}
	if tolerate := rf - need; tolerate < max(maxDown, 1) {
		bad("CASSANDRA_CONSISTENCY", "%s needs %d of %d replicas, so it tolerates %d node(s) down; want at least %d, what %s allows (and at least one)", level, need, rf, tolerate, max(maxDown, 1), filePDB)
	}
	return errors.Join(errs...)
}
