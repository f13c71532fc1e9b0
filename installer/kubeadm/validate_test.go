package kubeadm

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want []string // substrings, one error each; none means valid
	}{
		{"single", func(*Options) {}, nil},
		{"defaults left empty", func(o *Options) { o.ClusterName, o.DNSDomain, o.ProxyMode = "", "", "" }, nil},
		{"ipv6 endpoint", func(o *Options) { o.ControlPlaneEndpoint = "[fd00::11]:6443" }, nil},
		{"dns name endpoint", func(o *Options) { o.ControlPlaneEndpoint = "lb.example:8443" }, nil},
		{"missing version", func(o *Options) { o.KubernetesVersion = "" }, []string{"KubernetesVersion is required"}},
		{"version without v", func(o *Options) { o.KubernetesVersion = "1.37.2" }, []string{`KubernetesVersion "1.37.2" is not an exact version`}},
		{"version label", func(o *Options) { o.KubernetesVersion = "stable" }, []string{"KubernetesVersion"}},
		{"version too old", func(o *Options) { o.KubernetesVersion = "v1.30.4" }, []string{"too old for kubeadm v1beta4"}},
		{"bad cluster name", func(o *Options) { o.ClusterName = "My Cluster" }, []string{"ClusterName"}},
		{"missing endpoint", func(o *Options) { o.ControlPlaneEndpoint = "" }, []string{"ControlPlaneEndpoint is required"}},
		{"endpoint without port", func(o *Options) { o.ControlPlaneEndpoint = "10.99.60.11" }, []string{"add the port, e.g. 10.99.60.11:6443"}},
		{"ipv6 endpoint without port", func(o *Options) { o.ControlPlaneEndpoint = "fd00::11" }, []string{"add the port, e.g. [fd00::11]:6443"}},
		{"endpoint bad port", func(o *Options) { o.ControlPlaneEndpoint = "10.99.60.11:99999" }, []string{"1 to 65535"}},
		{"endpoint bad host", func(o *Options) { o.ControlPlaneEndpoint = "LB_1:6443" }, []string{"neither an IP address nor a lowercase DNS name"}},
		{"endpoint in service subnet", func(o *Options) { o.ControlPlaneEndpoint = "10.96.3.1:6443" }, []string{"ControlPlaneEndpoint host 10.96.3.1 lies inside ServiceSubnet"}},
		{"missing image repository", func(o *Options) { o.ImageRepository = "" }, []string{"ImageRepository is required"}},
		{"image repository url", func(o *Options) { o.ImageRepository = "https://registry.local/k8s" }, []string{"has a URL scheme"}},
		{"image repository trailing slash", func(o *Options) { o.ImageRepository = "registry.local/k8s/" }, []string{"is not an image repository"}},
		{"bad dns image repository", func(o *Options) { o.DNSImageRepository = "Registry Local" }, []string{"DNSImageRepository"}},
		{"missing pod subnet", func(o *Options) { o.PodSubnet = "" }, []string{"PodSubnet is required"}},
		{"missing service subnet", func(o *Options) { o.ServiceSubnet = "" }, []string{"ServiceSubnet is required"}},
		{"bad cidr", func(o *Options) { o.PodSubnet = "10.244.0.0/33" }, []string{`PodSubnet "10.244.0.0/33" is not a CIDR`}},
		{"host bits", func(o *Options) { o.PodSubnet = "10.244.1.0/16" }, []string{"has host bits set: use 10.244.0.0/16"}},
		{"space in dual-stack", func(o *Options) { o.PodSubnet = "10.244.0.0/16, fd00:10:244::/56" }, []string{"no spaces around the comma"}},
		{"two ipv4", func(o *Options) { o.PodSubnet = "10.244.0.0/16,10.245.0.0/16" }, []string{"one IPv4 and one IPv6"}},
		{"three cidrs", func(o *Options) { o.ServiceSubnet = "10.96.0.0/16,fd00::/112,10.97.0.0/16" }, []string{"give one CIDR, or two"}},
		{"pod subnet too small", func(o *Options) { o.PodSubnet = "10.244.0.0/25" }, []string{"smaller than one node's /24"}},
		{"pod subnet too large", func(o *Options) { o.PodSubnet = "128.0.0.0/7" }, []string{"more than 65536 node ranges"}},
		{"ipv6 pod subnet too small", func(o *Options) { o.PodSubnet = "10.244.0.0/16,fd00:10:244::/96" }, []string{"smaller than one node's /64"}},
		{"service subnet too large", func(o *Options) { o.ServiceSubnet = "172.0.0.0/8" }, []string{"too large"}},
		{"service subnet too small", func(o *Options) { o.ServiceSubnet = "10.96.0.0/29" }, []string{"too small (the cluster DNS"}},
		{"ipv6 service subnet too large", func(o *Options) { o.ServiceSubnet = "10.96.0.0/16,fd00:10:96::/64" }, []string{"use a /108 or smaller"}},
		{"overlap", func(o *Options) { o.ServiceSubnet = "10.244.0.0/20" }, []string{"PodSubnet 10.244.0.0/16 overlaps ServiceSubnet 10.244.0.0/20"}},
		{"control plane in pod subnet", func(o *Options) { o.ControlPlaneAddresses = []string{"10.244.0.7"} }, []string{"ControlPlaneAddresses 10.244.0.7 lies inside PodSubnet"}},
		{"control plane not an ip", func(o *Options) { o.ControlPlaneAddresses = []string{"cp-1"} }, []string{`ControlPlaneAddresses "cp-1" is not an IP address`}},
		{"bad dns domain", func(o *Options) { o.DNSDomain = "Cluster_Local" }, []string{"DNSDomain"}},
		{"bad san", func(o *Options) { o.CertSANs = []string{"ok.example", "not ok"} }, []string{`CertSANs "not ok"`}},
		{"wildcard san", func(o *Options) { o.CertSANs = []string{"*.example.com", "fd00::1"} }, nil},
		{"unknown proxy mode", func(o *Options) { o.ProxyMode = "userspace" }, []string{`ProxyMode "userspace" is unknown`}},
		{"negative timeout", func(o *Options) { o.Timeouts.Discovery = -time.Second }, []string{"Timeouts.Discovery is negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := single()
			tc.edit(&o)
			checkErrs(t, Validate(o), tc.want)
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	err := Validate(Options{ControlPlaneEndpoint: "lb", ProxyMode: "x"})
	for _, want := range []string{"KubernetesVersion", "ControlPlaneEndpoint", "ImageRepository", "PodSubnet", "ServiceSubnet", "ProxyMode"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	if again := Validate(Options{ControlPlaneEndpoint: "lb", ProxyMode: "x"}); again.Error() != err.Error() {
		t.Errorf("error text is not stable:\n%v\n---\n%v", err, again)
	}
}

func TestValidateNode(t *testing.T) {
	for _, tc := range []struct {
		name         string
		node         Node
		controlPlane bool
		want         []string
	}{
		{"control plane", cp1(), true, nil},
		{"worker without address", Node{Name: "w-1"}, false, nil},
		{"missing name", Node{AdvertiseAddress: "10.99.60.21"}, false, []string{"Node.Name is required"}},
		{"uppercase name", Node{Name: "Worker1"}, false, []string{`Node.Name "Worker1"`}},
		{"control plane without address", Node{Name: "cp-1"}, true, []string{"Node.AdvertiseAddress is required on control plane cp-1"}},
		{"bad address", Node{Name: "w-1", AdvertiseAddress: "10.99.60"}, false, []string{"is not an IP address"}},
		{"address in pod subnet", Node{Name: "w-1", AdvertiseAddress: "10.244.1.1"}, false, []string{"Node.AdvertiseAddress 10.244.1.1 lies inside PodSubnet 10.244.0.0/16"}},
		{"bad port", Node{Name: "cp-1", AdvertiseAddress: "10.99.60.11", BindPort: 70000}, true, []string{"Node.BindPort 70000"}},
		{"bad cri socket", Node{Name: "w-1", CRISocket: "/run/containerd/containerd.sock"}, false, []string{"not a unix socket URL"}},
		{"bad label key", Node{Name: "w-1", Labels: map[string]string{"bad key": "x"}}, false, []string{`Node.Labels key "bad key"`}},
		{"bad label value", Node{Name: "w-1", Labels: map[string]string{"a": "x,y"}}, false, []string{`Node.Labels a value "x,y"`}},
		{"kubelet-forbidden label", Node{Name: "w-1", Labels: map[string]string{"node-role.kubernetes.io/worker": ""}}, false, []string{"label the node through the API instead"}},
		{"kubelet-allowed label", Node{Name: "w-1", Labels: map[string]string{"node.kubernetes.io/pool": "a", "topology.kubernetes.io/zone": "z1"}}, false, nil},
		{"bad taint effect", Node{Name: "w-1", Taints: []Taint{{Key: "a", Effect: "NoRun"}}}, false, []string{`effect "NoRun" is unknown`}},
		{"bad taint key", Node{Name: "w-1", Taints: []Taint{{Key: "a b", Effect: "NoSchedule"}}}, false, []string{`Node.Taints key "a b"`}},
		{"duplicate taint", Node{Name: "w-1", Taints: []Taint{{Key: "a", Effect: "NoSchedule"}, {Key: "a", Value: "v", Effect: "NoSchedule"}}}, false, []string{"has a:NoSchedule twice"}},
		{"empty preflight name", Node{Name: "w-1", IgnorePreflightErrors: []string{""}}, false, []string{"one check name per entry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrs(t, ValidateNode(single(), tc.node, tc.controlPlane), tc.want)
		})
	}
}

func TestValidateJoin(t *testing.T) {
	for _, tc := range []struct {
		name string
		join Join
		want []string
	}{
		{"worker", Join{Token: testToken, CACertHashes: []string{testHash}}, nil},
		{"control plane", Join{Token: testToken, CACertHashes: []string{testHash}, CertificateKey: testCertKey, ControlPlane: true}, nil},
		{"bad token", Join{Token: "abcdef0123456789abcdef", CACertHashes: []string{testHash}}, []string{"Join.Token is not a bootstrap token"}},
		{"no hashes", Join{Token: testToken}, []string{"Join.CACertHashes is empty"}},
		{"bad hash", Join{Token: testToken, CACertHashes: []string{"md5:00"}}, []string{`Join.CACertHashes "md5:00"`}},
		{"control plane without key", Join{Token: testToken, CACertHashes: []string{testHash}, ControlPlane: true}, []string{"Join.CertificateKey is required"}},
		{"control plane short key", Join{Token: testToken, CACertHashes: []string{testHash}, CertificateKey: "abcd", ControlPlane: true}, []string{"Join.CertificateKey is not 64 hex digits"}},
		{"worker with key", Join{Token: testToken, CACertHashes: []string{testHash}, CertificateKey: testCertKey}, []string{"only for control-plane joins"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrs(t, ValidateJoin(tc.join), tc.want) })
	}
}

// checkErrs wants err to hold exactly len(want) errors, the i-th containing want[i] (in any order).
func checkErrs(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	var errs []error
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		errs = u.Unwrap()
	} else {
		errs = []error{err}
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for _, w := range want {
		found := false
		for _, e := range errs {
			found = found || strings.Contains(e.Error(), w)
		}
		if !found {
			t.Errorf("no error contains %q:\n%v", w, err)
		}
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("validation errors should be leaves joined once, got a wrapped error: %v", err)
	}
}
