package pipeline

import (
	"context"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/kubeadm"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// Where the Kubernetes pieces go on a node.
const (
	kubeadmDir        = "/etc/wutong/kubeadm"
	initConfigPath    = kubeadmDir + "/init.yaml"
	joinConfigPath    = kubeadmDir + "/join.yaml"
	adminConf         = "/etc/kubernetes/admin.conf"
	kubeletConf       = "/etc/kubernetes/kubelet.conf"
	kubeletUnit       = "kubelet.service"
	kubeletDropInPath = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
	criSocket         = "unix:///run/containerd/containerd.sock"
)

// kubeBinaries are what the bundle carries of Kubernetes itself, and where each goes.
var kubeBinaries = []binary{{"kubeadm", "/usr/local/bin"}, {"kubelet", "/usr/local/bin"}, {"kubectl", "/usr/local/bin"}}

// kubeletUnitFile and kubeletDropIn are kubeadm's standard kubelet unit and drop-in (as the upstream packages ship
// them), with the binary in /usr/local/bin.
const kubeletUnitFile = `# Written by wtctl (wutong-offline): kubelet, started and configured by kubeadm.
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target containerd.service
After=network-online.target containerd.service

[Service]
ExecStart=/usr/local/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`

const kubeletDropIn = `# Written by wtctl (wutong-offline).
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`

// kubePorts are the ports kubelet, and on a control plane the components it runs, hold on host h.
func kubePorts(h cluster.Host) []int {
	if h.HasRole(cluster.RoleControlPlane) {
		return []int{10250, 6443, 2379, 2380, 10257, 10259}
	}
	return []int{10250}
}

// isNode matches the hosts that run kubelet: control planes and workers.
func isNode(h cluster.Host) bool {
	return h.HasRole(cluster.RoleControlPlane) || h.HasRole(cluster.RoleWorker)
}

// firstControlPlane is where kubeadm init runs and through which the installer reaches the API server.
func (in *Install) firstControlPlane() cluster.Host { return in.Cluster.ControlPlanes()[0] }

func (in *Install) isFirstControlPlane(h cluster.Host) bool {
	return h.Name == in.firstControlPlane().Name
}

// isJoiner matches the nodes that join the cluster kubeadm init made.
func (in *Install) isJoiner(h cluster.Host) bool { return isNode(h) && !in.isFirstControlPlane(h) }

// installKubelet puts kubeadm, kubelet and kubectl in place with kubelet's unit, and enables kubelet (kubeadm
// starts it once it has written its configuration).
func (in *Install) installKubelet(ctx context.Context, n *engine.Node) error {
	names, _, err := in.installBinaries(ctx, n, "kube-binaries", kubeBinaries)
	if err != nil {
		return err
	}
	for _, want := range []string{"kubeadm", "kubelet"} {
		if !slices.Contains(names, want) {
			arch := in.factsOf(n.Name()).facts.Arch
			return engine.WithHint(fmt.Errorf("the bundle carries no %s for %s", want, arch),
				"use a bundle built with Kubernetes for "+arch+" (make k8s-bundle K8S_ARCHES="+arch+")",
				"请使用包含 "+arch+" 版 Kubernetes 的安装包（make k8s-bundle K8S_ARCHES="+arch+"）")
		}
	}
	dropIn, err := n.PutFile(ctx, kubeletDropInPath, []byte(kubeletDropIn), 0o644)
	if err != nil {
		return err
	}
	unit, err := n.Unit(ctx, kubeletUnit, []byte(kubeletUnitFile))
	if err != nil {
		return err
	}
	if dropIn && !unit && !n.DryRun() {
		if _, err := n.Query(ctx, remote.Cmd{Line: "systemctl daemon-reload", Sudo: true}); err != nil {
			return fmt.Errorf("reload systemd: %w", err)
		}
	}
	if _, err := n.Query(ctx, remote.Cmd{Line: "systemctl is-enabled --quiet " + kubeletUnit}); err == nil {
		return nil
	}
	_, err = n.Exec(ctx, "enable kubelet", remote.Cmd{Line: "systemctl enable " + kubeletUnit, Sudo: true})
	return err
}

// kubeadmOptions is the cluster-wide kubeadm configuration, from cluster.yaml, the bundle and the nodes' facts.
func (in *Install) kubeadmOptions() (kubeadm.Options, error) {
	k := in.Cluster.Spec.Kubernetes
	version := k.Version
	if version == "" {
		version = in.Manifest.KubernetesVersion
	}
	endpoint := k.ControlPlaneEndpoint
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		endpoint = net.JoinHostPort(endpoint, strconv.Itoa(cluster.DefaultAPIServerPort))
	}
	repo, dnsRepo, err := in.imageRepositories()
	if err != nil {
		return kubeadm.Options{}, err
	}
	o := kubeadm.Options{
		KubernetesVersion:    version,
		ClusterName:          in.Cluster.Metadata.Name,
		ControlPlaneEndpoint: endpoint,
		ImageRepository:      repo,
		DNSImageRepository:   dnsRepo,
		PodSubnet:            k.PodCIDR,
		ServiceSubnet:        k.ServiceCIDR,
		DNSDomain:            k.DNSDomain,
		Timeouts:             in.Timeouts,
	}
	for _, h := range in.Cluster.ControlPlanes() {
		o.ControlPlaneAddresses = append(o.ControlPlaneAddresses, h.InternalAddress)
	}
	for _, h := range in.Cluster.Spec.Hosts {
		if f := in.factsOf(h.Name).facts; isNode(h) && f != nil && f.CgroupVersion == 1 {
			o.CgroupV1 = true
		}
	}
	return o, nil
}

