package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/facts"
	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
)

// AgentPath is where the node agent (the wtctl built for the node's arch) lives on every node.
const AgentPath = "/opt/wutong/bin/wtctl"

// GatherOptions tune Gather.
type GatherOptions struct {
	// HostKeys is the host-key policy for every host and the bastion.
	HostKeys remote.HostKeys
	// Agent returns the local path of the wtctl built for arch (amd64, arm64, loong64). Default: LocalAgent.
	Agent func(arch string) (string, error)
	// Parallel caps hosts handled at once. Default 16.
	Parallel int
	// Progress, when set, hears about each host as it finishes.
	Progress func(host string, err error)
	// Now is the jump host's clock. Default time.Now.
	Now func() time.Time
}

// Connect dials host with its effective SSH settings from cluster.yaml.
func Connect(ctx context.Context, h cluster.Host, keys remote.HostKeys) (*remote.Client, error) {
	return remote.Dial(ctx, RemoteConfig(h, keys))
}

// RemoteConfig maps a host's effective SSH settings onto remote.Config.
func RemoteConfig(h cluster.Host, keys remote.HostKeys) remote.Config {
	s := h.SSH()
	cfg := remote.Config{
		Host: h.Name, Address: s.Address, Port: s.Port, User: s.User,
		Password: s.Password.Reveal(), KeyFile: s.PrivateKey, Passphrase: s.Passphrase.Reveal(), Agent: s.Agent,
		SudoPassword: s.SudoPassword.Reveal(), HostKeys: keys, DialTimeout: s.Timeout,
	}
	if b := s.Bastion; b != nil {
		cfg.Bastion = &remote.Config{
			Host: "bastion " + b.Address, Address: b.Address, Port: b.Port, User: b.User,
			Password: b.Password.Reveal(), KeyFile: b.PrivateKey, Passphrase: b.Passphrase.Reveal(), Agent: b.Agent,
			HostKeys: keys, DialTimeout: s.Timeout,
		}
	}
	return cfg
}

// LocalAgent finds the wtctl for arch: wtctl-linux-ARCH in dirs or beside the running executable, or the running
// executable itself when arch is this machine's.
func LocalAgent(arch string, dirs ...string) (string, error) {
	self, err := os.Executable()
	if err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	name := "wtctl-linux-" + arch
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	if arch == runtime.GOARCH && self != "" {
		return self, nil
	}
	return "", fmt.Errorf("no wtctl for %s: put %s beside wtctl (make build-all builds it) or pass --agent-dir", arch, name)
}

// Gather reaches every host in parallel, puts the node agent there and collects its facts. A host that fails
// gets a Node with Err set; the others carry on.
func Gather(ctx context.Context, c *cluster.Cluster, o GatherOptions) []Node {
	if o.Agent == nil {
		o.Agent = func(arch string) (string, error) { return LocalAgent(arch) }
	}
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	nodes := make([]Node, len(c.Spec.Hosts))
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i, h := range c.Spec.Hosts {
		nodes[i].Host = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			nodes[i].Facts, nodes[i].Skew, nodes[i].Err = gatherOne(ctx, h, o)
			if o.Progress != nil {
				o.Progress(h.Name, nodes[i].Err)
			}
		}()
	}
	wg.Wait()
	return nodes
}

func gatherOne(ctx context.Context, h cluster.Host, o GatherOptions) (*facts.Facts, time.Duration, error) {
	log := logctx.From(ctx).With("host", h.Name)
	cl, err := Connect(ctx, h, o.HostKeys)
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	f, skew, err := Collect(ctx, cl, cl, o.Agent, o.Now)
	if err != nil {
		return nil, 0, err
	}
	log.Debug("facts", "os", f.OS.ID, "arch", f.Arch, "skew", skew)
	return f, skew, nil
}

// Collect puts the agent on one node and runs `wtctl node facts` there. It also measures the node's clock against
// now, to the accuracy of half a round trip.
func Collect(ctx context.Context, r remote.Runner, up remote.Uploader, agent func(string) (string, error), now func() time.Time) (*facts.Facts, time.Duration, error) {
	res, err := r.Run(ctx, remote.Cmd{Line: "uname -m"})
	if err != nil {
		return nil, 0, err
	}
	machine := strings.TrimSpace(string(res.Stdout))
	arch := facts.NormalizeArch(machine)
	local, err := agent(arch)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: node agent: %w", r.Host(), err)
	}
	if _, err := up.Upload(ctx, local, AgentPath, remote.UploadOptions{Mode: 0o755, Sudo: true}); err != nil {
		return nil, 0, err
	}
	t0 := now()
	res, err = r.Run(ctx, remote.Cmd{Line: "date -u +%s%N"})
	t1 := now()
	if err != nil {
		return nil, 0, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(res.Stdout)), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: read the node's clock: %q is not a time", r.Host(), res.Stdout)
	}
	mid := t0.Add(t1.Sub(t0) / 2)
	skew := time.Unix(0, ns).Sub(mid)

	res, err = r.Run(ctx, remote.Cmd{Line: AgentPath + " node facts --json", Sudo: true})
	if err != nil {
		return nil, 0, err
	}
	var f facts.Facts
	if err := json.Unmarshal(res.Stdout, &f); err != nil {
		return nil, 0, errors.Join(fmt.Errorf("%s: read facts: %w", r.Host(), err))
	}
	return &f, skew, nil
}
