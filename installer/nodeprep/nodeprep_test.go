package nodeprep

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEdits(t *testing.T) {
	fstab := "UUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n# /old none swap sw 0 0\nUUID=2 /data xfs defaults 0 0"
	got, changed := commentSwap(fstab)
	want := "UUID=1 / ext4 defaults 0 1\n# disabled by wutong-offline (kubelet needs swap off): /swapfile none swap sw 0 0\n# /old none swap sw 0 0\nUUID=2 /data xfs defaults 0 0"
	if !changed || got != want {
		t.Errorf("commentSwap:\n%s", got)
	}
	if again, changed := commentSwap(got); changed || again != got {
		t.Errorf("commentSwap is not idempotent")
	}

	entries := []HostEntry{{"10.0.0.1", []string{"cp1"}}, {"10.0.0.1", []string{"registry.wutong.local"}}}
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1 localhost\n", "127.0.0.1 localhost\n" + hostsBegin + "\n10.0.0.1\tcp1\n10.0.0.1\tregistry.wutong.local\n" + hostsEnd + "\n"},
		{"127.0.0.1 localhost", "127.0.0.1 localhost\n" + hostsBegin + "\n10.0.0.1\tcp1\n10.0.0.1\tregistry.wutong.local\n" + hostsEnd + "\n"},
		{"a\n" + hostsBegin + "\n9.9.9.9\told\n" + hostsEnd + "\nb\n", "a\n" + hostsBegin + "\n10.0.0.1\tcp1\n10.0.0.1\tregistry.wutong.local\n" + hostsEnd + "\nb\n"},
	} {
		got, changed := hostsBlock(tc.in, entries)
		if got != tc.want || !changed {
			t.Errorf("hostsBlock(%q) =\n%q\nwant\n%q", tc.in, got, tc.want)
		}
		if _, changed := hostsBlock(got, entries); changed {
			t.Errorf("hostsBlock is not idempotent on %q", got)
		}
	}

	cfg := "# comment SELINUX=enforcing\nSELINUX=enforcing\nSELINUXTYPE=targeted\n"
	if got, changed := selinuxPermissive(cfg); !changed || got != "# comment SELINUX=enforcing\nSELINUX=permissive\nSELINUXTYPE=targeted\n" {
		t.Errorf("selinuxPermissive: %q", got)
	}
	if _, changed := selinuxPermissive("SELINUX=disabled\n"); changed {
		t.Error("selinuxPermissive changed disabled")
	}
}

// fakeNode is a root directory shaped like a freshly installed Kylin server with swap, SELinux enforcing and
// firewalld running; its Exec plays swapoff, modprobe and firewall-cmd on that tree.
type fakeNode struct {
	root  string
	calls []string
	ports map[string]bool
}

func newFakeNode(t *testing.T) *fakeNode {
	n := &fakeNode{root: t.TempDir(), ports: map[string]bool{}}
	for p, c := range map[string]string{
		"/proc/swaps":                   "Filename\tType\tSize\tUsed\tPriority\n/swapfile file\t2097148\t0\t-2\n",
		"/proc/filesystems":             "nodev\tproc\nnodev\toverlay\n\text4\n",
		"/proc/sys/net/ipv4/ip_forward": "0\n",
		"/proc/321/comm":                "firewalld\n",
		"/proc/sys/kernel/osrelease":    "4.19.90-24.4.v2101.ky10.x86_64\n",
		"/etc/os-release":               "NAME=\"Kylin Linux Advanced Server\"\nVERSION=\"V10 (Sword)\"\nID=\"kylin\"\nVERSION_ID=\"V10\"\n",
		"/etc/fstab":                    "UUID=1 / xfs defaults 0 0\n/swapfile none swap defaults 0 0\n",
		"/etc/selinux/config":           "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
		"/sys/fs/selinux/enforce":       "1",
		"/etc/hosts":                    "127.0.0.1 localhost\n",
	} {
		n.write(t, p, c)
	}
	return n
}

