package kubeadm

import (
	"time"

	"github.com/wutong-paas/wutong-offline/internal/i18n"
)

// Defaults applied by the generator when the corresponding field is empty.
const (
	DefaultClusterName = "wutong"
	DefaultDNSDomain   = "cluster.local"
	DefaultBindPort    = 6443
	DefaultCRISocket   = "unix:///run/containerd/containerd.sock"
	DefaultProxyMode   = ProxyIPTables
	// EtcdDataDir is where the stacked etcd member keeps its data on every control plane.
	EtcdDataDir = "/var/lib/etcd"
	// ControlPlaneTaintKey is the taint kubeadm puts on control planes by default (effect NoSchedule).
	ControlPlaneTaintKey = "node-role.kubernetes.io/control-plane"
	// NodeBootstrapTokenAuthGroup is the extra group kubeadm gives the bootstrap tokens nodes join with.
	NodeBootstrapTokenAuthGroup = "system:bootstrappers:kubeadm:default-node-token"
)

// The kube-proxy modes Options.ProxyMode accepts.
const (
	ProxyIPTables = "iptables"
	ProxyIPVS     = "ipvs"
	ProxyNFTables = "nftables"
)

// Options is everything the generator needs that is the same for every node of a cluster. The zero value of an
// optional field means its default, applied inside the generator (see each field).
type Options struct {
	// KubernetesVersion is the exact version to install, "v1.37.2" (required; no "stable" labels offline).
	KubernetesVersion string
	// ClusterName is ClusterConfiguration.clusterName, the name kubeconfigs call the cluster. Default "wutong".
	ClusterName string
	// ControlPlaneEndpoint is the host:port every node reaches the API servers at: the only control plane's address,
	// or a load balancer or VIP for HA, e.g. "10.99.60.11:6443" or "lb.example:6443" (required, port included).
	ControlPlaneEndpoint string
	// ImageRepository is where kubeadm pulls the control-plane images from: the local registry path that mirrors
	// registry.k8s.io, e.g. "registry.wutong.local:5000/registry.k8s.io" (required).
	ImageRepository string
	// DNSImageRepository is where CoreDNS is pulled from. Default ImageRepository+"/coredns": kubeadm adds that
	// path component only for the literal upstream registry.k8s.io, so a mirror needs it spelled out.
	DNSImageRepository string
	// PodSubnet is the pod network, one CIDR or a dual-stack pair "10.244.0.0/16,fd00:10:244::/56" (required). It
	// also becomes KubeProxyConfiguration.clusterCIDR.
	PodSubnet string
	// ServiceSubnet is the service network, one CIDR or a dual-stack pair (required). Its first CIDR's 10th address
	// is the cluster DNS address, as kubeadm computes it.
	ServiceSubnet string
	// DNSDomain is the cluster's DNS domain. Default "cluster.local".
	DNSDomain string
	// CertSANs are extra API server certificate names (IPs or DNS names). The ControlPlaneEndpoint host and every
	// ControlPlaneAddresses entry are added; the list is deduplicated and sorted.
	CertSANs []string
	// ControlPlaneAddresses are the internal addresses of all control planes, added to the API server SANs.
	ControlPlaneAddresses []string
	// CgroupV1 says some node still runs cgroup v1: KubeletConfiguration.failCgroupV1 is then false (the kubelet
	// refuses cgroup v1 by default) and Warnings reports it. Default false (failCgroupV1 left to its default, true).
	CgroupV1 bool
	// ProxyMode is kube-proxy's mode: "iptables" (default), "ipvs" (deprecated upstream; Warnings says so) or
	// "nftables".
	ProxyMode string
	// Timeouts are kubeadm's v1beta4 timeouts; a zero field keeps kubeadm's default.
	Timeouts Timeouts
}

// Timeouts are the v1beta4 "timeouts" of InitConfiguration and JoinConfiguration (they are per-invocation settings,
// not part of ClusterConfiguration). A zero field keeps kubeadm's default (in brackets); the lab sets long ones for
// slow emulated (TCG) VMs.
type Timeouts struct {
	ControlPlaneComponentHealthCheck time.Duration // static pods healthy after init/join (4m)
	KubeletHealthCheck               time.Duration // kubelet healthz after it was started (4m)
	KubernetesAPICall                time.Duration // any single API call (1m)
	Discovery                        time.Duration // join: cluster-info fetched and verified (5m)
	TLSBootstrap                     time.Duration // join: kubelet's TLS bootstrap done (5m)
	EtcdAPICall                      time.Duration // any single etcd call (2m)
}

