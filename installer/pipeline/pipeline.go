// Package pipeline is `wtctl cluster install`: the install phases, in order, over the engine. Read Phases top to
// bottom to know what an install does: the nodes are prepared, the registry and containerd started, then
// Kubernetes is bootstrapped with kubeadm, the pod network and storage are deployed, and every node must be Ready.
package pipeline

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/facts"
	"github.com/wutong-paas/wutong-offline/installer/kube"
	"github.com/wutong-paas/wutong-offline/installer/kubeadm"
	"github.com/wutong-paas/wutong-offline/installer/preflight"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// Install holds what the phases share. Fill the exported fields, then run Phases with an engine over Targets.
type Install struct {
	Cluster *cluster.Cluster
	// BundleDir is the extracted, verified bundle, and Manifest its signed manifest.
	BundleDir string
	Manifest  *bundle.Manifest
	// Agent returns the local wtctl built for an arch. Default preflight.LocalAgent.
	Agent func(arch string) (string, error)
	// Now is this machine's clock, for the skew check and token expiry. Default time.Now.
	Now func() time.Time
	// Workdir keeps the admin kubeconfig, the join token and the certificate key (0600). Empty: nowhere.
	Workdir string
	// Forward returns, for a host, a dialer through its SSH connection; the API server is reached that way. Nil
	// dials directly. ForwardThrough(targets) gives the one for Targets.
	Forward func(host string) kube.Dialer
	// Timeouts are kubeadm's; zero ones are kubeadm's defaults. Emulated (TCG) VMs need longer ones.
	Timeouts kubeadm.Timeouts
	// IgnorePreflightErrors are passed to kubeadm on every node.
	IgnorePreflightErrors []string
	// ReadyTimeout bounds the wait for Ready nodes and system deployments. Default 20 minutes.
	ReadyTimeout time.Duration
	// PlatformKeys are the package signers the platform trusts: the key that signed the bundle, normally.
	PlatformKeys []ed25519.PublicKey
	// Only, when set, limits the per-host phases to these hosts (add-node); the first control plane is still used
	// to reach the cluster.
	Only []string

	mu     sync.Mutex
	nodes  map[string]nodeFacts
	sums   map[string]string // local file → sha256, so each agent is hashed once per run
	owned  map[string][]int
	ours   map[string][]string // runtimes an earlier run installed
	report *preflight.Report
	kube   *kube.Client
	join   *kubeadm.Join
	// platformAt is the host the platform phase placed the platform on (see placePlatform).
	platformAt cluster.Host
}

// Phases is the install pipeline.
func (in *Install) Phases() []engine.Phase {
	return []engine.Phase{
		in.onHosts("connect", nil, in.connect),
		in.onHosts("facts", nil, in.collectFacts),
		preflightPhase{in},
		in.onHosts("distribute", nil, in.distribute),
		in.onHosts("node prep", nil, in.nodePrep),
		registryPhase{in},
		reachablePhase{in},
		in.onHosts("container runtime", nil, in.containerRuntime),
		in.onHosts("image preload", nil, in.preloadImages),
		kubePhase{in.onHosts("kubelet", isNode, in.installKubelet), in},
		kubePhase{in.onHosts("control plane", in.isFirstControlPlane, in.initControlPlane), in},
		kubePhase{accessPhase{in}, in},
		kubePhase{in.onHosts("join", in.isJoiner, in.joinNode), in},
		kubePhase{networkPhase{in}, in},
		kubePhase{readyPhase{in}, in},
		kubePhase{storagePhase{in}, in},
		kubePhase{ingressPhase{in}, in},
		kubePhase{platformPhase{in}, in},
	}
}

// onHosts is a per-host phase on the hosts match accepts (nil: all), narrowed to Only when set.
func (in *Install) onHosts(title string, match func(cluster.Host) bool, fn func(ctx context.Context, n *engine.Node) error) engine.Phase {
	return engine.OnHosts(title, in.narrow(match), fn)
}

// narrow is match (nil: every host) narrowed to Only when set.
func (in *Install) narrow(match func(cluster.Host) bool) func(cluster.Host) bool {
	return func(h cluster.Host) bool {
		if len(in.Only) > 0 && !slices.Contains(in.Only, h.Name) {
			return false
		}
		return match == nil || match(h)
	}
}

// ForwardThrough gives Install.Forward for targets made by Targets: a dialer through the host's SSH connection.
func ForwardThrough(ts []engine.Target) func(host string) kube.Dialer {
	return func(host string) kube.Dialer {
		for _, t := range ts {
			if l, ok := t.Runner.(*lazyClient); ok && t.Host.Name == host {
				return l.DialContext
			}
		}
		return nil
	}
}

// Report is the preflight report of the last run, or nil.
func (in *Install) Report() *preflight.Report {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.report
}

// Targets are lazily dialled links to every host: a host that cannot be reached fails in the connect phase, with
// the others carrying on. tune, when given, adjusts each host's remote.Config (tests shorten keepalives).
func Targets(c *cluster.Cluster, keys remote.HostKeys, tune ...func(*remote.Config)) []engine.Target {
	var ts []engine.Target
	for _, h := range c.Spec.Hosts {
		cfg := preflight.RemoteConfig(h, keys)
		for _, f := range tune {
			f(&cfg)
		}
		l := &lazyClient{host: h.Name, cfg: cfg}
		ts = append(ts, engine.Target{Host: h, Runner: l, Uploader: l})
	}
	return ts
}

