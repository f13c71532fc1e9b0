package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/kube"
)

// The CNI configuration the installer writes on every node for flannel (the flannel CNI plugin delegates to the
// bridge plugin with the node's subnet from /run/flannel/subnet.env), as flannel's own manifest would.
const (
	cniConfPath    = "/etc/cni/net.d/10-flannel.conflist"
	flannelCNIConf = `{
  "name": "cbr0",
  "cniVersion": "0.3.1",
  "plugins": [
    {"type": "flannel", "delegate": {"hairpinMode": true, "isDefaultGateway": true}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`
	flannelNamespace = "kube-flannel"
)

// kubeClient is the API server client the cluster access phase made.
func (in *Install) kubeClient() (*kube.Client, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.kube == nil {
		return nil, errors.New("no API server client: the cluster access phase did not run")
	}
	return in.kube, nil
}

// bundleManifest reads manifests/NAME from the extracted bundle; ok is false when the bundle has none. It reads
// through an os.Root, so that a symlink in the bundle directory cannot lead the read outside it.
func (in *Install) bundleManifest(name string) (data []byte, ok bool, err error) {
	root, err := os.OpenRoot(in.BundleDir)
	if err == nil {
		data, err = root.ReadFile(filepath.Join("manifests", name))
		root.Close()
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read bundle manifest %s: %w", name, err)
	}
	return data, true, nil
}

// cniConfig writes flannel's CNI configuration on a node.
func (in *Install) cniConfig(ctx context.Context, n *engine.Node) error {
	if in.Cluster.Spec.Kubernetes.CNI != "flannel" {
		return nil
	}
	_, err := n.PutFile(ctx, cniConfPath, []byte(flannelCNIConf), 0o644)
	return err
}

// networkPhase deploys the pod network: flannel's configuration (net-conf.json with the cluster's pod CIDR),
// written by the installer, then the bundle's manifests/<cni>.yaml, both with server-side apply.
type networkPhase struct{ in *Install }

func (networkPhase) Title() string { return "pod network" }

func (p networkPhase) DryRun(ctx context.Context, env *engine.Env) error {
	if err := env.EachHost(ctx, p.in.narrow(isNode), p.in.cniConfig); err != nil {
		return err
	}
	env.Node(p.in.firstControlPlane().Name).Logf("dry run: would apply manifests/%s.yaml from the bundle", p.in.Cluster.Spec.Kubernetes.CNI)
	return nil
}

func (p networkPhase) Run(ctx context.Context, env *engine.Env) error {
	in := p.in
	cni := in.Cluster.Spec.Kubernetes.CNI
	data, ok, err := in.bundleManifest(cni + ".yaml")
	if err != nil {
		return err
	}
	if !ok {
		return engine.WithHint(fmt.Errorf("the bundle carries no manifests/%s.yaml for the %s pod network", cni, cni),
			"use a bundle with the "+cni+" manifest, or choose another spec.kubernetes.cni",
			"请使用包含 "+cni+" 清单的安装包，或更换 spec.kubernetes.cni")
	}
	if err := env.EachHost(ctx, in.narrow(isNode), in.cniConfig); err != nil {
		return err
	}
	c, err := in.kubeClient()
	if err != nil {
		return err
	}
	applied, err := c.Apply(ctx, "manifests/"+cni+".yaml", data)
	if err != nil {
		return err
	}
	if cni == "flannel" {
		cm, err := flannelConfig(in.Cluster.Spec.Kubernetes.PodCIDR)
		if err != nil {
			return err
		}
		a, err := c.ApplyObject(ctx, cm)
		if err != nil {
			return fmt.Errorf("apply flannel configuration: %w", err)
		}
		applied = append(applied, a)
	}
	env.Node(in.firstControlPlane().Name).Logf("pod network: applied %d object(s)", len(applied))
	return nil
}

// flannelConfig is the kube-flannel-cfg ConfigMap: flannel's network (the pod CIDR, both families when dual-stack)
// with the VXLAN backend, which works on any L3 network between the nodes.
func flannelConfig(podCIDR string) (*unstructured.Unstructured, error) {
	conf := map[string]any{"Backend": map[string]any{"Type": "vxlan"}}
	for _, c := range strings.Split(podCIDR, ",") {
		c = strings.TrimSpace(c)
		if strings.Contains(c, ":") {
			conf["IPv6Network"], conf["EnableIPv6"] = c, true
		} else if c != "" {
			conf["Network"] = c
		}
	}
	if _, ok := conf["Network"]; !ok {
		conf["EnableIPv4"] = false
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "kube-flannel-cfg", "namespace": flannelNamespace,
			"labels": map[string]any{"app": "flannel", "tier": "node"}},
		"data": map[string]any{"net-conf.json": string(b)},
	}}, nil
}