func (n *fakeNode) write(t *testing.T, p, c string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(n.root, p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.root, p), []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (n *fakeNode) exec(_ context.Context, name string, args ...string) (string, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	n.calls = append(n.calls, line)
	w := func(p, c string) error {
		os.MkdirAll(filepath.Dir(filepath.Join(n.root, p)), 0o755)
		return os.WriteFile(filepath.Join(n.root, p), []byte(c), 0o644)
	}
	switch {
	case line == "swapoff -a":
		return "", w("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n")
	case line == "modprobe br_netfilter":
		w("/proc/sys/net/bridge/bridge-nf-call-iptables", "0\n")
		w("/proc/sys/net/bridge/bridge-nf-call-ip6tables", "0\n")
		return "", nil
	case strings.HasPrefix(line, "firewall-cmd --permanent --query-port="):
		if n.ports[strings.TrimPrefix(line, "firewall-cmd --permanent --query-port=")] {
			return "yes\n", nil
		}
		return "no\n", fmt.Errorf("exit status 1")
	case strings.HasPrefix(line, "firewall-cmd --permanent --add-port="):
		for _, a := range args[1:] {
			n.ports[strings.TrimPrefix(a, "--add-port=")] = true
		}
		return "success\n", nil
	case line == "firewall-cmd --reload":
		return "success\n", nil
	}
	return "", fmt.Errorf("fake node: unexpected command %q", line)
}

func (n *fakeNode) read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// snapshot lists every file with its content.
func (n *fakeNode) snapshot(t *testing.T) map[string]string {
	out := map[string]string{}
	filepath.WalkDir(n.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		}
		return nil
	})
	return out
}

func (n *fakeNode) options() Options {
	return Options{Root: n.root, Exec: n.exec, Ports: []string{"6443/tcp", "10250/tcp"},
		Hosts: []HostEntry{{"10.99.0.11", []string{"cp1"}}, {"10.99.0.11", []string{"registry.wutong.local"}}}}
}

func targets(r *Result) []string {
	var out []string
	for _, c := range r.Changes {
		out = append(out, c.Kind+" "+c.Target)
	}
	return out
}

func TestApplyThenNothing(t *testing.T) {
	n := newFakeNode(t)
	res, err := Apply(t.Context(), n.options())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"command swapoff -a",
		"file /etc/fstab",
		"command modprobe br_netfilter",
		"file /etc/modules-load.d/wutong.conf",
		"sysctl net.bridge.bridge-nf-call-ip6tables=1",
		"sysctl net.bridge.bridge-nf-call-iptables=1",
		"sysctl net.ipv4.ip_forward=1",
		"file /etc/sysctl.d/99-wutong.conf",
		"file /sys/fs/selinux/enforce",
		"file /etc/selinux/config",
		"command firewall-cmd --permanent --add-port=6443/tcp --add-port=10250/tcp",
		"command firewall-cmd --reload",
		"file /etc/hosts",
	}
	if got := targets(res); !slices.Equal(got, want) {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for p, want := range map[string]string{
		"/proc/sys/net/ipv4/ip_forward":   "1\n",
		"/sys/fs/selinux/enforce":         "0",
		"/etc/selinux/config":             "SELINUX=permissive\nSELINUXTYPE=targeted\n",
		"/etc/modules-load.d/wutong.conf": "# Written by wtctl (wutong-offline): loaded at boot for Kubernetes.\nbr_netfilter\noverlay\n",
	} {
		if got := n.read(t, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if !strings.Contains(n.read(t, "/etc/fstab"), "# disabled by wutong-offline") || !strings.Contains(n.read(t, "/etc/hosts"), "10.99.0.11\tregistry.wutong.local") {
		t.Errorf("fstab or hosts not edited:\n%s\n%s", n.read(t, "/etc/fstab"), n.read(t, "/etc/hosts"))
	}

	// A second run changes nothing and runs only queries.
	before := n.snapshot(t)
	n.calls = nil
	res, err = Apply(t.Context(), n.options())
	if err != nil || len(res.Changes) != 0 {
		t.Fatalf("second run: %v, %v", targets(res), err)
	}
	for _, c := range n.calls {
		if !strings.Contains(c, "--query-port") {
			t.Errorf("second run ran %q", c)
		}
	}
	if after := n.snapshot(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("second run changed files")
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	n := newFakeNode(t)
	before := n.snapshot(t)
	o := n.options()
	o.DryRun = true
	res, err := Apply(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) < 10 || !res.DryRun {
		t.Fatalf("dry run reported %v", targets(res))
	}
	for _, c := range n.calls {
		if !strings.Contains(c, "--query-port") {
			t.Errorf("dry run ran %q", c)
		}
	}
	if after := n.snapshot(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("dry run changed files")
	}
}

func TestApplyErrors(t *testing.T) {
	n := newFakeNode(t)
	o := n.options()
	o.Firewall = "maybe"
	if _, err := Apply(t.Context(), o); err == nil || !strings.Contains(err.Error(), "open, stop or leave") {
		t.Errorf("bad firewall mode: %v", err)
	}
	o = n.options()
	o.Modules = []string{"overlay"} // br_netfilter never loaded: its sysctls cannot be set
	_, err := Apply(t.Context(), o)
	if err == nil || !strings.Contains(err.Error(), "net.bridge.bridge-nf-call-ip6tables does not exist") {
		t.Errorf("missing sysctl: %v", err)
	}
}
