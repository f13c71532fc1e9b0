// Package facts collects what a node is, on the node itself: OS and service pack, arch, kernel, CPUs, memory,
// disk space under the install paths, addresses and the default route, listening ports, kernel modules,
// container runtimes already present, SELinux, firewalld, swap, cgroup version and the commands a kubeadm node
// needs from the OS.
//
// `wtctl node facts --json` runs Collect on each target node over SSH; preflight judges the result on the jump
// host. Collection reads files (/proc, /sys, /etc, /usr, /run, /lib/modules) and never runs programs, so it works
// on minimal servers. Every file is read under Options.Root, so tests use fake roots in testdata/.
//
// Collection is best effort: a field that cannot be read is left zero and explained in Facts.Warnings, and a
// missing optional source (no selinuxfs, no firewalld) is a fact, not a problem. Collect fails only when neither
// os-release nor the kernel identity (uname) can be read, because then the node cannot be judged at all.
package facts

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Facts is what a node is. Every list is sorted or in a documented order, so the JSON is stable.
type Facts struct {
	Hostname         string    `json:"hostname"`
	MachineID        string    `json:"machineID"`
	OS               OS        `json:"os"`
	Arch             string    `json:"arch"`    // GOARCH-style: amd64, arm64, loong64; the raw value if unknown
	Machine          string    `json:"machine"` // raw uname -m: x86_64, aarch64, loongarch64
	Kernel           string    `json:"kernel"`  // uname -r
	CPUs             int       `json:"cpus"`
	MemoryBytes      uint64    `json:"memoryBytes"`      // MemTotal
	Disks            []Disk    `json:"disks"`            // one per requested target path, in the order requested
	IPs              []string  `json:"ips"`              // non-loopback, non-link-local addresses, IPv4 first
	DefaultInterface string    `json:"defaultInterface"` // interface of the IPv4 default route with the lowest metric
	DefaultIP        string    `json:"defaultIP"`        // first IPv4 of DefaultInterface
	Clock            time.Time `json:"clock"`            // UTC, when collected
	Systemd          bool      `json:"systemd"`          // booted with systemd as init (/run/systemd/system exists)
	CgroupVersion    int       `json:"cgroupVersion"`    // 1 or 2 (2 when /sys/fs/cgroup/cgroup.controllers exists); 0 unknown
	SwapBytes        uint64    `json:"swapBytes"`        // total size of active swap from /proc/swaps
	SELinux          string    `json:"selinux"`          // enforcing | permissive | disabled | "" (not present)
	// SELinuxConfig is SELINUX= in /etc/selinux/config (enforcing, permissive, disabled), "" without the file.
	// It is the mode after the next reboot.
	SELinuxConfig string    `json:"selinuxConfig,omitempty"`
	Firewalld     string    `json:"firewalld"` // running | installed | absent
	Runtimes      []Runtime `json:"runtimes"`  // existing docker / containerd / kubelet, by name
	Listening     []Port    `json:"listening"` // by port, then proto, then address
	Modules       []Module  `json:"modules"`   // br_netfilter, overlay, ip_vs (+ requested), in the order requested
	Commands      []Command `json:"commands"`  // requested commands and whether found on PATH, in the order requested
	Warnings      []string  `json:"warnings,omitempty"`
}

// OS is the identity from os-release, completed for Kylin from /etc/.productinfo.
type OS struct {
	ID         string   `json:"id"` // os-release ID, lower-cased: kylin, uos, openeuler, debian, ubuntu, anolis, rocky, centos
	IDLike     []string `json:"idLike,omitempty"`
	Name       string   `json:"name"`
	Version    string   `json:"version"`   // VERSION, e.g. "V10 (Sword)"
	VersionID  string   `json:"versionID"` // VERSION_ID, e.g. "V10", "22.03", "12"
	Codename   string   `json:"codename"`  // VERSION_CODENAME, else the text in parentheses of VERSION: "Sword", "Blue Onyx"
	PrettyName string   `json:"prettyName"`
	// ServicePack is set for Kylin only: Tercel→SP1, Sword→SP2, Lance→SP3, Halberd→SP3-2403.
	ServicePack string `json:"servicePack,omitempty"`
}

// Disk is the free space for one target path.
type Disk struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"` // when false, the nearest existing parent (StatPath) was statted
	// StatPath is the path actually statted: Path, or its nearest existing parent.
	StatPath   string `json:"statPath,omitempty"`
	FreeBytes  uint64 `json:"freeBytes"` // available to unprivileged users (f_bavail)
	TotalBytes uint64 `json:"totalBytes"`
	// Device is st_dev of StatPath: paths with the same Device share a file system and so share its free space.
	Device uint64 `json:"device,omitempty"`
}

// Runtime is a container runtime or kubelet already on the node.
type Runtime struct {
	Name    string `json:"name"`           // docker | containerd | kubelet
	Path    string `json:"path,omitempty"` // the binary, if found (dockerd before docker)
	Running bool   `json:"running"`
}

// Port is a listening socket.
type Port struct {
	Proto string `json:"proto"` // tcp | tcp6 | udp | udp6
	Addr  string `json:"addr"`  // "0.0.0.0", "::", "127.0.0.1", ...
	Port  int    `json:"port"`
}

// Module is a kernel module and whether the running kernel has it.
type Module struct {
	Name string `json:"name"` // as requested; '-' and '_' are the same to the kernel
	// Loaded means the module's code is in the running kernel: listed in /proc/modules, or built in.
	Loaded bool `json:"loaded"`
	// Builtin means compiled into the kernel (modules.builtin, or /sys/module/NAME without a /proc/modules entry).
	Builtin bool `json:"builtin,omitempty"`
	// Available means loaded, built in, or a .ko under /lib/modules/$(uname -r) per modules.dep: modprobe would work.
	Available bool `json:"available"`
}

