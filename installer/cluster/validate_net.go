package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/wutong-paas/wutong-offline/internal/yamlnode"
)

// reservedPorts are ports that Kubernetes takes on a node, so the registry cannot listen there.
var reservedPorts = map[int]string{6443: "kube-apiserver", 2379: "etcd", 2380: "etcd", 10250: "the kubelet", 10257: "kube-controller-manager", 10259: "kube-scheduler"}

var kubeVersion = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)

func (k *checker) kubernetes(c *Cluster) {
	kc := c.Spec.Kubernetes
	const p = "spec.kubernetes"
	if v := kc.Version; v != "" && !kubeVersion.MatchString(v) {
		hint := "write it as vX.Y.Z, e.g. v1.37.2"
		if kubeVersion.MatchString("v" + v) {
			hint = fmt.Sprintf("write v%s", v)
		}
		k.errorf(p+".version", "%q is not a Kubernetes version: %s", v, hint)
	}
	pod, podOK := k.cidr(p+".podCIDR", kc.PodCIDR)
	svc, svcOK := k.cidr(p+".serviceCIDR", kc.ServiceCIDR)
	if podOK && svcOK && pod.Overlaps(svc) {
		k.errorf(p+".serviceCIDR", "%s overlaps podCIDR %s; pick ranges that do not overlap", svc, pod)
	}
	for _, r := range []struct {
		field  string
		prefix netip.Prefix
		ok     bool
	}{{"podCIDR", pod, podOK}, {"serviceCIDR", svc, svcOK}} {
		if !r.ok {
			continue
		}
		var in []string
		for i, h := range c.Spec.Hosts {
			if ip, err := netip.ParseAddr(h.InternalAddress); err == nil && r.prefix.Contains(ip.Unmap()) {
				in = append(in, fmt.Sprintf("%s of spec.hosts[%d] (%s)", h.InternalAddress, i, h.Name))
			}
		}
		if len(in) > 0 {
			what := r.prefix.String()
			if k.given != nil && !k.given(p+"."+r.field) {
				what += fmt.Sprintf(" (the default, as %s is not set)", r.field)
			}
			k.errorf(p+"."+r.field, "%s contains the internalAddress %s; set a range outside the host network", what, strings.Join(in, ", "))
		}
	}
	if !validSubdomain(kc.DNSDomain) {
		k.errorf(p+".dnsDomain", "%q is not a DNS domain such as cluster.local", kc.DNSDomain)
	}
	if !slices.Contains(CNIs, kc.CNI) {
		hint := ""
		if s := closestOf(kc.CNI, CNIs); s != "" {
			hint = fmt.Sprintf("did you mean %q? ", s)
		}
		k.errorf(p+".cni", "unknown CNI %q: %suse one of %s", kc.CNI, hint, strings.Join(CNIs, ", "))
	}
	if ep := kc.ControlPlaneEndpoint; ep != "" {
		host, port, err := net.SplitHostPort(ep)
		switch {
		case err != nil || (!isIP(host) && !validHostname(host)):
			k.errorf(p+".controlPlaneEndpoint", "%q is not HOST[:PORT] (an IP address or DNS name, port default 6443)", ep)
		case !validPort(port):
			k.errorf(p+".controlPlaneEndpoint", "%q: the port is not 1-65535", ep)
		}
	}
}

// cidr parses a CIDR, reporting what is wrong with it.
func (k *checker) cidr(path, s string) (netip.Prefix, bool) {
	pr, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		k.errorf(path, "%q is not a CIDR such as 10.244.0.0/16", s)
	case pr.Masked() != pr:
		k.errorf(path, "%q has bits set after the prefix; did you mean %s?", s, pr.Masked())
	default:
		return pr, true
	}
	return pr, false
}

func (k *checker) registry(c *Cluster) {
	r := c.Spec.Registry
	const p = "spec.registry"
	if r.Port < 1 || r.Port > 65535 {
		k.errorf(p+".port", "%d is not a port: use 1-65535 (default %d)", r.Port, DefaultRegistryPort)
	} else if who, ok := reservedPorts[r.Port]; ok {
		k.errorf(p+".port", "%d is taken by %s on the nodes; use another port (default %d)", r.Port, who, DefaultRegistryPort)
	} else if c.Spec.Ingress.IsEnabled() && slices.Contains(IngressPorts, r.Port) {
		k.errorf(p+".port", "%d is taken by the ingress controller on every node (spec.ingress); use another port (default %d)", r.Port, DefaultRegistryPort)
	}
	if !validSubdomain(r.Domain) {
		k.errorf(p+".domain", "%q is not a DNS name such as %s", r.Domain, DefaultRegistryDomain)
	}
	if strings.ContainsAny(r.Username, ": \t\r\n") {
		k.errorf(p+".username", "%q is not a user name: leave out ':' and spaces", r.Username)
	}
}

