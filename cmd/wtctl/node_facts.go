package main

import (
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/installer/facts"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

func init() { nodeCmds = append(nodeCmds, newNodeFactsCmd) }

func newNodeFactsCmd() *cobra.Command {
	var (
		asJSON   bool
		root     string
		paths    []string
		commands []string
		modules  []string
	)
	c := &cobra.Command{
		Use:   "facts",
		Short: "Report what this node is: OS, arch, resources, network, runtimes, modules, commands",
		Long: `Facts reads /proc, /sys and /etc on this node, without running any program, and reports what preflight
needs to judge it. The installer runs 'wtctl node facts --json' on each node over SSH.

Fields that cannot be read are left empty and explained under warnings; only a node with neither os-release
nor a readable kernel release is an error.`,
		Example: `  wtctl node facts
  wtctl node facts --json --path /data/wutong --command socat`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			o := facts.Options{Root: root, Paths: paths}
			if len(commands) > 0 {
				o.Commands = append(facts.DefaultCommands(), commands...)
			}
			if len(modules) > 0 {
				o.Modules = append(facts.DefaultModules(), modules...)
			}
			f, err := facts.Collect(c.Context(), o)
			if err != nil {
				return err
			}
			out := outputFlag{format: "text"}
			if asJSON {
				out.format = "json"
			}
			return out.print(c.OutOrStdout(), f, func(p printer) { printFacts(p, f) })
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the facts as JSON (for the installer)")
	c.Flags().StringArrayVar(&paths, "path", nil,
		"target path to report free disk for, repeatable; replaces the defaults "+strings.Join(facts.DefaultPaths(), ", "))
	c.Flags().StringArrayVar(&commands, "command", nil, "also look this command up on PATH, repeatable")
	c.Flags().StringArrayVar(&modules, "module", nil, "also report this kernel module, repeatable")
	c.Flags().StringVar(&root, "root", "/", "read the node's files under this directory (a mounted image); addresses are then unknown")
	return c
}

// printFacts is the short summary for a person at the node's console.
func printFacts(p printer, f *facts.Facts) {
	row := func(k, format string, a ...any) { p("%-11s "+format+"\n", append([]any{k}, a...)...) }
	row("Host", "%s (machine-id %s)", f.Hostname, factsOrNone(f.MachineID))
	osLine := f.OS.PrettyName
	if osLine == "" {
		osLine = strings.TrimSpace(f.OS.Name + " " + f.OS.Version)
	}
	tags := []string{f.OS.ID, f.OS.VersionID, f.OS.ServicePack}
	row("OS", "%s [%s]", factsOrNone(osLine), strings.Join(factsNonEmpty(tags), " "))
	row("Kernel", "%s, %s (%s)", factsOrNone(f.Kernel), factsOrNone(f.Arch), f.Machine)
	row("Resources", "%d CPUs, %s memory, %s swap", f.CPUs, progress.Bytes(int64(f.MemoryBytes)), factsSwap(f.SwapBytes))
	row("Network", "default %s; addresses %s", factsOrNone(strings.TrimSpace(f.DefaultInterface+" "+f.DefaultIP)),
		factsOrNone(strings.Join(f.IPs, ", ")))
	boot := "no systemd"
	if f.Systemd {
		boot = "systemd"
	}
	row("Init", "%s, cgroup v%d", boot, f.CgroupVersion)
	selinux := factsOrNone(f.SELinux)
	if f.SELinuxConfig != "" && f.SELinuxConfig != f.SELinux {
		selinux += " (" + f.SELinuxConfig + " after reboot)"
	}
	row("SELinux", "%s", selinux)
	row("Firewalld", "%s", f.Firewalld)
	var rts []string
	for _, r := range f.Runtimes {
		s := r.Name
		if r.Running {
			s += " running"
		}
		if r.Path != "" {
			s += " " + r.Path
		}
		rts = append(rts, s)
	}
	row("Runtimes", "%s", factsOrNone(strings.Join(rts, ", ")))
	var ports []string
	for _, l := range f.Listening {
		ports = append(ports, l.Proto+" "+net.JoinHostPort(l.Addr, strconv.Itoa(l.Port)))
	}
	row("Listening", "%s", factsOrNone(strings.Join(ports, ", ")))
	for _, d := range f.Disks {
		where := ""
		if !d.Exists {
			where = " (not yet; on " + d.StatPath + ")"
		}
		row("Disk", "%s%s: %s free of %s", d.Path, where, progress.Bytes(int64(d.FreeBytes)), progress.Bytes(int64(d.TotalBytes)))
	}
	var mods []string
	for _, m := range f.Modules {
		state := "missing"
		switch {
		case m.Builtin:
			state = "built in"
		case m.Loaded:
			state = "loaded"
		case m.Available:
			state = "available"
		}
		mods = append(mods, m.Name+" "+state)
	}
	row("Modules", "%s", factsOrNone(strings.Join(mods, ", ")))
	var missing []string
	for _, cmd := range f.Commands {
		if cmd.Path == "" {
			missing = append(missing, cmd.Name)
		}
	}
	if len(missing) == 0 {
		row("Commands", "all %d found", len(f.Commands))
	} else {
		row("Commands", "missing %s", strings.Join(missing, ", "))
	}
	for _, w := range f.Warnings {
		row("Warning", "%s", w)
	}
}

func factsSwap(n uint64) string {
	if n == 0 {
		return "no"
	}
	return progress.Bytes(int64(n))
}

func factsOrNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func factsNonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