// Command is a command looked up on PATH.
type Command struct {
	Name string `json:"name"`
	Path string `json:"path,omitempty"` // "" when not found
}

// Options says where and what to collect. The zero value collects the defaults from "/".
type Options struct {
	// Root is the file system root to read; default "/". /proc, /sys, /etc, /usr, /run, /lib/modules and the
	// target paths are read under it. Only for "/" does uname(2) fill gaps (kernels without /proc/sys/kernel/arch)
	// and are network interfaces listed; under any other root the addresses are unknown.
	Root     string
	Paths    []string         // target paths to report free disk for; default DefaultPaths()
	Commands []string         // commands to look up on PATH; default DefaultCommands()
	Modules  []string         // kernel modules to report; default DefaultModules()
	Now      func() time.Time // default time.Now

	// interfaces lists network interfaces and their addresses. Tests set it for fake roots; nil means
	// net.Interfaces for the root "/" and none (with a warning) for any other root.
	interfaces func() ([]iface, error)
}

// iface is one network interface with its addresses in kernel order (primary first).
type iface struct {
	Name     string
	Loopback bool
	Addrs    []netip.Addr
}

// DefaultPaths are the target paths whose free space preflight judges: the payload, the container runtime's
// images, kubelet's pods and the registry's data.
func DefaultPaths() []string {
	return []string{"/opt/wutong", "/var/lib/containerd", "/var/lib/kubelet", "/var/lib/wutong"}
}

// DefaultCommands are the commands a kubeadm node needs from the OS; the bundle brings kubeadm, kubelet,
// containerd, runc, crictl, CNI plugins, conntrack, socat, ipset and ebtables itself.
//   - systemctl: run containerd and kubelet as services
//   - mount, umount: kubelet volumes
//   - nsenter: kubelet port-forward and exec into network namespaces
//   - ip: CNI plugins and kube-proxy set up links, addresses and routes
//   - iptables: kube-proxy and CNI rules (the OS's variant, legacy or nft, must be the one in use)
//   - modprobe: load br_netfilter, overlay, ip_vs
//   - sysctl: set net.bridge.bridge-nf-call-iptables and net.ipv4.ip_forward
//   - tar: unpack the payload
//   - ethtool, tc: kubeadm preflight checks and CNI bandwidth shaping
//   - touch: kubeadm and scripts create marker files
func DefaultCommands() []string {
	return []string{"systemctl", "mount", "umount", "nsenter", "ip", "iptables", "modprobe", "sysctl", "tar",
		"ethtool", "tc", "touch"}
}

// DefaultModules are the kernel modules Kubernetes networking needs: bridge netfilter for kube-proxy and CNI,
// overlay for containerd's snapshotter, ip_vs for kube-proxy in IPVS mode.
func DefaultModules() []string { return []string{"br_netfilter", "overlay", "ip_vs"} }

func (o Options) withDefaults() Options {
	if o.Root == "" {
		o.Root = "/"
	}
	o.Root = filepath.Clean(o.Root)
	if o.Paths == nil {
		o.Paths = DefaultPaths()
	}
	if o.Commands == nil {
		o.Commands = DefaultCommands()
	}
	if o.Modules == nil {
		o.Modules = DefaultModules()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// collector reads one root and gathers warnings.
type collector struct {
	o        Options
	real     bool // the root is the running system's "/", so syscalls and net.Interfaces describe it
	warnings []string
}

// path is p (absolute, as on the node) under the root.
func (c *collector) path(p string) string { return filepath.Join(c.o.Root, p) }

func (c *collector) warn(format string, a ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, a...))
}

// Collect reads the facts of the node whose file system is at o.Root. Problems with single fields are
// reported in Facts.Warnings; it fails only if both os-release and uname are unreadable, or ctx ends.
func Collect(ctx context.Context, o Options) (*Facts, error) {
	o = o.withDefaults()
	c := &collector{o: o, real: o.Root == "/"}
	f := &Facts{Clock: o.Now().UTC()}

	osErr := c.collectOS(f)
	unameErr := c.collectUname(f)
	if osErr != nil && unameErr != nil {
		return nil, fmt.Errorf("collect facts under %s: %w", o.Root, errors.Join(osErr, unameErr))
	}
	if osErr != nil {
		c.warn("%v", osErr)
	}
	if unameErr != nil {
		c.warn("%v", unameErr)
	}

	steps := []func(*Facts){
		c.collectIdentity,
		c.collectCPUMemory,
		c.collectSwap,
		c.collectDisks,
		c.collectNetwork,
		c.collectListening,
		c.collectInit,
		c.collectSELinux,
		c.collectProcesses,
		c.collectModules,
		c.collectCommands,
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("collect facts: %w", err)
		}
		step(f)
	}
	f.Warnings = c.warnings
	return f, nil
}

// NormalizeArch maps uname -m to GOARCH: x86_64/amd64→amd64, aarch64/arm64→arm64, loongarch64/loong64→loong64;
// anything else is returned unchanged.
func NormalizeArch(machine string) string {
	switch strings.ToLower(strings.TrimSpace(machine)) {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "loongarch64", "loong64":
		return "loong64"
	}
	return machine
}

// dedupe returns the non-empty strings of in, first occurrence kept, in order.
func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
