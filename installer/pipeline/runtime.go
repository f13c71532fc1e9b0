package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/installer/containerd"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/payload"
	"github.com/wutong-paas/wutong-offline/installer/preflight"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// runtimeBinaries are what the bundle carries of the container runtime, and where each goes.
var runtimeBinaries = []binary{
	{"containerd", "/usr/local/bin"}, {"containerd-shim-runc-v2", "/usr/local/bin"}, {"ctr", "/usr/local/bin"},
	{"crictl", "/usr/local/bin"}, {"runc", "/usr/local/sbin"},
}

// crictl's configuration: containerd's socket for both endpoints.
const (
	crictlConfigPath = "/etc/crictl.yaml"
	crictlConfig     = "# Written by wtctl (wutong-offline).\nruntime-endpoint: " + criSocket + "\nimage-endpoint: " + criSocket + "\n"
)

// runtimeConfig is the node's containerd configuration and certs.d files, by path.
func (in *Install) runtimeConfig() map[string][]byte {
	sandbox := ""
	var upstreams []string
	for _, img := range in.Manifest.Images {
		ref, err := name.ParseReference(img.Name)
		if err != nil {
			continue
		}
		if reg := ref.Context().RegistryStr(); !slices.Contains(upstreams, reg) {
			upstreams = append(upstreams, reg)
		}
		if strings.HasSuffix(ref.Context().RepositoryStr(), "/pause") || ref.Context().RepositoryStr() == "pause" {
			sandbox = img.Name
		}
	}
	reg := in.Cluster.Spec.Registry
	local := reg.Domain + ":" + strconv.Itoa(reg.Port)
	files := map[string][]byte{containerd.ConfigPath: containerd.ConfigTOML(containerd.Options{SandboxImage: sandbox})}
	for rel, content := range images.CertsD(local, CAPath, upstreams) {
		files[path.Join(containerd.CertsDir, rel)] = content
	}
	return files
}

// containerRuntime installs containerd from the bundle with its configuration (systemd cgroup driver, the sandbox
// image, certs.d mirrors to the local registry trusting the cluster CA) and unit, restarts it only when one of
// those changed, and checks it through containerd's Go client (`wtctl node runtime-check`).
func (in *Install) containerRuntime(ctx context.Context, n *engine.Node) error {
	names, binChanged, err := in.installBinaries(ctx, n, "runtime-binaries", runtimeBinaries)
	if err != nil {
		return err
	}
	if !slices.Contains(names, "containerd") {
		f := in.factsOf(n.Name()).facts
		n.Logf("the bundle carries no containerd for %s: the container runtime is not installed", f.Arch)
		return nil
	}
	if err := in.installCNIPlugins(ctx, n); err != nil {
		return err
	}
	changed := binChanged
	files := in.runtimeConfig()
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		c, err := n.PutFile(ctx, p, files[p], 0o644)
		if err != nil {
			return err
		}
		changed = changed || c
	}
	// crictl (kubeadm uses it, and so do people on the node) talks to containerd without guessing endpoints.
	if _, err := n.PutFile(ctx, crictlConfigPath, []byte(crictlConfig), 0o644); err != nil {
		return err
	}
	uc, err := n.Unit(ctx, containerd.Unit, containerd.UnitFile())
	if err != nil {
		return err
	}
	if err := runService(ctx, n, containerd.Unit, "containerd", changed || uc); err != nil {
		return err
	}
	if n.DryRun() {
		return nil
	}
	lastErr := waitFor(ctx, func(ctx context.Context) error {
		res, err := n.Query(ctx, remote.Cmd{Line: preflight.AgentPath + " node runtime-check --json", Sudo: true})
		if err != nil {
			return err
		}
		var st containerd.Status
		if err := json.Unmarshal(res.Stdout, &st); err != nil {
			return fmt.Errorf("read runtime-check: %w", err)
		}
		if !st.Serving {
			return fmt.Errorf("containerd %s answers but is not serving", st.Version)
		}
		n.Logf("containerd %s is serving", st.Version)
		return nil
	})
	if lastErr == nil || ctx.Err() != nil {
		return lastErr
	}
	return engine.WithHint(fmt.Errorf("containerd does not answer: %w", lastErr),
		"see journalctl -u containerd on the node", "请在节点上查看 journalctl -u containerd")
}

