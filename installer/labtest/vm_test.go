//go:build e2e

// The VM tier's own test: boots two VMs (about a minute under TCG, plus a few minutes to build the image once).
// Run with: go test -tags e2e -run TestVM -v -timeout 30m ./installer/labtest/
package labtest_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/labtest"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

func TestVM(t *testing.T) {
	start := time.Now()
	l := labtest.UpVMs(t, labtest.VMOptions{ID: "vmt", Subnet: 61, N: 2, CPUs: 2, MemoryMiB: 2048})
	t.Logf("2 VMs up in %s", time.Since(start).Round(time.Second))
	if len(l.Hosts) != 2 {
		t.Fatalf("hosts: %+v", l.Hosts)
	}
	ids := map[string]string{}
	for i, h := range l.Hosts {
		if want := []string{"vm1", "vm2"}[i]; h.Name != want || h.IP != "10.99.61."+[]string{"11", "12"}[i] {
			t.Errorf("host %d is %s at %s, want %s at 10.99.61.%d", i, h.Name, h.IP, want, 11+i)
		}
		if h.Persona != "debian12-vm" || h.State != "up" || h.PID <= 0 {
			t.Errorf("%s: %+v", h.Name, h)
		}
		// l.SSH checks the host key strictly against the known_hosts written before the VM booted.
		if got := l.SSH(t, h, "hostname"); got != h.Name {
			t.Errorf("%s: hostname %q", h.Name, got)
		}
		mid := l.SSH(t, h, "cat /etc/machine-id")
		if mid != h.MachineID || len(mid) != 32 {
			t.Errorf("%s: machine-id %q, the lab recorded %q", h.Name, mid, h.MachineID)
		}
		if other, dup := ids[mid]; dup {
			t.Errorf("%s and %s share machine-id %s", other, h.Name, mid)
		}
		ids[mid] = h.Name
		if addrs := l.SSH(t, h, "ip -4 -o addr show scope global"); !strings.Contains(addrs, " "+h.IP+"/24 ") {
			t.Errorf("%s: no %s/24 in\n%s", h.Name, h.IP, addrs)
		}
		if route := l.SSH(t, h, "ip route show default"); !strings.HasPrefix(route, "default via "+l.JumpIP+" ") {
			t.Errorf("%s: default route %q, want via %s", h.Name, route, l.JumpIP)
		}
		if virt := l.SSH(t, h, "systemd-detect-virt || true"); virt != "qemu" && virt != "kvm" {
			t.Errorf("%s: systemd-detect-virt says %q, want qemu or kvm", h.Name, virt)
		} else {
			t.Logf("%s: virtualisation %s, kernel %s", h.Name, virt, l.SSH(t, h, "uname -r"))
		}
		// kubelet wants the unified hierarchy with the cpu, memory and pids controllers (Debian 12's default).
		fs := l.SSH(t, h, "stat -fc %T /sys/fs/cgroup")
		ctrl := l.SSH(t, h, "cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null || true")
		t.Logf("%s: /sys/fs/cgroup is %s (controllers: %s)", h.Name, fs, ctrl)
		if fs != "cgroup2fs" {
			t.Errorf("%s: /sys/fs/cgroup is %s, want cgroup2fs (cgroup v2)", h.Name, fs)
		}
		for _, c := range []string{"cpu", "memory", "pids"} {
			if !slices.Contains(strings.Fields(ctrl), c) {
				t.Errorf("%s: cgroup controller %s missing from %q", h.Name, c, ctrl)
			}
		}
		// What node preparation loads and sets for Kubernetes.
		l.SSH(t, h, "modprobe br_netfilter && modprobe overlay")
		l.SSH(t, h, "test -e /proc/sys/net/bridge/bridge-nf-call-iptables && grep -qw overlay /proc/filesystems")
		if swaps := l.SSH(t, h, "tail -n +2 /proc/swaps"); swaps != "" {
			t.Errorf("%s: swap is on:\n%s", h.Name, swaps)
		}
		// wt's sudo asks for its password, and the lab's password is it.
		if out := l.SSH(t, h, "su - wt -c 'sudo -n true' 2>&1 && echo NOPASSWD || true"); strings.Contains(out, "NOPASSWD") {
			t.Errorf("%s: wt's sudo needs no password", h.Name)
		}
		if got := l.SSH(t, h, "echo '"+l.UserPassword+"' | su - wt -c 'sudo -S -p \"\" id -u'"); got != "0" {
			t.Errorf("%s: sudo as wt with the lab password: %q", h.Name, got)
		}
	}
	vm1, vm2 := l.Host(t, "vm1"), l.Host(t, "vm2")
	l.SSH(t, vm1, "ping -c 3 -W 2 "+vm2.IP)
	l.SSH(t, vm2, "ping -c 1 -W 2 "+vm1.IP)
	t.Logf("memory in vm1: %s", l.SSH(t, vm1, "free -m | sed -n 2p"))
}
