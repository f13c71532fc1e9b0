// Package nodeprep prepares a node for Kubernetes, on the node itself (`wtctl node prep`): swap off and kept off
// in fstab, kernel modules loaded and persisted, network sysctls set and persisted, SELinux permissive, firewalld
// opened or stopped, and the cluster's names in /etc/hosts. Every step checks before it changes, so a second run
// changes nothing; with DryRun it only says what it would change, which is what the installer's --dry-run shows.
package nodeprep

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/wutong-paas/wutong-offline/installer/facts"
	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
)

// Firewall modes.
const (
	FirewallOpen  = "open"  // add the cluster's ports to firewalld's permanent config and reload (default)
	FirewallStop  = "stop"  // stop and disable firewalld
	FirewallLeave = "leave" // do not touch firewalld
)

// Options say what to prepare. Zero values take the documented defaults.
type Options struct {
	// Root is the file system root. Default "/". With another root, commands run only through a given Exec.
	Root string
	// Hosts are written into a managed block of /etc/hosts.
	Hosts []HostEntry
	// Sysctl are set now and in /etc/sysctl.d/99-wutong.conf. Default DefaultSysctl.
	Sysctl map[string]string
	// Modules are loaded now and in /etc/modules-load.d/wutong.conf. Default DefaultModules.
	Modules []string
	// Firewall is FirewallOpen, FirewallStop or FirewallLeave. Default FirewallOpen.
	Firewall string
	// Ports are opened in firewalld, as "6443/tcp".
	Ports []string
	// DryRun reports the changes without making them.
	DryRun bool
	// Exec runs a command and returns its combined output. Default: os/exec. Tests replace it.
	Exec func(ctx context.Context, name string, args ...string) (string, error)
}

// DefaultSysctl is what kubelet, kube-proxy and the CNI need.
func DefaultSysctl() map[string]string {
	return map[string]string{
		"net.bridge.bridge-nf-call-iptables":  "1",
		"net.bridge.bridge-nf-call-ip6tables": "1",
		"net.ipv4.ip_forward":                 "1",
	}
}

// DefaultModules are loaded on every node: bridge netfilter (before its sysctls exist) and overlay for containerd.
func DefaultModules() []string { return []string{"br_netfilter", "overlay"} }

// Change is one thing done (or, in a dry run, to be done).
type Change struct {
	Kind   string `json:"kind"`             // file, command or sysctl
	Target string `json:"target"`           // the path, the command line, or the sysctl key
	Why    string `json:"why"`              // in a few words
	SHA256 string `json:"sha256,omitempty"` // a file's new content
}

// Result lists the changes. An empty list means the node was already prepared.
type Result struct {
	DryRun  bool     `json:"dryRun"`
	Changes []Change `json:"changes"`
}

type prep struct {
	o     Options
	res   *Result
	exec  bool         // whether commands run (not for a foreign root without an Exec)
	facts *facts.Facts // swap, modules and firewalld as the node is now
}

// Apply prepares the node. It stops at the first step that fails; what was done before stays done and is
// reported in the error's Result, and a re-run picks up from there.
func Apply(ctx context.Context, o Options) (*Result, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Sysctl == nil {
		o.Sysctl = DefaultSysctl()
	}
	if o.Modules == nil {
		o.Modules = DefaultModules()
	}
	if o.Firewall == "" {
		o.Firewall = FirewallOpen
	}
	switch o.Firewall {
	case FirewallOpen, FirewallStop, FirewallLeave:
	default:
		return nil, fmt.Errorf("node prep: firewall mode %q: use open, stop or leave", o.Firewall)
	}
	// What is loaded and running is read the way preflight reads it, so that both agree.
	f, err := facts.Collect(ctx, facts.Options{Root: o.Root, Paths: []string{}, Commands: []string{}, Modules: o.Modules})
	if err != nil {
		return nil, fmt.Errorf("node prep: %w", err)
	}
	p := &prep{o: o, res: &Result{DryRun: o.DryRun, Changes: []Change{}}, exec: o.Exec != nil || o.Root == "/", facts: f}
	if o.Exec == nil {
		p.o.Exec = runCommand
	}
	for _, step := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"swap", p.swap},
		{"kernel modules", p.modules},
		{"sysctl", p.sysctl},
		{"SELinux", p.selinux},
		{"firewalld", p.firewalld},
		{"/etc/hosts", p.hosts},
	} {
		if err := ctx.Err(); err != nil {
			return p.res, err
		}
		if err := step.run(ctx); err != nil {
			return p.res, fmt.Errorf("node prep: %s: %w", step.name, err)
		}
	}
	return p.res, nil
}

func (p *prep) path(rel string) string { return filepath.Join(p.o.Root, rel) }

func (p *prep) read(rel string) (string, bool, error) {
	b, err := os.ReadFile(p.path(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	return string(b), err == nil, err
}

// writeFile writes content to rel when it differs, keeping an existing file's mode.
func (p *prep) writeFile(rel, content string, mode fs.FileMode, why string) error {
	old, exists, err := p.read(rel)
	if err != nil {
		return err
	}
	if exists && old == content {
		return nil
	}
	sum := sha256.Sum256([]byte(content))
	p.res.Changes = append(p.res.Changes, Change{Kind: "file", Target: rel, Why: why, SHA256: hex.EncodeToString(sum[:])})
	if p.o.DryRun {
		return nil
	}
	if exists {
		if st, err := os.Stat(p.path(rel)); err == nil {
			mode = st.Mode().Perm()
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.path(rel)), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p.path(rel), []byte(content), mode)
}

// command runs name args (not in a dry run, and only on the real root) and records it.
func (p *prep) command(ctx context.Context, why, name string, args ...string) error {
	p.res.Changes = append(p.res.Changes, Change{Kind: "command", Target: strings.Join(append([]string{name}, args...), " "), Why: why})
	if p.o.DryRun || !p.exec {
		return nil
	}
	out, err := p.o.Exec(ctx, name, args...)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out))
	}
	return nil
}

func runCommand(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
