package facts

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 28, 6, 0, 0, 0, time.FixedZone("CST", 8*3600))

// fakeInterfaces returns an interfaces hook listing ifs.
func fakeInterfaces(ifs ...iface) func() ([]iface, error) {
	return func() ([]iface, error) { return ifs, nil }
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestCollectFakeRoots(t *testing.T) {
	tests := []struct {
		root  string
		ifs   []iface
		want  Facts
		disks []Disk // Path, Exists, StatPath only
	}{
		{
			root: "kylin-sp2-broken",
			ifs: []iface{
				{Name: "lo", Loopback: true, Addrs: addrs("127.0.0.1", "::1")},
				{Name: "eth1", Addrs: addrs("10.0.0.21")},
				{Name: "eth0", Addrs: addrs("fe80::5054:ff:fe12:3456", "192.168.10.21", "192.168.10.99", "2001:db8::21")},
				{Name: "docker0", Addrs: addrs("172.17.0.1")},
				{Name: "virbr0", Addrs: addrs("169.254.3.3", "10.0.0.21")},
			},
			want: Facts{
				Hostname:  "kylin-sp2-broken",
				MachineID: "5b1f0e9c2d3a4b5c8d7e6f0a1b2c3d4e",
				OS: OS{ID: "kylin", Name: "Kylin Linux Advanced Server", Version: "V10 (Sword)", VersionID: "V10",
					Codename: "Sword", PrettyName: "Kylin Linux Advanced Server V10 (Sword)", ServicePack: "SP2"},
				Arch:             "arm64",
				Machine:          "aarch64",
				Kernel:           "4.19.90-24.4.v2101.ky10.aarch64",
				CPUs:             4,
				MemoryBytes:      7889604 * 1024,
				IPs:              []string{"10.0.0.21", "172.17.0.1", "192.168.10.21", "192.168.10.99", "2001:db8::21"},
				DefaultInterface: "eth0",
				DefaultIP:        "192.168.10.21",
				Clock:            testNow.UTC(),
				Systemd:          true,
				CgroupVersion:    1,
				SwapBytes:        (4194300 + 2097152) * 1024,
				SELinux:          "enforcing",
				SELinuxConfig:    "enforcing",
				Firewalld:        "running",
				Runtimes: []Runtime{
					{Name: "containerd", Path: "/usr/bin/containerd", Running: true},
					{Name: "kubelet", Path: "/usr/bin/kubelet"},
				},
				Listening: []Port{
					{Proto: "tcp", Addr: "0.0.0.0", Port: 22},
					{Proto: "tcp6", Addr: "::", Port: 22},
					{Proto: "udp", Addr: "127.0.0.1", Port: 323},
					{Proto: "udp6", Addr: "::1", Port: 323},
					{Proto: "tcp6", Addr: "::", Port: 6443},
					{Proto: "tcp", Addr: "127.0.0.1", Port: 10248},
				},
				Modules: []Module{
					{Name: "br_netfilter", Available: true},
					{Name: "overlay", Loaded: true, Available: true},
					{Name: "ip_vs"},
				},
				Commands: []Command{
					{Name: "systemctl", Path: "/usr/bin/systemctl"},
					{Name: "mount", Path: "/usr/bin/mount"},
					{Name: "umount", Path: "/usr/bin/umount"},
					{Name: "nsenter", Path: "/usr/bin/nsenter"},
					{Name: "ip", Path: "/usr/sbin/ip"},
					{Name: "iptables", Path: "/usr/sbin/iptables"}, // relative symlink
					{Name: "modprobe", Path: "/usr/sbin/modprobe"}, // absolute symlink, resolved in the root
					{Name: "sysctl", Path: "/usr/sbin/sysctl"},
					{Name: "tar", Path: "/usr/bin/tar"},
					{Name: "ethtool"}, // not executable
					{Name: "tc"},      // dangling symlink
					{Name: "touch", Path: "/usr/bin/touch"},
				},
			},
			disks: []Disk{
				{Path: "/opt/wutong", Exists: true, StatPath: "/opt/wutong"},
				{Path: "/var/lib/containerd", StatPath: "/"},
				{Path: "/var/lib/kubelet", StatPath: "/"},
				{Path: "/var/lib/wutong", StatPath: "/"},
			},
		},
		{
			root: "debian12",
			ifs: []iface{
				{Name: "lo", Loopback: true, Addrs: addrs("127.0.0.1", "::1")},
				{Name: "ens18", Addrs: addrs("192.168.20.5")},
			},
			want: Facts{
				Hostname:  "deb12",                            // from /etc/hostname: no /proc/sys/kernel/hostname
				MachineID: "0f9e8d7c6b5a49382716051423324150", // /etc/machine-id is empty: dbus's
				OS: OS{ID: "debian", Name: "Debian GNU/Linux", Version: "12 (bookworm)", VersionID: "12",
					Codename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
				Arch:             "amd64",
				Machine:          "x86_64",
				Kernel:           "6.1.0-18-amd64",
				CPUs:             2,
				MemoryBytes:      4012345 * 1024,
				IPs:              []string{"192.168.20.5"},
				DefaultInterface: "ens18",
				DefaultIP:        "192.168.20.5",
				Clock:            testNow.UTC(),
				Systemd:          true,
				CgroupVersion:    2,
				Firewalld:        "absent",
				Runtimes:         []Runtime{},
				Listening:        []Port{{Proto: "tcp", Addr: "0.0.0.0", Port: 22}},
				Modules: []Module{
					{Name: "br_netfilter", Loaded: true, Builtin: true, Available: true},
					{Name: "overlay", Loaded: true, Available: true},
					{Name: "ip_vs", Available: true},
				},
				Commands: []Command{
					{Name: "systemctl", Path: "/usr/bin/systemctl"},
					{Name: "mount", Path: "/usr/bin/mount"},
					{Name: "umount", Path: "/usr/bin/umount"},
					{Name: "nsenter", Path: "/usr/bin/nsenter"},
					{Name: "ip", Path: "/usr/sbin/ip"},
					{Name: "iptables", Path: "/usr/sbin/iptables"},
					{Name: "modprobe", Path: "/usr/sbin/modprobe"},
					{Name: "sysctl", Path: "/usr/sbin/sysctl"},
					{Name: "tar", Path: "/usr/bin/tar"},
					{Name: "ethtool", Path: "/usr/sbin/ethtool"},
					{Name: "tc", Path: "/usr/sbin/tc"},
					{Name: "touch", Path: "/usr/bin/touch"},
				},
			},
			disks: []Disk{
				{Path: "/opt/wutong", StatPath: "/"},
				{Path: "/var/lib/containerd", Exists: true, StatPath: "/var/lib/containerd"},
				{Path: "/var/lib/kubelet", StatPath: "/var/lib"},
				{Path: "/var/lib/wutong", StatPath: "/var/lib"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			got, err := Collect(context.Background(), Options{
				Root:       filepath.Join("testdata", "roots", tt.root),
				Now:        func() time.Time { return testNow },
				interfaces: fakeInterfaces(tt.ifs...),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Disks) != len(tt.disks) {
				t.Fatalf("disks: %+v", got.Disks)
			}
			for i, d := range got.Disks {
				if d.TotalBytes == 0 || d.FreeBytes > d.TotalBytes {
					t.Errorf("disk %s: free %d of %d", d.Path, d.FreeBytes, d.TotalBytes)
				}
				if d := (Disk{Path: d.Path, Exists: d.Exists, StatPath: d.StatPath}); d != tt.disks[i] {
					t.Errorf("disk %d = %+v, want %+v", i, d, tt.disks[i])
				}
			}
			got.Disks = nil
			if !reflect.DeepEqual(*got, tt.want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				w, _ := json.MarshalIndent(tt.want, "", "  ")
				t.Errorf("facts differ\ngot:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

// writeRoot creates files (path → content) under a temp root.
func writeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCollectKylinProductInfo(t *testing.T) {
	root := writeRoot(t, map[string]string{
		"etc/os-release":             "NAME=\"Kylin Linux Advanced Server\"\nVERSION=\"V10\"\nID=\"kylin\"\nVERSION_ID=\"V10\"\n",
		"etc/.productinfo":           "Kylin Linux Advanced Server\nrelease V10 (SP3) /(Halberd)-loongarch64-Build20/20240426\n",
		"proc/sys/kernel/osrelease":  "4.19.90-89.11.v2401.ky10.loongarch64\n",
		"proc/sys/kernel/arch":       "loongarch64\n",
		"usr/lib/os-release":         "ID=ignored\n",
		"proc/sys/kernel/hostname":   "k1\n",
		"sys/fs/cgroup/cgroup.procs": "",
	})
	f, err := Collect(context.Background(), Options{Root: root, interfaces: fakeInterfaces()})
	if err != nil {
		t.Fatal(err)
	}
	if f.OS.ID != "kylin" || f.OS.Codename != "Halberd" || f.OS.ServicePack != "SP3-2403" {
		t.Errorf("os = %+v", f.OS)
	}
	if f.Arch != "loong64" || f.Machine != "loongarch64" {
		t.Errorf("arch %q machine %q", f.Arch, f.Machine)
	}
	if f.CgroupVersion != 1 || f.Systemd || f.Firewalld != "absent" || f.SELinux != "" {
		t.Errorf("cgroup %d systemd %v firewalld %q selinux %q", f.CgroupVersion, f.Systemd, f.Firewalld, f.SELinux)
	}
	// Missing sources are recorded, and the ones that make facts incomplete are warned about.
	warned := strings.Join(f.Warnings, "\n")
	for _, w := range []string{"read cpuinfo", "read meminfo", "no /lib/modules/4.19.90-89.11.v2401.ky10.loongarch64"} {
		if !strings.Contains(warned, w) {
			t.Errorf("no warning %q in:\n%s", w, warned)
		}
	}
	for _, w := range []string{"selinux", "firewalld", "swaps", "os-release"} {
		if strings.Contains(warned, w) {
			t.Errorf("warning about optional %s:\n%s", w, warned)
		}
	}
}

func TestCollectPartial(t *testing.T) {
	t.Run("neither os-release nor uname", func(t *testing.T) {
		root := writeRoot(t, map[string]string{"etc/hostname": "x\n"})
		if f, err := Collect(context.Background(), Options{Root: root}); err == nil {
			t.Fatalf("no error; facts %+v", f)
		} else if !strings.Contains(err.Error(), "read os-release") || !strings.Contains(err.Error(), "read uname") {
			t.Errorf("error does not name both sources: %v", err)
		}
	})
	t.Run("only uname", func(t *testing.T) {
		root := writeRoot(t, map[string]string{"proc/sys/kernel/osrelease": "6.6.0\n"})
		f, err := Collect(context.Background(), Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		if f.Kernel != "6.6.0" || !strings.Contains(strings.Join(f.Warnings, "\n"), "read os-release") {
			t.Errorf("kernel %q warnings %q", f.Kernel, f.Warnings)
		}
		if !strings.Contains(strings.Join(f.Warnings, "\n"), "interfaces: only known for the root /") {
			t.Errorf("no interfaces warning: %q", f.Warnings)
		}
	})
	t.Run("only os-release, malformed line", func(t *testing.T) {
		root := writeRoot(t, map[string]string{"usr/lib/os-release": "ID=rocky\nbroken\nVERSION_ID=9.3\n"})
		f, err := Collect(context.Background(), Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		w := strings.Join(f.Warnings, "\n")
		if f.OS.ID != "rocky" || f.OS.VersionID != "9.3" || !strings.Contains(w, "line 2") || !strings.Contains(w, "read uname") {
			t.Errorf("os %+v warnings %q", f.OS, f.Warnings)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Collect(ctx, Options{Root: filepath.Join("testdata", "roots", "debian12")}); err == nil {
			t.Fatal("no error from a cancelled context")
		}
	})
}

// TestCollectRealRoot runs on whatever machine runs the tests: it must be sane everywhere.
func TestCollectRealRoot(t *testing.T) {
	f, err := Collect(context.Background(), Options{Paths: []string{"/", "/does/not/exist/yet"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("warnings: %q", f.Warnings)
	if f.Arch != runtime.GOARCH {
		t.Errorf("arch %q (machine %q), want %q", f.Arch, f.Machine, runtime.GOARCH)
	}
	if f.CPUs < 1 || f.MemoryBytes == 0 || f.Kernel == "" || f.Hostname == "" {
		t.Errorf("cpus %d memory %d kernel %q hostname %q", f.CPUs, f.MemoryBytes, f.Kernel, f.Hostname)
	}
	if len(f.Disks) != 2 || !f.Disks[0].Exists || f.Disks[0].TotalBytes == 0 || f.Disks[1].Exists || f.Disks[1].StatPath != "/" {
		t.Errorf("disks %+v", f.Disks)
	}
	if f.Clock.Location() != time.UTC || time.Since(f.Clock) > time.Minute {
		t.Errorf("clock %v", f.Clock)
	}
	if f.CgroupVersion != 1 && f.CgroupVersion != 2 {
		t.Errorf("cgroup version %d", f.CgroupVersion)
	}
	for _, ip := range f.IPs {
		if a := netip.MustParseAddr(ip); a.IsLoopback() || a.IsLinkLocalUnicast() {
			t.Errorf("ip %s should be left out", ip)
		}
	}
}

func TestNormalizeArch(t *testing.T) {
	for in, want := range map[string]string{
		"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "loongarch64": "loong64",
		"loong64": "loong64", "riscv64": "riscv64", "mips64": "mips64", "": "",
	} {
		if got := NormalizeArch(in); got != want {
			t.Errorf("NormalizeArch(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseHexAddrPort(t *testing.T) {
	tests := []struct {
		in, addr string
		port     int
		bad      bool
	}{
		{in: "0100007F:1F90", addr: "127.0.0.1", port: 8080},
		{in: "00000000:0016", addr: "0.0.0.0", port: 22},
		{in: "150AA8C0:192B", addr: "192.168.10.21", port: 6443},
		{in: "00000000000000000000000001000000:0035", addr: "::1", port: 53},
		{in: "B80D0120000000000000000021000000:01BB", addr: "2001:db8::21", port: 443},
		{in: "0000000000000000FFFF00000100007F:0050", addr: "127.0.0.1", port: 80}, // v4-mapped
		{in: "0100007F", bad: true},
		{in: "0100007:0016", bad: true},
		{in: "0100007F:XYZ", bad: true},
		{in: "0100007F:10000", bad: true},
	}
	for _, tt := range tests {
		a, p, err := parseHexAddrPort(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: no error", tt.in)
			}
			continue
		}
		if err != nil || a.String() != tt.addr || p != tt.port {
			t.Errorf("%s = %v, %d, %v; want %s, %d", tt.in, a, p, err, tt.addr, tt.port)
		}
	}
}

func TestDefaultRouteInterface(t *testing.T) {
	const head = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	tests := []struct{ name, route, want string }{
		{"lowest metric", head + "a\t00000000\t01\t0003\t0\t0\t600\t00000000\t0\t0\t0\nb\t00000000\t01\t0003\t0\t0\t100\t00000000\t0\t0\t0\n", "b"},
		{"route down", head + "a\t00000000\t01\t0002\t0\t0\t0\t00000000\t0\t0\t0\n", ""},
		{"no default (air-gapped)", head + "a\t0014A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		if got := defaultRouteInterface([]byte(tt.route)); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestParseSwaps(t *testing.T) {
	const head = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
	tests := []struct {
		in   string
		want uint64
		bad  bool
	}{
		{head, 0, false},
		{head + "/dev/sda2 partition 1024 0 -2\n/swap\\040file file 2048 12 -3\n", 3072 * 1024, false},
		{head + "/dev/sda2 partition x 0 -2\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSwaps([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.bad {
			t.Errorf("parseSwaps(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestModuleFromPath(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/net/bridge/br_netfilter.ko":      "br_netfilter",
		"kernel/net/netfilter/ipvs/ip_vs.ko.xz":  "ip_vs",
		"kernel/fs/overlayfs/overlay.ko.zst":     "overlay",
		"updates/dkms/snd-hda-intel.ko.gz":       "snd-hda-intel",
		"kernel/net/bridge/br_netfilter.ko.orig": "",
		"":                                       "",
	} {
		got, ok := moduleFromPath(in)
		if got != want || ok != (want != "") {
			t.Errorf("moduleFromPath(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if moduleKey("nf-conntrack") != moduleKey("nf_conntrack") {
		t.Error("'-' and '_' should be the same module")
	}
}

func TestRunning(t *testing.T) {
	procs := []process{
		{comm: "python3", argv: []string{"/usr/bin/python3", "-s", "/usr/sbin/firewalld", "--nofork"}},
		{comm: "grep", argv: []string{"grep", "kubelet"}},
		{comm: "containerd-shim", argv: []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io"}},
		{comm: "dockerd", argv: []string{"/usr/bin/dockerd"}},
	}
	for name, want := range map[string]bool{"firewalld": true, "kubelet": false, "containerd": false, "dockerd": true} {
		if got := running(procs, name); got != want {
			t.Errorf("running(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestSELinuxAndFirewalld(t *testing.T) {
	tests := []struct {
		name                  string
		files                 map[string]string
		selinux, config, fwld string
	}{
		{"nothing", map[string]string{}, "", "", "absent"},
		{"config disabled, no selinuxfs", map[string]string{"etc/selinux/config": "# x\nSELINUX=disabled\n"}, "disabled", "disabled", "absent"},
		{"config enforcing, no selinuxfs (selinux=0 on the kernel line)", map[string]string{"etc/selinux/config": "SELINUX=enforcing\n"}, "", "enforcing", "absent"},
		{"permissive now, enforcing after reboot", map[string]string{"etc/selinux/config": "SELINUX=Enforcing\n", "sys/fs/selinux/enforce": "0"}, "permissive", "enforcing", "absent"},
		{"firewalld installed, stopped", map[string]string{"usr/sbin/firewalld": "#!/usr/bin/python3\n", "proc/1/comm": "systemd\n"}, "", "", "installed"},
		{"firewalld running by argv only", map[string]string{"proc/7/comm": "python3\n", "proc/7/cmdline": "/usr/bin/python3\x00-s\x00/usr/sbin/firewalld\x00"}, "", "", "running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &collector{o: Options{Root: writeRoot(t, tt.files)}.withDefaults()}
			var f Facts
			c.collectSELinux(&f)
			c.collectProcesses(&f)
			if f.SELinux != tt.selinux || f.SELinuxConfig != tt.config || f.Firewalld != tt.fwld {
				t.Errorf("selinux %q config %q firewalld %q; want %q %q %q", f.SELinux, f.SELinuxConfig, f.Firewalld, tt.selinux, tt.config, tt.fwld)
			}
			if len(c.warnings) > 0 {
				t.Errorf("warnings: %q", c.warnings)
			}
		})
	}
}
