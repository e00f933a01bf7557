package manifests

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"knative.dev/serving/pkg/apis/serving"
)

// This file checks who may reach the Cassandra nodes over the network:
// the NetworkPolicy of cassandra/networkpolicy.yaml.

// peerPods are the pods whose reach the NetworkPolicy decides, by their
// labels: the nodes, the setup Job's pods and the function's.
type peerPods struct {
	nodes, job, function labels.Set
}

func podsOf(b *bundle) peerPods {
	fn := maps.Clone(b.service.Spec.Template.Labels)
	if fn == nil {
		fn = map[string]string{}
	}
	// Knative labels every pod of the Service's revisions with its name.
	fn[serving.ServiceLabelKey] = b.service.Name
	return peerPods{
		nodes:    labels.Set(b.statefulSet.Spec.Template.Labels),
		job:      labels.Set(b.roleJob.Spec.Template.Labels),
		function: labels.Set(fn),
	}
}

// selects reports whether a peer of a rule admits pods of this namespace
// with the labels; a peer with a namespaceSelector or an ipBlock admits
// pods of other namespaces or addresses, which selectsOthers reports.
func selects(p networkingv1.NetworkPolicyPeer, pod labels.Set) bool {
	if p.PodSelector == nil || p.NamespaceSelector != nil || p.IPBlock != nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(p.PodSelector)
	return err == nil && sel.Matches(pod)
}

func selectsOthers(p networkingv1.NetworkPolicyPeer) bool {
	return p.NamespaceSelector != nil || p.IPBlock != nil
}

// admits reports whether an ingress rule lets the pods in: a rule without
// from admits every source.
func admits(r networkingv1.NetworkPolicyIngressRule, pod labels.Set) bool {
	return len(r.From) == 0 || slices.ContainsFunc(r.From, func(p networkingv1.NetworkPolicyPeer) bool {
		return selects(p, pod) || selectsOthers(p)
	})
}

// rulePorts are the port numbers an ingress rule opens, with named ports
// resolved against the container; all is true when it opens every port (no
// ports, or a port without a number).
func rulePorts(r networkingv1.NetworkPolicyIngressRule, c *corev1.Container) (ports []int32, all bool) {
	if len(r.Ports) == 0 {
		return nil, true
	}
	for _, p := range r.Ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return nil, true
		}
		n := p.Port.IntVal
		if p.Port.Type == intstr.String {
			n = 0
			for _, cp := range c.Ports {
				if cp.Name == p.Port.StrVal {
					n = cp.ContainerPort
				}
			}
		}
		end := n
		if p.EndPort != nil {
			end = *p.EndPort
		}
		for x := n; x <= end && x > 0; x++ {
			ports = append(ports, x)
		}
	}
	return ports, false
}

// describePorts says which ports a rule opens, for a message.
func describePorts(ports []int32, all bool) string {
	if all {
		return "every port"
	}
	return fmt.Sprintf("ports %v", ports)
}

// checkNetworkPolicy checks the NetworkPolicy of the Cassandra nodes: it
// selects the StatefulSet's pods for ingress; a rule that opens any port
// other than CQL (the internode port above all, where a peer is outside
// every role) admits only the nodes, neither the Job's pods nor the
// function's, nor other namespaces or addresses; the nodes reach each
// other's internode port; and the function and the Job reach CQL.
func checkNetworkPolicy(b *bundle) error {
	np := b.networkPolicy
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldError(fileNetworkPolicy, "NetworkPolicy", np.Name, field, format, args...))
	}
	c := cassandraContainer(b)
	if c == nil {
		return stsError(b, "spec.template.spec.containers", "no cassandra container")
	}
	port := func(name string) int32 {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
		return 0
	}
	cql, internode := port("cql"), port("intra-node")
	pods := podsOf(b)

	if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) == 0 || !sel.Matches(pods.nodes) {
		bad("spec.podSelector", "got %v, want the labels of the StatefulSet's pods %v", np.Spec.PodSelector.MatchLabels, pods.nodes)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		bad("spec.policyTypes", "got %v, want Ingress: without it the policy restricts no incoming connection", np.Spec.PolicyTypes)
	}
	nodesReachInternode, functionReachesCQL, jobReachesCQL := false, false, false
	for i, r := range np.Spec.Ingress {
		at := fmt.Sprintf("spec.ingress[%d]", i)
		ports, all := rulePorts(r, c)
		if all || slices.ContainsFunc(ports, func(p int32) bool { return p != cql }) {
			// Anything but CQL: the nodes only.
			opened := describePorts(ports, all)
			if len(r.From) == 0 {
				bad(at+".from", "empty, so every pod and address may reach %s; want only the nodes beyond CQL port %d", opened, cql)
			}
			for j, p := range r.From {
				pat := fmt.Sprintf("%s.from[%d]", at, j)
				switch {
				case selectsOthers(p):
					bad(pat, "admits other namespaces or addresses to %s; want only the nodes beyond CQL port %d", opened, cql)
				case selects(p, pods.job) || selects(p, pods.function):
					bad(pat+".podSelector", "got %v, which also selects the setup Job's or the function's pods, to %s: a client on the internode port %d is a peer outside every role; want only the nodes %v", p.PodSelector.MatchLabels, opened, internode, pods.nodes)
				case !selects(p, pods.nodes):
					bad(pat+".podSelector", "got %v, which selects no node; want the nodes %v", p.PodSelector.MatchLabels, pods.nodes)
				}
			}
		}
		if (all || slices.Contains(ports, internode)) && slices.ContainsFunc(r.From, func(p networkingv1.NetworkPolicyPeer) bool { return selects(p, pods.nodes) }) {
			nodesReachInternode = true
		}
		if all || slices.Contains(ports, cql) {
			functionReachesCQL = functionReachesCQL || admits(r, pods.function)
			jobReachesCQL = jobReachesCQL || admits(r, pods.job)
		}
	}
	if !nodesReachInternode {
		bad("spec.ingress", "no rule admits the nodes %v to the internode port %d: they could not gossip or replicate", pods.nodes, internode)
	}
	if !functionReachesCQL {
		bad("spec.ingress", "no rule admits the function's pods %v to the CQL port %d", pods.function, cql)
	}
	if !jobReachesCQL {
		bad("spec.ingress", "no rule admits the setup Job's pods %v to the CQL port %d", pods.job, cql)
	}
	return errors.Join(errs...)
}