// Node is one node's part of the configuration.
type Node struct {
	// Name is the node name, the host's name in cluster.yaml (required, a lowercase DNS-1123 subdomain).
	Name string
	// AdvertiseAddress is the node's internal address. On control planes it is the API server's advertise address
	// (required there); on every node it is passed to the kubelet as node-ip so that a host with several
	// interfaces registers the internal one.
	AdvertiseAddress string
	// BindPort is the API server's port on control planes. Default 6443.
	BindPort int
	// CRISocket is the container runtime's endpoint. Default "unix:///run/containerd/containerd.sock".
	CRISocket string
	// Labels are node labels, passed as the kubelet's node-labels. Keys in the kubernetes.io and k8s.io namespaces
	// are limited to what the kubelet may set itself (node-role.kubernetes.io/* is not: label those via the API).
	Labels map[string]string
	// Taints are the taints the node registers with. Nil means kubeadm's default: the control-plane NoSchedule
	// taint on control planes and none on workers; an empty non-nil slice means no taints at all.
	Taints []Taint
	// IgnorePreflightErrors are kubeadm preflight checks to ignore (e.g. "NumCPU"); deduplicated and sorted.
	IgnorePreflightErrors []string
}

// Taint is a node taint; Effect is NoSchedule, PreferNoSchedule or NoExecute, Value may be empty.
type Taint struct{ Key, Value, Effect string }

// Join is what a joining node needs beyond Options and Node.
type Join struct {
	// Token is the bootstrap token, "abcdef.0123456789abcdef" (see NewToken and TokenSecret).
	Token string
	// CACertHashes pin the cluster CA, "sha256:<hex>" each (see CACertHash); at least one.
	CACertHashes []string
	// CertificateKey is, for control-plane joins only, the key the control-plane certificates were uploaded with.
	CertificateKey string
	// ControlPlane makes the node join as a control plane (stacked etcd member and API server).
	ControlPlane bool
}

// Warning is a problem worth telling the user that does not stop the install, in English and Chinese.
type Warning struct{ EN, ZH string }

// In is the warning in lang.
func (w Warning) In(lang i18n.Lang) string {
	if lang == i18n.ZH && w.ZH != "" {
		return w.ZH
	}
	return w.EN
}

// Warnings are the caveats of o: a cgroup v1 node, the deprecated ipvs proxy mode.
func (o Options) Warnings() []Warning {
	var ws []Warning
	if o.CgroupV1 {
		ws = append(ws, Warning{
			EN: "some node uses cgroup v1: the kubelet is configured with failCgroupV1: false so that it starts there, " +
				"but Kubernetes has deprecated cgroup v1 and will drop it; move those nodes to cgroup v2 " +
				"(a current distribution, or systemd.unified_cgroup_hierarchy=1 on the kernel command line)",
			ZH: "有节点使用 cgroup v1：已为 kubelet 设置 failCgroupV1: false 使其能够启动，" +
				"但 Kubernetes 已弃用 cgroup v1 并将移除支持；请将这些节点迁移到 cgroup v2" +
				"（使用较新的发行版，或在内核命令行加上 systemd.unified_cgroup_hierarchy=1）",
		})
	}
	if o.ProxyMode == ProxyIPVS {
		ws = append(ws, Warning{
			EN: "kube-proxy mode ipvs is deprecated upstream (off by default from Kubernetes 1.40, removed in 1.43); " +
				"prefer nftables or iptables",
			ZH: "kube-proxy 的 ipvs 模式已被上游弃用（Kubernetes 1.40 起默认禁用，1.43 移除）；建议改用 nftables 或 iptables",
		})
	}
	return ws
}

// withDefaults is o with every empty optional field set to its default.
func (o Options) withDefaults() Options {
	if o.ClusterName == "" {
		o.ClusterName = DefaultClusterName
	}
	if o.DNSImageRepository == "" && o.ImageRepository != "" {
		o.DNSImageRepository = o.ImageRepository + "/coredns"
	}
	if o.DNSDomain == "" {
		o.DNSDomain = DefaultDNSDomain
	}
	if o.ProxyMode == "" {
		o.ProxyMode = DefaultProxyMode
	}
	return o
}

// withDefaults is n with every empty optional field set to its default (Taints are resolved by the generator,
// which knows whether the node is a control plane).
func (n Node) withDefaults() Node {
	if n.BindPort == 0 {
		n.BindPort = DefaultBindPort
	}
	if n.CRISocket == "" {
		n.CRISocket = DefaultCRISocket
	}
	return n
}