// Close drops the links Targets made.
func Close(ts []engine.Target) {
	for _, t := range ts {
		if l, ok := t.Runner.(*lazyClient); ok {
			l.close()
		}
	}
}

func (in *Install) connect(ctx context.Context, n *engine.Node) error {
	_, err := n.Query(ctx, remote.Cmd{Line: "true"})
	return err
}

// collectFacts puts the agent on the node (the one change before preflight) and reads its facts. In a dry run the
// agent is not uploaded: a fresh node then has no facts, and preflight says so.
func (in *Install) collectFacts(ctx context.Context, n *engine.Node) error {
	res, err := n.Query(ctx, remote.Cmd{Line: "uname -m"})
	if err != nil {
		return err
	}
	machine := strings.TrimSpace(string(res.Stdout))
	arch := facts.NormalizeArch(machine)
	agent := in.Agent
	if agent == nil {
		agent = func(a string) (string, error) { return preflight.LocalAgent(a) }
	}
	local, err := agent(arch)
	if err != nil {
		return engine.WithHint(fmt.Errorf("node agent for %s: %w", arch, err),
			"build it (make build-all) or pass --agent-dir", "请先构建（make build-all）或用 --agent-dir 指定")
	}
	sum, err := in.sha256Of(local)
	if err != nil {
		return err
	}
	changed, err := n.Upload(ctx, local, preflight.AgentPath, remote.UploadOptions{Mode: 0o755, Sudo: true, SHA256: sum})
	if err != nil {
		return err
	}
	if n.DryRun() && changed {
		n.Logf("dry run: the agent is not on the node yet, so there are no facts (arch %s from uname)", arch)
		in.setFacts(n.Name(), nodeFacts{facts: &facts.Facts{Arch: arch, Machine: machine}, partial: true})
		return nil
	}
	now := in.Now
	if now == nil {
		now = time.Now
	}
	link := gateLink{n: n, agent: local, sum: sum}
	f, skew, err := preflight.Collect(ctx, link, link, func(string) (string, error) { return local, nil }, now)
	if err != nil {
		return err
	}
	in.setFacts(n.Name(), nodeFacts{facts: f, skew: skew})
	// A containerd or kubelet this installer set up earlier is ours, not a foreign runtime, and so are the ports
	// that kubelet and the control plane it runs hold (a re-run after an interrupted kubeadm init finds them).
	for _, rt := range []string{"containerd", "kubelet"} {
		if _, err := n.Query(ctx, remote.Cmd{Line: "grep -qs 'Written by wtctl' /etc/systemd/system/" + rt + ".service"}); err != nil {
			continue
		}
		in.mu.Lock()
		if in.ours == nil {
			in.ours = map[string][]string{}
		}
		in.ours[n.Name()] = append(in.ours[n.Name()], rt)
		if rt == "kubelet" {
			if in.owned == nil {
				in.owned = map[string][]int{}
			}
			in.owned[n.Name()] = append(in.owned[n.Name()], kubePorts(n.Host())...)
		}
		in.mu.Unlock()
	}
	// A registry this installer started earlier holds its port: preflight must not call that taken.
	if n.Host().HasRole(cluster.RoleRegistry) {
		if _, err := n.Query(ctx, remote.Cmd{Line: "systemctl is-active --quiet " + registryUnit}); err == nil {
			in.mu.Lock()
			if in.owned == nil {
				in.owned = map[string][]int{}
			}
			in.owned[n.Name()] = append(in.owned[n.Name()], in.Cluster.Spec.Registry.Port)
			in.mu.Unlock()
		}
	}
	return nil
}

// nodeFacts is what the facts phase learned about one node.
type nodeFacts struct {
	facts   *facts.Facts
	skew    time.Duration
	partial bool // a dry run on a node without the agent: only the arch is known
}

func (in *Install) setFacts(host string, nf nodeFacts) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.nodes == nil {
		in.nodes = map[string]nodeFacts{}
	}
	in.nodes[host] = nf
}

// factsOf returns what the facts phase learned about host.
func (in *Install) factsOf(host string) nodeFacts {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.nodes[host]
}

// sha256Of hashes the local file p once per run.
func (in *Install) sha256Of(p string) (string, error) {
	in.mu.Lock()
	sum, ok := in.sums[p]
	in.mu.Unlock()
	if ok {
		return sum, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	in.mu.Lock()
	if in.sums == nil {
		in.sums = map[string]string{}
	}
	in.sums[p] = sum
	in.mu.Unlock()
	return sum, nil
}

// gateLink lets preflight.Collect work through the gate: its reads are queries, and its one upload (the agent,
// already in place) is skipped as identical, by the sum the facts phase already computed.
type gateLink struct {
	n          *engine.Node
	agent, sum string
}

func (g gateLink) Host() string { return g.n.Name() }
func (g gateLink) Run(ctx context.Context, cmd remote.Cmd) (remote.Result, error) {
	return g.n.Query(ctx, cmd)
}
func (g gateLink) Upload(ctx context.Context, src, dst string, o remote.UploadOptions) (remote.UploadResult, error) {
	if src == g.agent {
		o.SHA256 = g.sum
	}
	changed, err := g.n.Upload(ctx, src, dst, o)
	return remote.UploadResult{Skipped: !changed, Attempts: 1}, err
}