// imageRepositories are kubeadm's imageRepository and dns.imageRepository: where the bundle's control-plane and
// CoreDNS images are in the local registry (images.LocalRef), found by their upstream names in the manifest.
func (in *Install) imageRepositories() (repo, dns string, err error) {
	reg := in.Cluster.Spec.Registry
	local := reg.Domain + ":" + strconv.Itoa(reg.Port)
	for _, img := range in.Manifest.Images {
		ref, err := name.ParseReference(img.Name)
		if err != nil {
			continue
		}
		repoPath := ref.Context().RepositoryStr()
		switch {
		case path.Base(repoPath) == "kube-apiserver":
			l, err := images.LocalRef(img.Name, local)
			if err != nil {
				return "", "", err
			}
			repo = strings.TrimSuffix(l[:strings.LastIndex(l, ":")], "/kube-apiserver")
		case path.Base(repoPath) == "coredns":
			l, err := images.LocalRef(img.Name, local)
			if err != nil {
				return "", "", err
			}
			dns = strings.TrimSuffix(l[:strings.LastIndex(l, ":")], "/coredns")
		}
	}
	if repo == "" {
		return "", "", engine.WithHint(fmt.Errorf("the bundle carries no kube-apiserver image"),
			"use a bundle built with Kubernetes (make k8s-bundle)", "请使用包含 Kubernetes 的安装包（make k8s-bundle）")
	}
	return repo, dns, nil
}

// kubeadmNode is one host's part of the kubeadm configuration.
func (in *Install) kubeadmNode(h cluster.Host) (kubeadm.Node, error) {
	n := kubeadm.Node{Name: h.Name, AdvertiseAddress: h.InternalAddress, CRISocket: criSocket, Labels: h.Labels,
		IgnorePreflightErrors: in.IgnorePreflightErrors}
	if h.HasRole(cluster.RoleControlPlane) && h.HasRole(cluster.RoleWorker) {
		n.Taints = []kubeadm.Taint{} // a control plane that also runs workloads
	}
	for _, t := range h.Taints {
		kt, err := parseTaint(t)
		if err != nil {
			return n, fmt.Errorf("host %s: %w", h.Name, err)
		}
		n.Taints = append(n.Taints, kt)
	}
	return n, nil
}

