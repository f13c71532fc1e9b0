package facts

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// pathDirs is the PATH a kubeadm node's services run with, in lookup order.
var pathDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// runtimeDirs are where container runtimes and kubelet get installed, by packages or by hand.
var runtimeDirs = []string{"/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin", "/sbin", "/opt/bin"}

// collectCommands looks each requested command up in pathDirs under the root.
func (c *collector) collectCommands(f *Facts) {
	f.Commands = []Command{}
	for _, name := range dedupe(c.o.Commands) {
		f.Commands = append(f.Commands, Command{Name: name, Path: c.lookPath(name, pathDirs)})
	}
}

// lookPath returns the first dir/name that is an executable file (or a symlink to one) under the root, as a path
// on the node; "" if none. Names with a slash are not looked up.
func (c *collector) lookPath(name string, dirs []string) string {
	if name == "" || strings.ContainsRune(name, '/') {
		return ""
	}
	for _, d := range dirs {
		p := path.Join(d, name)
		if fi, err := c.statInRoot(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// statInRoot stats p under the root, resolving a final symlink chain inside the root: an absolute link target
// means the root's /, not the host's. Directory symlinks along the way are followed by the OS; on merged-/usr
// systems /bin → usr/bin is relative and works either way.
func (c *collector) statInRoot(p string) (fs.FileInfo, error) {
	if c.real {
		return os.Stat(p)
	}
	for range 40 {
		fi, err := os.Lstat(c.path(p))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return fi, err
		}
		target, err := os.Readlink(c.path(p))
		if err != nil {
			return nil, err
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
	}
	return nil, errors.New("too many levels of symbolic links")
}

// process is one entry of /proc: its comm and argv.
type process struct {
	comm string
	argv []string
}

// processes lists the processes under the root's /proc. Processes that exit while being read are skipped.
func (c *collector) processes() []process {
	ents, err := os.ReadDir(c.path("/proc"))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.warn("list processes: %v", err)
		}
		return nil
	}
	var out []process
	for _, e := range ents {
		if !isPID(e.Name()) {
			continue
		}
		comm, err := c.readTrim("/proc/" + e.Name() + "/comm")
		if err != nil {
			continue
		}
		p := process{comm: comm}
		if b, err := os.ReadFile(c.path("/proc/" + e.Name() + "/cmdline")); err == nil {
			p.argv = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		}
		out = append(out, p)
	}
	return out
}

func isPID(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// running reports whether a process runs the program name: its comm or argv[0] has that base name, or it is a
// script run by python (firewalld is "python3 -s /usr/sbin/firewalld") and the script has it. Other arguments do
// not count: `grep firewalld` is not firewalld.
func running(procs []process, name string) bool {
	for _, p := range procs {
		if p.comm == name {
			return true
		}
		if len(p.argv) > 0 && path.Base(p.argv[0]) == name {
			return true
		}
		if len(p.argv) > 1 && strings.HasPrefix(path.Base(p.argv[0]), "python") {
			for _, a := range p.argv[1:] {
				if !strings.HasPrefix(a, "-") {
					if path.Base(a) == name {
						return true
					}
					break
				}
			}
		}
	}
	return false
}

// collectProcesses fills Runtimes and Firewalld from the binaries under the root and the processes in its /proc.
func (c *collector) collectProcesses(f *Facts) {
	procs := c.processes()
	f.Runtimes = []Runtime{}
	for _, rt := range []struct {
		name    string
		bins    []string // first found is reported
		daemons []string // any running means Running
	}{
		{"containerd", []string{"containerd"}, []string{"containerd"}},
		{"docker", []string{"dockerd", "docker"}, []string{"dockerd"}},
		{"kubelet", []string{"kubelet"}, []string{"kubelet"}},
	} {
		r := Runtime{Name: rt.name}
		for _, b := range rt.bins {
			if r.Path = c.lookPath(b, runtimeDirs); r.Path != "" {
				break
			}
		}
		r.Running = slices.ContainsFunc(rt.daemons, func(d string) bool { return running(procs, d) })
		if r.Path != "" || r.Running {
			f.Runtimes = append(f.Runtimes, r)
		}
	}

	switch {
	case running(procs, "firewalld"):
		f.Firewalld = "running"
	case slices.ContainsFunc([]string{"/usr/sbin/firewalld", "/usr/bin/firewalld", "/sbin/firewalld"},
		func(p string) bool { _, err := c.statInRoot(p); return err == nil }):
		f.Firewalld = "installed"
	default:
		f.Firewalld = "absent"
	}
}

// collectModules reports each requested kernel module: loaded per /proc/modules, built in per modules.builtin or
// /sys/module, available per modules.dep of the running kernel.
func (c *collector) collectModules(f *Facts) {
	f.Modules = []Module{}
	names := dedupe(c.o.Modules)
	if len(names) == 0 {
		return
	}
	loaded := map[string]bool{}
	if b, err := os.ReadFile(c.path("/proc/modules")); err == nil {
		for line := range strings.Lines(string(b)) {
			if fl := strings.Fields(line); len(fl) > 0 {
				loaded[moduleKey(fl[0])] = true
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) { // no /proc/modules: a kernel without module support
		c.warn("read loaded modules: %v", err)
	}

	builtin, onDisk := map[string]bool{}, map[string]bool{}
	if f.Kernel != "" {
		dir := c.modulesDir(f.Kernel)
		if dir == "" {
			c.warn("modules: no /lib/modules/%s; cannot tell which modules modprobe could load", f.Kernel)
		} else {
			c.readModuleList(dir+"/modules.builtin", builtin)
			if !c.readModuleList(dir+"/modules.dep", onDisk) {
				c.warn("modules: no %s/modules.dep; cannot tell which modules modprobe could load", dir)
			}
		}
	}

	for _, n := range names {
		k := moduleKey(n)
		m := Module{Name: n, Loaded: loaded[k]}
		if !m.Loaded && (builtin[k] || c.exists("/sys/module/"+k) || c.working(k)) {
			// /sys/module/NAME without a /proc/modules entry is a built-in module with parameters; a built-in
			// module without parameters shows only by what it provides.
			m.Builtin, m.Loaded = true, true
		}
		m.Available = m.Loaded || onDisk[k]
		f.Modules = append(f.Modules, m)
	}
}

// modulesDir is /lib/modules/KERNEL, or /usr/lib/modules/KERNEL where /lib is not merged; "" if neither exists.
func (c *collector) modulesDir(kernel string) string {
	for _, d := range []string{"/lib/modules/", "/usr/lib/modules/"} {
		if c.exists(d + kernel) {
			return d + kernel
		}
	}
	return ""
}

// readModuleList adds the module names in modules.dep or modules.builtin (paths like kernel/net/bridge/
// br_netfilter.ko.xz, before any ':') to set. It reports whether the file was read.
func (c *collector) readModuleList(p string, set map[string]bool) bool {
	fh, err := os.Open(c.path(p))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.warn("read %s: %v", p, err)
		}
		return false
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		file, _, _ := bytes.Cut(sc.Bytes(), []byte(":"))
		if name, ok := moduleFromPath(string(bytes.TrimSpace(file))); ok {
			set[moduleKey(name)] = true
		}
	}
	if err := sc.Err(); err != nil {
		c.warn("read %s: %v", p, err)
	}
	return true
}

// moduleFromPath is the module name of a .ko path, compressed or not.
func moduleFromPath(p string) (string, bool) {
	base := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	name, ok := strings.CutSuffix(base, ".ko")
	if !ok || name == "" {
		return "", false
	}
	return name, true
}

// moduleKey is the kernel's canonical module name: '-' and '_' are interchangeable, '_' is canonical.
func moduleKey(name string) string { return strings.ReplaceAll(name, "-", "_") }

// working reports whether the kernel already provides what module k does, the way kubeadm and the kernel itself
// tell: bridge netfilter's sysctls, the overlay file system, the IPVS table.
func (c *collector) working(k string) bool {
	switch k {
	case "br_netfilter":
		return c.exists("/proc/sys/net/bridge/bridge-nf-call-iptables")
	case "ip_vs":
		return c.exists("/proc/net/ip_vs")
	case "overlay":
		b, err := os.ReadFile(c.path("/proc/filesystems"))
		if err != nil {
			return false
		}
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == "overlay" {
				return true
			}
		}
	}
	return false
}
