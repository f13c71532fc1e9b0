package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/nodeprep"
	"github.com/wutong-paas/wutong-offline/installer/payload"
	"github.com/wutong-paas/wutong-offline/installer/preflight"
	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
)

// preflightPhase judges every host's facts together (uniqueness needs them all) and fails the hosts with errors.
type preflightPhase struct{ in *Install }

func (preflightPhase) Title() string { return "preflight" }

func (p preflightPhase) Run(ctx context.Context, env *engine.Env) error {
	in := p.in
	var nodes []preflight.Node
	byName := map[string]*engine.Node{}
	for _, n := range env.Nodes() {
		nf := in.factsOf(n.Name())
		if nf.facts == nil || nf.partial {
			n.Logf("preflight: not checked (no facts yet; a real run uploads the agent first)")
			continue
		}
		nodes = append(nodes, preflight.Node{Host: n.Host(), Facts: nf.facts, Skew: nf.skew})
		byName[n.Name()] = n
	}
	in.mu.Lock()
	owned, ours := in.owned, in.ours
	in.mu.Unlock()
	rep := preflight.Check(preflight.Input{Cluster: in.Cluster, Nodes: nodes, Payload: preflight.PayloadOf(in.Manifest), Lang: env.Lang(),
		Owned: owned, OwnedRuntimes: ours, Ingress: in.ingressWanted()})
	in.mu.Lock()
	in.report = rep
	in.mu.Unlock()
	if dir := env.Workdir(); dir != "" {
		if b, err := json.MarshalIndent(rep, "", "  "); err == nil {
			if err := os.MkdirAll(dir, 0o700); err == nil {
				_ = atomicfile.Write(filepath.Join(dir, "preflight.json"), b, 0o600)
			}
		}
	}
	for _, h := range rep.Hosts {
		n := byName[h.Name]
		var msgs, fixes []string
		for _, f := range h.Findings {
			n.Logf("preflight %s %s: %s (%s)", f.Severity, f.Rule, f.Message, f.Remediation)
			if f.Severity == preflight.Error {
				msgs = append(msgs, f.Rule+": "+f.Message)
				fixes = append(fixes, f.Remediation)
			}
		}
		if len(msgs) > 0 {
			fix := strings.Join(fixes, "; ")
			env.Fail(n, engine.WithHint(fmt.Errorf("preflight: %s", strings.Join(msgs, "; ")), fix, fix))
		}
	}
	return nil
}

// distribute puts the node's share of the bundle under /opt/wutong, each file verified by sha256. Its marker is
// trusted only after `wtctl node verify` finds every file intact, so a damaged file is sent again.
func (in *Install) distribute(ctx context.Context, n *engine.Node) error {
	f := in.factsOf(n.Name()).facts
	forNode := payload.ForArch
	if n.Host().HasRole(cluster.RoleRegistry) {
		forNode = payload.ForRegistry
	}
	files, err := forNode(in.BundleDir, in.Manifest, f.Arch)
	var nae *payload.NoArchError
	if errors.As(err, &nae) {
		return engine.WithHint(err, "use a bundle built for "+nae.Arch+", or leave this host out", "请使用包含 "+nae.Arch+" 的离线包，或去掉该主机")
	}
	if err != nil {
		return err
	}
	n.Logf("distribute: %d files, %d bytes", len(files), payload.Size(files))
	verify := func(ctx context.Context) error {
		var list strings.Builder
		if err := payload.WriteList(&list, files); err != nil {
			return err
		}
		res, err := n.Query(ctx, remote.Cmd{Line: preflight.AgentPath + " node verify --json --root " + payload.NodeRoot, Sudo: true,
			Stdin: strings.NewReader(list.String())})
		if err != nil {
			return err
		}
		var problems []payload.Problem
		if err := json.Unmarshal(res.Stdout, &problems); err != nil {
			return fmt.Errorf("read node verify: %w", err)
		}
		if len(problems) > 0 {
			return fmt.Errorf("%d payload file(s) missing or damaged, first %s (%s)", len(problems), problems[0].Path, problems[0].Reason)
		}
		return nil
	}
	return n.Step(ctx, "distribute", files, func(ctx context.Context) error {
		for _, file := range files {
			_, err := n.Upload(ctx, filepath.Join(in.BundleDir, filepath.FromSlash(file.Path)), path.Join(payload.NodeRoot, file.Path),
				remote.UploadOptions{SHA256: file.SHA256, Mode: file.Mode, Sudo: true})
			if err != nil {
				return err
			}
		}
		return nil
	}, engine.Verify(verify), engine.Simulate())
}

// nodePrepArgs are the `wtctl node prep` flags for host h.
func (in *Install) nodePrepArgs(h cluster.Host) []string {
	c := in.Cluster
	args := []string{"--json", "--firewall", c.Spec.Firewall}
	for _, o := range c.Spec.Hosts {
		args = append(args, "--host", o.InternalAddress+"="+o.Name)
	}
	for _, r := range c.Registries() {
		args = append(args, "--host", r.InternalAddress+"="+c.Spec.Registry.Domain)
	}
	ports := []int{10250}
	if h.HasRole(cluster.RoleControlPlane) {
		ports = append(ports, 6443, 2379, 2380, 10257, 10259)
	}
	if h.HasRole(cluster.RoleRegistry) {
		ports = append(ports, c.Spec.Registry.Port)
	}
	if isNode(h) && in.ingressWanted() {
		ports = append(ports, cluster.IngressPorts...) // the ingress controller's hostPorts
	}
	slices.Sort(ports)
	for _, p := range ports {
		args = append(args, "--port", strconv.Itoa(p)+"/tcp")
	}
	if c.Spec.Kubernetes.CNI == "flannel" {
		args = append(args, "--port", "8472/udp") // flannel's VXLAN
	}
	return args
}

