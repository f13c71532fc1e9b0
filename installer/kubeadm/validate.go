package kubeadm

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	kubeletapis "k8s.io/kubelet/pkg/apis"
)

// minMinor is the oldest Kubernetes minor release whose kubeadm reads v1beta4.
const minMinor = 31

var versionRe = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$`)

// Validate checks o (before defaults) and returns every problem at once, joined; each names the field and the fix.
func Validate(o Options) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch m := versionRe.FindStringSubmatch(o.KubernetesVersion); {
	case o.KubernetesVersion == "":
		add("KubernetesVersion is required: set the bundle's exact version, e.g. v1.37.2")
	case m == nil:
		add("KubernetesVersion %q is not an exact version: write it like v1.37.2", o.KubernetesVersion)
	default:
		if major, minor := atoi(m[1]), atoi(m[2]); major < 1 || (major == 1 && minor < minMinor) {
			add("KubernetesVersion %s is too old for kubeadm v1beta4 configuration: use v1.%d or later", o.KubernetesVersion, minMinor)
		}
	}
	if o.ClusterName != "" {
		for _, msg := range validation.IsDNS1123Subdomain(o.ClusterName) {
			add("ClusterName %q: %s; use lowercase letters, digits, '-' and '.', e.g. %s", o.ClusterName, msg, DefaultClusterName)
		}
	}

	epHost := ""
	if o.ControlPlaneEndpoint == "" {
		add("ControlPlaneEndpoint is required: set host:port of the API server or its load balancer, e.g. 10.99.60.11:6443")
	} else if host, port, err := net.SplitHostPort(o.ControlPlaneEndpoint); err != nil {
		add("ControlPlaneEndpoint %q is not host:port (%v): add the port, e.g. %s",
			o.ControlPlaneEndpoint, err, net.JoinHostPort(strings.Trim(o.ControlPlaneEndpoint, "[]"), "6443"))
	} else {
		epHost = host
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			add("ControlPlaneEndpoint %q: port %q is not a number from 1 to 65535", o.ControlPlaneEndpoint, port)
		}
		if !isIP(host) && len(validation.IsDNS1123Subdomain(host)) > 0 {
			add("ControlPlaneEndpoint %q: host %q is neither an IP address nor a lowercase DNS name", o.ControlPlaneEndpoint, host)
		}
	}

	errs = append(errs, validateRepository("ImageRepository", o.ImageRepository, true)...)
	errs = append(errs, validateRepository("DNSImageRepository", o.DNSImageRepository, false)...)

	pods, perrs := parseSubnets("PodSubnet", o.PodSubnet, "10.244.0.0/16")
	errs = append(errs, perrs...)
	for _, p := range pods {
		// kube-controller-manager gives each node a /24 (IPv4) or /64 (IPv6) and can track at most 2^16 of them.
		node := 24
		if p.Addr().Is6() {
			node = 64
		}
		if p.Bits() > node {
			add("PodSubnet %s is smaller than one node's /%d pod range: use a /%d or larger", p, node, node)
		} else if node-p.Bits() > 16 {
			add("PodSubnet %s holds more than 65536 node ranges of /%d: use a /%d or smaller", p, node, node-16)
		}
	}
	svcs, serrs := parseSubnets("ServiceSubnet", o.ServiceSubnet, "10.96.0.0/12")
	errs = append(errs, serrs...)
	for _, s := range svcs {
		host := s.Addr().BitLen() - s.Bits()
		if host > 20 {
			add("ServiceSubnet %s is too large (the API server allows at most 2^20 service addresses): use a /%d or smaller",
				s, s.Addr().BitLen()-20)
		} else if host < 4 {
			add("ServiceSubnet %s is too small (the cluster DNS takes its 10th address): use a /%d or larger",
				s, s.Addr().BitLen()-4)
		}
	}
	for _, p := range pods {
		for _, s := range svcs {
			if p.Overlaps(s) {
				add("PodSubnet %s overlaps ServiceSubnet %s: choose ranges that do not overlap", p, s)
			}
		}
	}
	subnets := map[string][]netip.Prefix{"PodSubnet": pods, "ServiceSubnet": svcs}
	if isIP(epHost) {
		errs = append(errs, addressOutside("ControlPlaneEndpoint host", epHost, subnets)...)
	}

	if o.DNSDomain != "" {
		for _, msg := range validation.IsDNS1123Subdomain(o.DNSDomain) {
			add("DNSDomain %q: %s; e.g. %s", o.DNSDomain, msg, DefaultDNSDomain)
		}
	}
	for _, san := range o.CertSANs {
		if !isIP(san) && len(validation.IsDNS1123Subdomain(san)) > 0 && len(validation.IsWildcardDNS1123Subdomain(san)) > 0 {
			add("CertSANs %q is neither an IP address nor a lowercase DNS name (wildcards like *.example.com allowed)", san)
		}
	}
	for _, a := range o.ControlPlaneAddresses {
		if !isIP(a) {
			add("ControlPlaneAddresses %q is not an IP address: list the control planes' internal addresses", a)
			continue
		}
		errs = append(errs, addressOutside("ControlPlaneAddresses", a, subnets)...)
	}
	switch o.ProxyMode {
	case "", ProxyIPTables, ProxyIPVS, ProxyNFTables:
	default:
		add("ProxyMode %q is unknown: use %s (default), %s or %s", o.ProxyMode, ProxyIPTables, ProxyIPVS, ProxyNFTables)
	}
	for name, d := range map[string]int64{
		"ControlPlaneComponentHealthCheck": int64(o.Timeouts.ControlPlaneComponentHealthCheck),
		"KubeletHealthCheck":               int64(o.Timeouts.KubeletHealthCheck),
		"KubernetesAPICall":                int64(o.Timeouts.KubernetesAPICall),
		"Discovery":                        int64(o.Timeouts.Discovery),
		"TLSBootstrap":                     int64(o.Timeouts.TLSBootstrap),
		"EtcdAPICall":                      int64(o.Timeouts.EtcdAPICall),
	} {
		if d < 0 {
			add("Timeouts.%s is negative: use a positive duration, or zero for kubeadm's default", name)
		}
	}
	return joinSorted(errs)
}

// ValidateNode checks n (before defaults) as a control plane or a worker of the cluster o, every problem at once.
func ValidateNode(o Options, n Node, controlPlane bool) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if n.Name == "" {
		add("Node.Name is required: use the host's name from cluster.yaml")
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(n.Name) {
			add("Node.Name %q: %s; a node name must be a lowercase DNS name", n.Name, msg)
		}
	}
	switch {
	case n.AdvertiseAddress == "" && controlPlane:
		add("Node.AdvertiseAddress is required on control plane %s: set its internal IP address", n.Name)
	case n.AdvertiseAddress != "" && !isIP(n.AdvertiseAddress):
		add("Node.AdvertiseAddress %q of %s is not an IP address: set the node's internal IP address", n.AdvertiseAddress, n.Name)
	case n.AdvertiseAddress != "":
		pods, _ := parseSubnets("", o.PodSubnet, "")
		svcs, _ := parseSubnets("", o.ServiceSubnet, "")
		errs = append(errs, addressOutside("Node.AdvertiseAddress", n.AdvertiseAddress,
			map[string][]netip.Prefix{"PodSubnet": pods, "ServiceSubnet": svcs})...)
	}
	if n.BindPort < 0 || n.BindPort > 65535 {
		add("Node.BindPort %d is not a port: use 1 to 65535, or 0 for %d", n.BindPort, DefaultBindPort)
	}
	if n.CRISocket != "" && (!strings.HasPrefix(n.CRISocket, "unix:///") || strings.ContainsAny(n.CRISocket, " \t")) {
		add("Node.CRISocket %q is not a unix socket URL: write it like %s", n.CRISocket, DefaultCRISocket)
	}
	for k, v := range n.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			add("Node.Labels key %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			add("Node.Labels %s value %q: %s", k, v, msg)
		}
		if isKubernetesLabel(k) && !kubeletapis.IsKubeletLabel(k) {
			add("Node.Labels %q: the kubelet refuses to set labels in the kubernetes.io and k8s.io namespaces other "+
				"than %s and prefixes %s; drop it here and label the node through the API instead",
				k, strings.Join(kubeletapis.KubeletLabels(), ", "), strings.Join(kubeletapis.KubeletLabelNamespaces(), ", "))
		}
	}
	seen := map[string]bool{}
	for _, t := range n.Taints {
		for _, msg := range validation.IsQualifiedName(t.Key) {
			add("Node.Taints key %q: %s", t.Key, msg)
		}
		if t.Value != "" {
			for _, msg := range validation.IsValidLabelValue(t.Value) {
				add("Node.Taints %s value %q: %s", t.Key, t.Value, msg)
			}
		}
		switch corev1.TaintEffect(t.Effect) {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			add("Node.Taints %s effect %q is unknown: use NoSchedule, PreferNoSchedule or NoExecute", t.Key, t.Effect)
		}
		if id := t.Key + ":" + t.Effect; seen[id] {
			add("Node.Taints has %s twice: keep one taint per key and effect", id)
		} else {
			seen[id] = true
		}
	}
	for _, p := range n.IgnorePreflightErrors {
		if strings.TrimSpace(p) == "" || strings.ContainsAny(p, ", ") {
			add("Node.IgnorePreflightErrors %q: give one check name per entry, e.g. NumCPU", p)
		}
	}
	return joinSorted(errs)
}

var hashRe = regexp.MustCompile(`^sha256:[0-9a-fA-F]{64}$`)

// ValidateJoin checks j, every problem at once.
func ValidateJoin(j Join) error {
	var errs []error
	if !bootstraputil.IsValidBootstrapToken(j.Token) {
		errs = append(errs, errors.New(`Join.Token is not a bootstrap token ("abcdef.0123456789abcdef": 6 and 16 `+
			`lowercase letters or digits): create one with NewToken`))
	}
	if len(j.CACertHashes) == 0 {
		errs = append(errs, errors.New("Join.CACertHashes is empty: pin the cluster CA with CACertHash(ca.crt)"))
	}
	for _, h := range j.CACertHashes {
		if !hashRe.MatchString(h) {
			errs = append(errs, fmt.Errorf("Join.CACertHashes %q is not sha256:<64 hex digits>: compute it with CACertHash", h))
		}
	}
	switch {
	case j.ControlPlane && j.CertificateKey == "":
		errs = append(errs, errors.New("Join.CertificateKey is required for a control-plane join: use the key init uploaded the certificates with"))
	case !j.ControlPlane && j.CertificateKey != "":
		errs = append(errs, errors.New("Join.CertificateKey is only for control-plane joins: leave it empty for a worker, or set Join.ControlPlane"))
	default:
		if err := validateCertificateKey(j.CertificateKey, "Join.CertificateKey"); err != nil {
			errs = append(errs, err)
		}
	}
	return joinSorted(errs)
}

// validateCertificateKey checks an optional certificate key: 32 bytes, hex-encoded, as kubeadm requires.
func validateCertificateKey(key, field string) error {
	if key == "" {
		return nil
	}
	if b, err := hex.DecodeString(key); err != nil || len(b) != certificateKeySize {
		return fmt.Errorf("%s is not %d hex digits: create one with NewCertificateKey", field, 2*certificateKeySize)
	}
	return nil
}

// validateRepository checks an image repository such as registry.wutong.local:5000/registry.k8s.io.
func validateRepository(field, repo string, required bool) []error {
	switch {
	case repo == "" && required:
		return []error{fmt.Errorf("%s is required: set the local registry path, e.g. registry.wutong.local:5000/registry.k8s.io", field)}
	case repo == "":
		return nil
	case strings.Contains(repo, "://"):
		return []error{fmt.Errorf("%s %q has a URL scheme: drop it, e.g. registry.wutong.local:5000/registry.k8s.io", field, repo)}
	case strings.HasSuffix(repo, "/") || !reference.ReferenceRegexp.MatchString(repo+"/name:tag"):
		return []error{fmt.Errorf("%s %q is not an image repository: write it like registry.wutong.local:5000/registry.k8s.io", field, repo)}
	}
	return nil
}

// parseSubnets parses one CIDR or a dual-stack pair; field "" parses quietly (for checks that need the subnets
// but do not report them).
func parseSubnets(field, s, example string) ([]netip.Prefix, []error) {
	if s == "" {
		if field == "" {
			return nil, nil
		}
		return nil, []error{fmt.Errorf("%s is required: set a CIDR such as %s, or a dual-stack pair of one IPv4 and one IPv6 CIDR", field, example)}
	}
	var out []netip.Prefix
	var errs []error
	for _, part := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(part)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %q is not a CIDR: write it like %s (no spaces around the comma)", field, part, example))
		case p != p.Masked():
			errs = append(errs, fmt.Errorf("%s %s has host bits set: use %s", field, p, p.Masked()))
		default:
			out = append(out, p)
		}
	}
	parts := strings.Count(s, ",") + 1
	if parts > 2 || (len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4()) {
		errs = append(errs, fmt.Errorf("%s %q: give one CIDR, or two for dual-stack (one IPv4 and one IPv6)", field, s))
	}
	if field == "" {
		return out, nil
	}
	return out, errs
}

// addressOutside reports addr when it lies inside one of the named subnets.
func addressOutside(field, addr string, subnets map[string][]netip.Prefix) []error {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return nil
	}
	var errs []error
	for name, ps := range subnets {
		for _, p := range ps {
			if p.Contains(a.Unmap()) {
				errs = append(errs, fmt.Errorf("%s %s lies inside %s %s: choose a %s that does not contain node addresses",
					field, addr, name, p, name))
			}
		}
	}
	return errs
}

// isKubernetesLabel is the kubelet's test for a label in the kubernetes.io or k8s.io namespaces.
func isKubernetesLabel(key string) bool {
	ns, _, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	return ns == "kubernetes.io" || strings.HasSuffix(ns, ".kubernetes.io") || ns == "k8s.io" || strings.HasSuffix(ns, ".k8s.io")
}

// isIP says s is an IP address without a zone.
func isIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

// joinSorted joins errs sorted by message (the checks range over maps), nil when there are none.
func joinSorted(errs []error) error {
	slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// joinErrs joins the results of several validators into one flat list, nil when all passed.
func joinErrs(results ...error) error {
	var errs []error
	for _, err := range results {
		if u, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, u.Unwrap()...)
		} else if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