// parseTaint reads cluster.yaml's "key[=value]:Effect" (validated by the cluster package).
func parseTaint(s string) (kubeadm.Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return kubeadm.Taint{}, fmt.Errorf("taint %q: want key[=value]:Effect", s)
	}
	k, v, _ := strings.Cut(kv, "=")
	return kubeadm.Taint{Key: k, Value: v, Effect: effect}, nil
}

// kubeadmFailed adds to a failed kubeadm command the tail of the node's kubelet journal and a hint: that is where
// the reason usually is.
func kubeadmFailed(ctx context.Context, n *engine.Node, what string, err error) error {
	res, jerr := n.Query(ctx, remote.Cmd{Line: "journalctl -u kubelet -n 25 --no-pager -o cat 2>&1 | cut -c1-300", Sudo: true,
		Timeout: 30 * time.Second})
	journal := strings.TrimSpace(string(res.Stdout))
	if jerr != nil || journal == "" {
		journal = "(no kubelet journal)"
	}
	return engine.WithHint(fmt.Errorf("%s: %w\nkubelet journal, last lines:\n%s", what, err, journal),
		"fix the cause shown above, then run the install again: this node is reset (kubeadm reset) and retried; the other nodes keep their progress",
		"排除上面显示的原因后重新运行安装：仅此节点会先执行 kubeadm reset 再重试，其他节点保留进度")
}

// leftovers is a shell test that is true when an unfinished kubeadm run left state on the node.
const leftovers = "test -e /etc/kubernetes/manifests/kube-apiserver.yaml -o -e " + kubeletConf +
	" -o -e /etc/kubernetes/pki/ca.crt -o -d /var/lib/etcd/member"

// resetLeftovers runs kubeadm reset on a node where an earlier, unfinished kubeadm init or join left state, so
// that the retry starts clean. Only this node is touched.
func resetLeftovers(ctx context.Context, n *engine.Node) error {
	// A run killed mid-way may have left its kubeadm running on the node (sshd need not stop it).
	if _, err := n.Query(ctx, remote.Cmd{Line: "pgrep -x kubeadm", Sudo: true}); err == nil {
		if _, err := n.Exec(ctx, "stop the kubeadm an interrupted run left running", remote.Cmd{Sudo: true,
			Line: "pkill -x kubeadm; for i in $(seq 30); do pgrep -x kubeadm >/dev/null || exit 0; sleep 1; done; pkill -9 -x kubeadm; true"}); err != nil {
			return err
		}
	}
	if _, err := n.Query(ctx, remote.Cmd{Line: leftovers, Sudo: true}); err != nil {
		return nil // nothing left behind
	}
	_, err := n.Exec(ctx, "reset what an unfinished kubeadm run left on this node (kubeadm reset)", remote.Cmd{Sudo: true,
		Timeout: 10 * time.Minute,
		Line:    "kubeadm reset -f --cri-socket " + criSocket + " && rm -rf /etc/cni/net.d/* /var/lib/etcd"})
	return err
}

// kubePhase runs a Kubernetes phase only when the bundle carries Kubernetes (kubeadm for some arch): a bundle
// with only the registry and the runtime stops after the image preload.
type kubePhase struct {
	engine.Phase
	in *Install
}

func (p kubePhase) ShouldRun(context.Context, *engine.Env) (bool, string) {
	for _, e := range p.in.Manifest.Entries {
		if strings.HasPrefix(e.Path, "files/") && path.Base(e.Path) == "kubeadm" {
			return true, ""
		}
	}
	return false, "the bundle carries no Kubernetes (no kubeadm)"
}

func (p kubePhase) DryRun(ctx context.Context, env *engine.Env) error {
	if d, ok := p.Phase.(engine.DryRunner); ok {
		return d.DryRun(ctx, env)
	}
	return p.Phase.Run(ctx, env)
}