func (k *checker) platform(c *Cluster) {
	pl := c.Spec.Platform
	const p = "spec.platform"
	if pl.NodePort < 30000 || pl.NodePort > 32767 {
		k.errorf(p+".nodePort", "%d is outside Kubernetes' node port range: use 30000-32767 (default %d)", pl.NodePort, DefaultPlatformNodePort)
	}
	if q, err := resource.ParseQuantity(pl.StorageSize); err != nil || q.Sign() <= 0 {
		k.errorf(p+".storageSize", "%q is not a size: use a Kubernetes quantity such as 10Gi (default %s)", pl.StorageSize, DefaultPlatformStorageSize)
	}
	if pl.InsecureHTTP && pl.IsEnabled() {
		k.warnf(p+".insecureHTTP", "the platform serves plain HTTP: passwords and session tokens cross the network in the clear; "+
			"remove insecureHTTP to serve HTTPS with a certificate from the cluster CA, unless a TLS proxy sits in front")
	}
}

var (
	dnsLabel = `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
	// labelRE and subdomainRE are Kubernetes' DNS-1123 label and subdomain; hostRE also allows upper case.
	labelRE     = regexp.MustCompile(`^` + dnsLabel + `$`)
	subdomainRE = regexp.MustCompile(`^` + dnsLabel + `(\.` + dnsLabel + `)*$`)
	labelName   = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
	allDigits   = regexp.MustCompile(`^[0-9]+$`)
)

func validLabel(s string) bool { return len(s) <= 63 && labelRE.MatchString(s) }

func validSubdomain(s string) bool {
	if len(s) > 253 || !subdomainRE.MatchString(s) {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) > 63 {
			return false
		}
	}
	return true
}

// validHostname accepts a DNS name in any case, but not one that looks like a mistyped IP address (all-digit
// top-level label, as in 10.0.0.300).
func validHostname(s string) bool {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	labels := strings.Split(s, ".")
	return validSubdomain(s) && !allDigits.MatchString(labels[len(labels)-1])
}

func isIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// checkLabel checks a Kubernetes node label, returning what is wrong or "".
func checkLabel(key, value string) string {
	if msg := checkLabelKey(key); msg != "" {
		return msg
	}
	if len(value) > 63 || !labelName.MatchString(value) {
		return fmt.Sprintf("value %q is not a label value: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", value)
	}
	return ""
}

func checkLabelKey(key string) string {
	prefix, name, ok := strings.Cut(key, "/")
	if !ok {
		prefix, name = "", key
	}
	switch {
	case ok && !validSubdomain(prefix):
		return fmt.Sprintf("key %q: the prefix before '/' must be a DNS name such as example.com", key)
	case name == "" || len(name) > 63 || !labelName.MatchString(name):
		return fmt.Sprintf("key %q: the name must be at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", key)
	}
	return ""
}

var taintEffects = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}

// checkTaint checks a taint written key[=value]:Effect, returning what is wrong or "".
func checkTaint(t string) string {
	kv, effect, ok := strings.Cut(t, ":")
	if !ok {
		return fmt.Sprintf("%q is not a taint: write key[=value]:Effect, e.g. dedicated=gpu:NoSchedule", t)
	}
	if !slices.Contains(taintEffects, effect) {
		hint := ""
		if s := closestOf(effect, taintEffects); s != "" {
			hint = fmt.Sprintf("did you mean %q? ", s)
		}
		return fmt.Sprintf("%q: unknown effect %q: %sthe effects are %s", t, effect, hint, strings.Join(taintEffects, ", "))
	}
	key, value, _ := strings.Cut(kv, "=")
	if msg := checkLabelKey(key); msg != "" {
		return fmt.Sprintf("%q: %s", t, msg)
	}
	if len(value) > 63 || !labelName.MatchString(value) {
		return fmt.Sprintf("%q: the value must be at most 63 letters, digits, '-', '_' and '.'", t)
	}
	return ""
}

// closestOf is the word of words that s was probably meant to be, or "".
func closestOf(s string, words []string) string {
	m := make(map[string]struct{}, len(words))
	for _, w := range words {
		m[w] = struct{}{}
	}
	return yamlnode.Closest(s, m)
}