// preloadImages imports the payload's images for the node's arch into containerd's k8s.io namespace, so that the
// control plane comes up even if the registry is down. Its marker is trusted only while containerd still lists
// every image.
func (in *Install) preloadImages(ctx context.Context, n *engine.Node) error {
	f := in.factsOf(n.Name()).facts
	if !slices.ContainsFunc(in.Manifest.Entries, func(e bundle.Entry) bool { return e.Path == "files/"+f.Arch+"/containerd" }) {
		return nil // no runtime from the bundle: nothing to preload into
	}
	reg := in.Cluster.Spec.Registry
	local := reg.Domain + ":" + strconv.Itoa(reg.Port)
	var want []string
	for _, img := range in.Manifest.Images {
		if _, ok := img.Arches[f.Arch]; ok {
			want = append(want, img.Name)
			// Also under its local-registry name, which kubeadm's manifests use (imageRepository).
			if l, err := images.LocalRef(img.Name, local); err == nil && l != img.Name {
				want = append(want, l)
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	slices.Sort(want)
	list := func(ctx context.Context) ([]string, error) {
		res, err := n.Query(ctx, remote.Cmd{Line: preflight.AgentPath + " node images list --json", Sudo: true})
		if err != nil {
			return nil, err
		}
		var names []string
		if err := json.Unmarshal(res.Stdout, &names); err != nil {
			return nil, fmt.Errorf("read image list: %w", err)
		}
		return names, nil
	}
	verify := func(ctx context.Context) error {
		have, err := list(ctx)
		if err != nil {
			return err
		}
		for _, w := range want {
			if !slices.Contains(have, w) {
				return fmt.Errorf("containerd lacks %s", w)
			}
		}
		return nil
	}
	inputs := struct{ Layout, Arch, Alias string }{indexDigest(in), f.Arch, local}
	return n.Step(ctx, "image-preload", inputs, func(ctx context.Context) error {
		_, err := n.Exec(ctx, fmt.Sprintf("import %d image(s) into containerd (namespace %s)", len(want), containerd.Namespace),
			remote.Cmd{Line: preflight.AgentPath + " node images import --json --alias-registry " + remote.Quote(local), Sudo: true, Timeout: 30 * time.Minute})
		return err
	}, engine.Verify(verify), engine.Simulate())
}

// cniPluginsDir is where containerd's CRI plugin and kubelet look for CNI plugins.
const cniPluginsDir = "/opt/cni/bin"

// installCNIPlugins unpacks the CNI plugins the bundle carries (files/ARCH/cni-plugins.tgz, as upstream releases
// them) into /opt/cni/bin. Its marker is trusted only while every plugin of the archive is still there.
func (in *Install) installCNIPlugins(ctx context.Context, n *engine.Node) error {
	f := in.factsOf(n.Name()).facts
	rel := "files/" + f.Arch + "/cni-plugins.tgz"
	i := slices.IndexFunc(in.Manifest.Entries, func(e bundle.Entry) bool { return e.Path == rel })
	if i < 0 {
		n.Logf("the bundle carries no %s: CNI plugins not installed", rel)
		return nil
	}
	archive := remote.Quote(path.Join(payload.NodeRoot, rel))
	verify := func(ctx context.Context) error {
		_, err := n.Query(ctx, remote.Cmd{Sudo: true, Line: "tar -tzf " + archive + " | while read -r f; do [ -e " + cniPluginsDir + "/\"${f#./}\" ] || exit 1; done"})
		if err != nil {
			return fmt.Errorf("a CNI plugin is missing from %s", cniPluginsDir)
		}
		return nil
	}
	return n.Step(ctx, "cni-plugins", in.Manifest.Entries[i].SHA256, func(ctx context.Context) error {
		_, err := n.Exec(ctx, "unpack the CNI plugins into "+cniPluginsDir, remote.Cmd{Sudo: true,
			Line: "mkdir -p " + cniPluginsDir + " && tar -xzf " + archive + " -C " + cniPluginsDir + " --no-same-owner"})
		return err
	}, engine.Verify(verify), engine.Simulate())
}
