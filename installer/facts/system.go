package facts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// readTrim reads a one-value file such as /proc/sys/kernel/osrelease under the root, trimmed.
func (c *collector) readTrim(p string) (string, error) {
	b, err := os.ReadFile(c.path(p))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// exists reports whether p exists under the root (following symlinks).
func (c *collector) exists(p string) bool {
	_, err := os.Stat(c.path(p))
	return err == nil
}

// collectUname fills Kernel, Machine and Arch: the machine from uname(2) on the real root, else from
// /proc/sys/kernel/arch (older kernels have no such file); the kernel from /proc/sys/kernel/osrelease. It errors only if no kernel release
// could be found.
func (c *collector) collectUname(f *Facts) error {
	var errs []error
	kernel, err := c.readTrim("/proc/sys/kernel/osrelease")
	if err != nil {
		errs = append(errs, err)
	}
	var machine string
	if c.real {
		// uname(2) is what `uname -m` shows, and what the installer chose this agent's arch by.
		u, err := uname()
		if err != nil {
			errs = append(errs, err)
		} else {
			machine = u.machine
			if kernel == "" {
				kernel = u.release
			}
		}
	}
	if machine == "" {
		machine, _ = c.readTrim("/proc/sys/kernel/arch")
	}
	f.Kernel, f.Machine, f.Arch = kernel, machine, NormalizeArch(machine)
	if kernel == "" {
		return fmt.Errorf("read uname: %w", errors.Join(errs...))
	}
	if machine == "" {
		c.warn("read uname machine: /proc/sys/kernel/arch not found")
	}
	return nil
}

// collectIdentity fills Hostname and MachineID.
func (c *collector) collectIdentity(f *Facts) {
	for _, p := range []string{"/proc/sys/kernel/hostname", "/etc/hostname"} {
		if h, err := c.readTrim(p); err == nil && h != "" {
			f.Hostname = h
			break
		}
	}
	if f.Hostname == "" && c.real {
		if u, err := uname(); err == nil {
			f.Hostname = u.nodename
		}
	}
	if f.Hostname == "" {
		c.warn("read hostname: neither /proc/sys/kernel/hostname nor /etc/hostname")
	}
	// An empty or missing machine-id is a fact (a fresh image); preflight judges it, so no warning.
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if id, err := c.readTrim(p); err == nil && id != "" {
			f.MachineID = id
			break
		}
	}
}

// collectCPUMemory fills CPUs from /proc/cpuinfo and MemoryBytes from /proc/meminfo.
func (c *collector) collectCPUMemory(f *Facts) {
	if b, err := os.ReadFile(c.path("/proc/cpuinfo")); err != nil {
		c.warn("read cpuinfo: %v", err)
	} else {
		f.CPUs = countProcessors(b)
	}
	if f.CPUs == 0 && c.real {
		f.CPUs = runtime.NumCPU()
	}
	if f.CPUs == 0 {
		c.warn("read cpuinfo: no processor lines")
	}
	b, err := os.ReadFile(c.path("/proc/meminfo"))
	if err != nil {
		c.warn("read meminfo: %v", err)
		return
	}
	kb, ok := meminfoKB(b, "MemTotal")
	if !ok {
		c.warn("read meminfo: no MemTotal")
		return
	}
	f.MemoryBytes = kb * 1024
}

// countProcessors counts "processor : N" lines.
func countProcessors(cpuinfo []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		k, _, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "processor" {
			n++
		}
	}
	return n
}

// meminfoKB returns the value of key in /proc/meminfo, in kB.
func meminfoKB(meminfo []byte, key string) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(k) != key {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return 0, false
		}
		n, err := strconv.ParseUint(fields[0], 10, 64)
		return n, err == nil
	}
	return 0, false
}

// collectSwap sums the sizes in /proc/swaps. A kernel without swap support has no /proc/swaps: no swap.
func (c *collector) collectSwap(f *Facts) {
	b, err := os.ReadFile(c.path("/proc/swaps"))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		c.warn("read swaps: %v", err)
		return
	}
	total, err := parseSwaps(b)
	if err != nil {
		c.warn("read swaps: %v", err)
	}
	f.SwapBytes = total
}

// parseSwaps returns the total Size of the swap areas in /proc/swaps, in bytes.
func parseSwaps(b []byte) (uint64, error) {
	var total uint64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if n == 1 || len(fields) == 0 { // header: Filename Type Size Used Priority
			continue
		}
		// The file name may contain spaces (escaped as \040, but be lenient): Size is third from the end.
		if len(fields) < 5 {
			return total, fmt.Errorf("line %d: %d fields", n, len(fields))
		}
		kb, err := strconv.ParseUint(fields[len(fields)-3], 10, 64)
		if err != nil {
			return total, fmt.Errorf("line %d: size: %w", n, err)
		}
		total += kb * 1024
	}
	return total, nil
}

// collectInit fills Systemd and CgroupVersion.
func (c *collector) collectInit(f *Facts) {
	f.Systemd = c.exists("/run/systemd/system")
	switch {
	case c.exists("/sys/fs/cgroup/cgroup.controllers"):
		f.CgroupVersion = 2
	case c.exists("/sys/fs/cgroup"):
		f.CgroupVersion = 1
	default:
		c.warn("cgroup: /sys/fs/cgroup not found")
	}
}

// collectSELinux reads the current mode from selinuxfs and the configured one from /etc/selinux/config.
func (c *collector) collectSELinux(f *Facts) {
	if b, err := os.ReadFile(c.path("/etc/selinux/config")); err == nil {
		f.SELinuxConfig = selinuxConfigMode(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		c.warn("read selinux config: %v", err)
	}
	enforce, err := c.readTrim("/sys/fs/selinux/enforce")
	switch {
	case err == nil && enforce == "1":
		f.SELinux = "enforcing"
	case err == nil && enforce == "0":
		f.SELinux = "permissive"
	case err == nil:
		c.warn("read selinux enforce: unexpected %q", clip(enforce))
	case !errors.Is(err, fs.ErrNotExist):
		c.warn("read selinux enforce: %v", err)
	case f.SELinuxConfig == "disabled":
		f.SELinux = "disabled"
	}
}

// selinuxConfigMode is the SELINUX= value in /etc/selinux/config, lower-cased.
func selinuxConfigMode(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && strings.TrimSpace(k) == "SELINUX" {
			return strings.ToLower(strings.Trim(strings.TrimSpace(v), `"'`))
		}
	}
	return ""
}