// staticTools are the OS tools kubelet and kube-proxy need that the bundle may carry as static binaries, so that no
// OS package repository is needed.
var staticTools = []binary{{"conntrack", "/usr/local/bin"}, {"socat", "/usr/local/bin"}, {"ipset", "/usr/local/bin"}, {"ebtables", "/usr/local/bin"}}

// binary is a file the bundle may carry for each arch (files/ARCH/Name) and where it is installed.
type binary struct{ Name, Dir string }

// installBinaries copies the binaries of want that the payload carries for the node's arch from /opt/wutong into
// their directories, as step id. Its marker holds their sha256s and is trusted only when the installed copies still
// match. It returns the names found and whether anything was installed.
func (in *Install) installBinaries(ctx context.Context, n *engine.Node, id string, want []binary) ([]string, bool, error) {
	f := in.factsOf(n.Name()).facts
	type bin struct{ Name, Src, Dst, SHA256 string }
	var bins []bin
	var names []string
	for _, e := range in.Manifest.Entries {
		for _, b := range want {
			if e.Path == "files/"+f.Arch+"/"+b.Name {
				bins = append(bins, bin{b.Name, path.Join(payload.NodeRoot, e.Path), path.Join(b.Dir, b.Name), e.SHA256})
				names = append(names, b.Name)
			}
		}
	}
	if len(bins) == 0 {
		return nil, false, nil
	}
	verify := func(ctx context.Context) error {
		for _, b := range bins {
			res, err := n.Query(ctx, remote.Cmd{Line: "sha256sum " + remote.Quote(b.Dst), Sudo: true})
			if err != nil || !strings.HasPrefix(string(res.Stdout), b.SHA256) {
				return fmt.Errorf("%s is missing or differs", b.Dst)
			}
		}
		return nil
	}
	ran := false
	err := n.Step(ctx, id, bins, func(ctx context.Context) error {
		ran = true
		for _, b := range bins {
			if _, err := n.Exec(ctx, "install "+b.Name+" from the bundle", remote.Cmd{Sudo: true,
				Line: "install -D -m 0755 " + remote.Quote(b.Src) + " " + remote.Quote(b.Dst)}); err != nil {
				return err
			}
		}
		return nil
	}, engine.Verify(verify), engine.Simulate())
	return names, ran && !n.DryRun(), err
}

// installTools puts the static tools the payload carries into /usr/local/bin.
func (in *Install) installTools(ctx context.Context, n *engine.Node) error {
	names, _, err := in.installBinaries(ctx, n, "static-tools", staticTools)
	if err == nil && len(names) == 0 {
		n.Logf("the bundle carries no static conntrack/socat/ipset/ebtables: the OS's own are used")
	}
	return err
}

// nodePrep runs `wtctl node prep` on the node. Its marker holds the flags; it is trusted only when a dry run of
// node prep finds nothing to change, so a setting undone by hand is set again.
func (in *Install) nodePrep(ctx context.Context, n *engine.Node) error {
	args := in.nodePrepArgs(n.Host())
	line := func(extra ...string) string {
		q := []string{preflight.AgentPath, "node", "prep"}
		for _, a := range append(args, extra...) {
			q = append(q, remote.Quote(a))
		}
		return strings.Join(q, " ")
	}
	pending := func(ctx context.Context) ([]nodeprep.Change, error) {
		res, err := n.Query(ctx, remote.Cmd{Line: line("--dry-run"), Sudo: true})
		if err != nil {
			return nil, err
		}
		var r nodeprep.Result
		if err := json.Unmarshal(res.Stdout, &r); err != nil {
			return nil, fmt.Errorf("read node prep: %w", err)
		}
		return r.Changes, nil
	}
	verify := func(ctx context.Context) error {
		changes, err := pending(ctx)
		if err != nil {
			return err
		}
		if len(changes) > 0 {
			return fmt.Errorf("%d setting(s) differ, first %s %s", len(changes), changes[0].Kind, changes[0].Target)
		}
		return nil
	}
	if err := in.installTools(ctx, n); err != nil {
		return err
	}
	return n.Step(ctx, "node-prep", args, func(ctx context.Context) error {
		desc := "prepare the node: swap, kernel modules, sysctl, SELinux, firewalld, /etc/hosts"
		if nf := in.factsOf(n.Name()); n.DryRun() && nf.facts != nil && !nf.partial {
			if changes, err := pending(ctx); err == nil {
				var what []string
				for _, c := range changes {
					what = append(what, c.Kind+" "+c.Target)
				}
				desc = "prepare the node: " + strings.Join(what, "; ")
			}
		}
		_, err := n.Exec(ctx, desc, remote.Cmd{Line: line(), Sudo: true})
		return err
	}, engine.Verify(verify), engine.Simulate())
}
