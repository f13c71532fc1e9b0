package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/containerd"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/kube"
	"github.com/wutong-paas/wutong-offline/installer/payload"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// Reset takes nodes back to before the install: kubeadm reset, then the installer's services, binaries,
// configuration, data and markers are removed, and its /etc/hosts block, sysctl and module files too. What node
// preparation turned off (swap, SELinux enforcing, firewalld) stays off: that is said, not undone.
type Reset struct {
	Cluster *cluster.Cluster
	// KeepPayload keeps /opt/wutong (the bundle's payload and the agent), so a reinstall uploads nothing.
	KeepPayload bool
	// Only, when set, limits the reset to these hosts.
	Only []string
	// Workdir: the kubeconfig, join token and certificate key kept there are removed when every host is reset.
	Workdir string
}

// cleanup is what Reset removes, in order, each an idempotent command.
func (r *Reset) cleanup() []struct{ desc, line string } {
	units := strings.Join([]string{kubeletUnit, containerd.Unit, registryUnit}, " ")
	dirs := []string{"/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/etc/cni", "/opt/cni", "/var/lib/cni", "/run/flannel",
		"/etc/containerd", "/var/lib/containerd", "/run/containerd", "/etc/wutong", "/var/lib/wutong"}
	if !r.KeepPayload {
		dirs = append(dirs, payload.NodeRoot)
	}
	var bins []string
	for _, list := range [][]binary{kubeBinaries, runtimeBinaries, staticTools} {
		for _, b := range list {
			bins = append(bins, b.Dir+"/"+b.Name)
		}
	}
	return []struct{ desc, line string }{
		{"reset Kubernetes on the node (kubeadm reset)",
			"if command -v kubeadm >/dev/null; then kubeadm reset -f --cri-socket " + criSocket + "; fi"},
		{"stop and disable kubelet, containerd and the registry",
			"systemctl disable --now " + units + " 2>/dev/null; pkill -x containerd-shim; true"},
		{"unmount what kubelet and containerd left mounted",
			"for m in $(awk '$2 ~ \"^/(var/lib/kubelet|run/containerd|var/lib/containerd)/\" {print $2}' /proc/mounts | sort -r); do umount -l \"$m\"; done; true"},
		{"delete the pod network's interfaces", "ip link delete cni0 2>/dev/null; ip link delete flannel.1 2>/dev/null; true"},
		{"remove the rules kube-proxy and flannel wrote",
			"for t in iptables ip6tables; do command -v $t-save >/dev/null && $t-save | grep -v -e KUBE- -e FLANNEL -e CNI- | $t-restore; done; true"},
		{"remove the installed units, binaries, configuration and data",
			"rm -rf " + strings.Join(dirs, " ") + " " + strings.Join(bins, " ") + " /etc/systemd/system/" + kubeletUnit + " " +
				"/etc/systemd/system/kubelet.service.d /etc/systemd/system/" + containerd.Unit + " /etc/systemd/system/" + registryUnit +
				" " + crictlConfigPath + " /etc/sysctl.d/99-wutong.conf /etc/modules-load.d/wutong.conf && systemctl daemon-reload"},
		{"remove the installer's block from /etc/hosts",
			"sed -i '/^# BEGIN wutong-offline/,/^# END wutong-offline/d' /etc/hosts"},
	}
}

// Phases is the reset pipeline.
func (r *Reset) Phases() []engine.Phase {
	match := func(h cluster.Host) bool { return len(r.Only) == 0 || slices.Contains(r.Only, h.Name) }
	return []engine.Phase{
		engine.OnHosts("connect", match, func(ctx context.Context, n *engine.Node) error {
			_, err := n.Query(ctx, remote.Cmd{Line: "true"})
			return err
		}),
		engine.OnHosts("reset", match, r.resetNode),
		resetWorkdir{r},
	}
}

func (r *Reset) resetNode(ctx context.Context, n *engine.Node) error {
	for _, c := range r.cleanup() {
		if _, err := n.Exec(ctx, c.desc, remote.Cmd{Line: c.line, Sudo: true, Timeout: 10 * time.Minute}); err != nil {
			return err
		}
	}
	n.Logf("swap, SELinux and firewalld stay as node preparation left them")
	return nil
}

// resetWorkdir forgets the cluster's credentials once every host was reset.
type resetWorkdir struct{ r *Reset }

func (resetWorkdir) Title() string { return "forget the cluster" }

func (p resetWorkdir) Run(ctx context.Context, env *engine.Env) error {
	if p.r.Workdir == "" || len(p.r.Only) > 0 || len(env.Nodes()) < len(p.r.Cluster.Spec.Hosts) {
		return nil
	}
	var errs []error
	for _, rel := range []string{KubeconfigFile, "kubeadm"} {
		if err := os.RemoveAll(filepath.Join(p.r.Workdir, rel)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p resetWorkdir) DryRun(context.Context, *engine.Env) error { return nil }

// RemoveNode drains a node through the API server, then resets it and deletes its node object. The first control
// plane, through which the installer reaches the cluster, cannot be removed this way.
type RemoveNode struct {
	Cluster *cluster.Cluster
	Name    string
	Client  *kube.Client
	// DrainTimeout bounds the drain. Default 5 minutes.
	DrainTimeout time.Duration
	KeepPayload  bool
}

// Check refuses a node that is not in cluster.yaml or is the first control plane.
func (rm *RemoveNode) Check() error {
	cps := rm.Cluster.ControlPlanes()
	found := false
	for _, h := range rm.Cluster.Spec.Hosts {
		found = found || h.Name == rm.Name
	}
	switch {
	case !found:
		return fmt.Errorf("remove node %s: no such host in cluster.yaml", rm.Name)
	case len(cps) > 0 && cps[0].Name == rm.Name:
		return fmt.Errorf("remove node %s: it is the first control plane, through which the installer reaches the cluster; use wtctl cluster reset to remove the whole cluster", rm.Name)
	}
	return nil
}

// Phases is the remove-node pipeline.
func (rm *RemoveNode) Phases() []engine.Phase {
	reset := &Reset{Cluster: rm.Cluster, Only: []string{rm.Name}, KeepPayload: rm.KeepPayload}
	match := func(h cluster.Host) bool { return h.Name == rm.Name }
	return []engine.Phase{
		engine.OnHosts("connect", match, func(ctx context.Context, n *engine.Node) error {
			_, err := n.Query(ctx, remote.Cmd{Line: "true"})
			return err
		}),
		engine.OnHosts("drain", match, func(ctx context.Context, n *engine.Node) error {
			if n.DryRun() {
				n.Logf("dry run: would cordon and drain %s", rm.Name)
				return nil
			}
			t := rm.DrainTimeout
			if t == 0 {
				t = 5 * time.Minute
			}
			return rm.Client.Drain(ctx, rm.Name, t)
		}),
		engine.OnHosts("reset", match, reset.resetNode),
		engine.OnHosts("delete node", match, func(ctx context.Context, n *engine.Node) error {
			if n.DryRun() {
				n.Logf("dry run: would delete the node object %s", rm.Name)
				return nil
			}
			return rm.Client.DeleteNode(ctx, rm.Name)
		}),
	}
}
