package nodeprep

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/wutong-paas/wutong-offline/installer/facts"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

func (p *prep) swap(ctx context.Context) error {
	if p.facts.SwapBytes > 0 {
		why := fmt.Sprintf("%s of swap active; kubelet needs swap off", progress.Bytes(int64(p.facts.SwapBytes)))
		if err := p.command(ctx, why, "swapoff", "-a"); err != nil {
			return err
		}
	}
	fstab, exists, err := p.read("/etc/fstab")
	if err != nil || !exists {
		return err
	}
	if edited, changed := commentSwap(fstab); changed {
		return p.writeFile("/etc/fstab", edited, 0o644, "comment out swap so that it stays off after a reboot")
	}
	return nil
}

// moduleLoaded tells whether the kernel has module m, loaded or built in, as facts saw it.
func (p *prep) moduleLoaded(m string) bool {
	i := slices.IndexFunc(p.facts.Modules, func(x facts.Module) bool { return x.Name == m })
	return i >= 0 && p.facts.Modules[i].Loaded
}

func (p *prep) modules(ctx context.Context) error {
	if len(p.o.Modules) == 0 {
		return nil
	}
	for _, m := range p.o.Modules {
		if !p.moduleLoaded(m) {
			if err := p.command(ctx, "load the "+m+" kernel module", "modprobe", m); err != nil {
				return err
			}
		}
	}
	return p.writeFile("/etc/modules-load.d/wutong.conf", modulesFile(p.o.Modules), 0o644, "load the modules at boot")
}

func (p *prep) sysctl(ctx context.Context) error {
	if len(p.o.Sysctl) == 0 {
		return nil
	}
	keys := make([]string, 0, len(p.o.Sysctl))
	for k := range p.o.Sysctl {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		want := p.o.Sysctl[k]
		rel := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		cur, exists, err := p.read(rel)
		if err != nil {
			return err
		}
		if !exists && p.o.DryRun {
			// The module that provides it may only be loaded by this run.
			p.res.Changes = append(p.res.Changes, Change{Kind: "sysctl", Target: k + "=" + want, Why: "set now"})
			continue
		}
		if !exists {
			return fmt.Errorf("%s does not exist: is the module that provides it loaded?", k)
		}
		if strings.TrimSpace(cur) == want {
			continue
		}
		p.res.Changes = append(p.res.Changes, Change{Kind: "sysctl", Target: k + "=" + want, Why: "was " + strings.TrimSpace(cur)})
		if p.o.DryRun {
			continue
		}
		if err := os.WriteFile(p.path(rel), []byte(want+"\n"), 0); err != nil {
			if errors.Is(err, fs.ErrPermission) || strings.Contains(err.Error(), "read-only") {
				return fmt.Errorf("set %s: %w (is this a container without write access to /proc/sys?)", k, err)
			}
			return fmt.Errorf("set %s: %w", k, err)
		}
	}
	return p.writeFile("/etc/sysctl.d/99-wutong.conf", sysctlFile(p.o.Sysctl), 0o644, "keep the settings after a reboot")
}

func (p *prep) selinux(ctx context.Context) error {
	if enforce, ok, _ := p.read("/sys/fs/selinux/enforce"); ok && strings.TrimSpace(enforce) == "1" {
		p.res.Changes = append(p.res.Changes, Change{Kind: "file", Target: "/sys/fs/selinux/enforce", Why: "SELinux enforcing → permissive now (setenforce 0)"})
		if !p.o.DryRun {
			if err := os.WriteFile(p.path("/sys/fs/selinux/enforce"), []byte("0"), 0); err != nil {
				return fmt.Errorf("setenforce 0: %w", err)
			}
		}
	}
	config, exists, err := p.read("/etc/selinux/config")
	if err != nil || !exists {
		return err
	}
	if edited, changed := selinuxPermissive(config); changed {
		return p.writeFile("/etc/selinux/config", edited, 0o644, "SELinux permissive after a reboot")
	}
	return nil
}

func (p *prep) firewalld(ctx context.Context) error {
	if p.o.Firewall == FirewallLeave || p.facts.Firewalld != "running" {
		return nil
	}
	if p.o.Firewall == FirewallStop {
		return p.command(ctx, "firewall: stop firewalld, as cluster.yaml says", "systemctl", "disable", "--now", "firewalld")
	}
	var missing []string
	for _, port := range p.o.Ports {
		// --query-port answers "no" with exit status 1.
		if p.exec {
			if out, err := p.o.Exec(ctx, "firewall-cmd", "--permanent", "--query-port="+port); err == nil && strings.TrimSpace(out) == "yes" {
				continue
			}
		}
		missing = append(missing, port)
	}
	if len(missing) == 0 {
		return nil
	}
	args := []string{"--permanent"}
	for _, port := range missing {
		args = append(args, "--add-port="+port)
	}
	if err := p.command(ctx, "open the cluster's ports", "firewall-cmd", args...); err != nil {
		return err
	}
	return p.command(ctx, "apply the permanent rules", "firewall-cmd", "--reload")
}

func (p *prep) hosts(ctx context.Context) error {
	if len(p.o.Hosts) == 0 {
		return nil
	}
	cur, _, err := p.read("/etc/hosts")
	if err != nil {
		return err
	}
	if edited, changed := hostsBlock(cur, p.o.Hosts); changed {
		return p.writeFile("/etc/hosts", edited, 0o644, "the cluster's names")
	}
	return nil
}