// readyPhase waits until every node of the cluster is Ready and the cluster DNS is available.
type readyPhase struct{ in *Install }

func (readyPhase) Title() string { return "nodes ready" }

func (readyPhase) DryRun(context.Context, *engine.Env) error { return nil }

func (p readyPhase) Run(ctx context.Context, env *engine.Env) error {
	in := p.in
	c, err := in.kubeClient()
	if err != nil {
		return err
	}
	var names []string
	for _, n := range env.Nodes() {
		if isNode(n.Host()) {
			names = append(names, n.Name())
		}
	}
	first := env.Node(in.firstControlPlane().Name)
	last := ""
	ctx2, cancel := context.WithTimeout(ctx, in.readyTimeout())
	defer cancel()
	err = c.WaitNodesReady(ctx2, names, func(ns []kube.NodeStatus) {
		var parts []string
		for _, s := range ns {
			parts = append(parts, fmt.Sprintf("%s=%v", s.Name, map[bool]string{true: "Ready", false: "NotReady"}[s.Ready]))
		}
		if line := strings.Join(parts, " "); line != last {
			first.Logf("nodes: %s", line)
			last = line
		}
	})
	if err != nil {
		return engine.WithHint(fmt.Errorf("wait for the nodes to be Ready: %w", err),
			"see kubectl get pods -A and journalctl -u kubelet on the nodes that are not Ready",
			"请查看 kubectl get pods -A 以及未就绪节点上的 journalctl -u kubelet")
	}
	return c.WaitDeployments(ctx2, metav1.NamespaceSystem, []string{"coredns"})
}

func (in *Install) readyTimeout() time.Duration {
	if in.ReadyTimeout > 0 {
		return in.ReadyTimeout
	}
	return 20 * time.Minute
}

// storagePhase installs the bundle's local-path storage class (manifests/local-path.yaml) as the default class.
type storagePhase struct{ in *Install }

func (storagePhase) Title() string { return "storage" }

func (storagePhase) DryRun(context.Context, *engine.Env) error { return nil }

func (p storagePhase) Run(ctx context.Context, env *engine.Env) error {
	in := p.in
	data, ok, err := in.bundleManifest("local-path.yaml")
	if err != nil || !ok {
		if !ok {
			env.Node(in.firstControlPlane().Name).Logf("the bundle carries no manifests/local-path.yaml: no storage class installed")
		}
		return err
	}
	c, err := in.kubeClient()
	if err != nil {
		return err
	}
	applied, err := c.Apply(ctx, "manifests/local-path.yaml", data)
	if err != nil {
		return err
	}
	var deploys []string
	ns := ""
	for _, a := range applied {
		if a.Kind == "Deployment" {
			deploys, ns = append(deploys, a.Name), a.Namespace
		}
	}
	slices.Sort(deploys)
	if len(deploys) == 0 {
		return nil
	}
	ctx2, cancel := context.WithTimeout(ctx, in.readyTimeout())
	defer cancel()
	return c.WaitDeployments(ctx2, ns, deploys)
}

// Summary is what an install leaves: the nodes, and how to reach the cluster.
type Summary struct {
	Nodes      []kube.NodeStatus `json:"nodes"`
	Version    string            `json:"version"`
	Kubeconfig string            `json:"kubeconfig"`
	// PlatformURL is where the platform answers, and PasswordCommand prints its admin password; empty when the
	// platform was not installed.
	PlatformURL     string `json:"platformURL,omitempty"`
	PasswordCommand string `json:"passwordCommand,omitempty"`
}

// ClusterSummary reads the nodes and the server version through the install's API server client; nil when the
// run made none (the bundle carries no Kubernetes).
func (in *Install) ClusterSummary(ctx context.Context) (*Summary, error) {
	in.mu.Lock()
	c := in.kube
	in.mu.Unlock()
	if c == nil {
		return nil, nil
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	v, err := c.ServerVersion()
	if err != nil {
		return nil, err
	}
	s := &Summary{Nodes: nodes, Version: v}
	if (platformPhase{in}).skip() == "" {
		s.PlatformURL, s.PasswordCommand = in.PlatformURL(), PlatformPasswordHint()
	}
	if in.Workdir != "" {
		s.Kubeconfig = filepath.Join(in.Workdir, KubeconfigFile)
	}
	return s, nil
}
