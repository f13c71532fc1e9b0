package preflight

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/facts"
	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/installer/remote/remotetest"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
)

const clusterYAML = `apiVersion: wutong.io/v1alpha1
kind: Cluster
metadata: {name: t}
spec:
  ssh: {password: pw}
  kubernetes: {serviceCIDR: 10.96.0.0/16}
  hosts:
    - {name: cp1, address: 10.99.0.11, roles: [control-plane, registry]}
    - {name: w1, address: 10.99.0.12, roles: [worker]}
`

func testCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Parse("cluster.yaml", []byte(clusterYAML), cluster.ParseOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// healthy is a node with nothing to report.
func healthy(name, ip string) *facts.Facts {
	return &facts.Facts{
		Hostname: name, MachineID: "id-" + name, Arch: "amd64", Machine: "x86_64", Kernel: "6.1.0",
		OS:   facts.OS{ID: "kylin", VersionID: "V10", Version: "V10 (Sword)", Codename: "Sword", ServicePack: "SP2", PrettyName: "Kylin Linux Advanced Server V10 (Sword)"},
		CPUs: 4, MemoryBytes: 8 << 30, IPs: []string{ip}, DefaultIP: ip, DefaultInterface: "eth0",
		Systemd: true, CgroupVersion: 2, Firewalld: "absent",
		Disks: []facts.Disk{
			{Path: "/opt/wutong", FreeBytes: 100 << 30, Device: 1},
			{Path: "/var/lib/containerd", FreeBytes: 100 << 30, Device: 1},
			{Path: "/var/lib/kubelet", FreeBytes: 100 << 30, Device: 1},
			{Path: "/var/lib/wutong", FreeBytes: 100 << 30, Device: 1},
		},
		Modules: []facts.Module{{Name: "br_netfilter", Available: true}, {Name: "overlay", Loaded: true}, {Name: "ip_vs", Available: true}},
	}
}

func TestCheck(t *testing.T) {
	payload := &Payload{Arches: []string{"amd64", "arm64"}, Files: map[string]int64{"amd64": 1 << 30}, Images: 3 << 30}
	for _, tc := range []struct {
		name  string
		edit  func(cp, w *facts.Facts, n []Node)
		want  []string // rule:severity on cp1, in order
		wantW []string // on w1
	}{
		{"healthy", func(cp, w *facts.Facts, n []Node) {}, nil, nil},
		{"unsupported os", func(cp, w *facts.Facts, n []Node) { cp.OS = facts.OS{ID: "centos", VersionID: "7"} }, []string{"os:error"}, nil},
		{"kylin without service pack", func(cp, w *facts.Facts, n []Node) { cp.OS.ServicePack = "" }, []string{"os:warning"}, nil},
		{"arch without payload", func(cp, w *facts.Facts, n []Node) { w.Arch, w.Machine = "loong64", "loongarch64" }, nil, []string{"arch:error"}},
		{"small control plane", func(cp, w *facts.Facts, n []Node) { cp.CPUs, cp.MemoryBytes = 1, 1<<30; w.CPUs = 1 },
			[]string{"resources:error", "resources:error"}, nil},
		{"disk shared by payload, runtime and registry", func(cp, w *facts.Facts, n []Node) {
			// Needs 1.2×(1+3 GiB) + 1.2×3 + 1.2×3 + 2 GiB ≈ 14 GiB on one file system; the worker needs less.
			for i := range cp.Disks {
				cp.Disks[i].FreeBytes = 12 << 30
			}
			for i := range w.Disks {
				w.Disks[i].FreeBytes = 12 << 30
			}
		}, []string{"disk:error"}, nil},
		{"duplicate hostname and machine-id", func(cp, w *facts.Facts, n []Node) { w.Hostname, w.MachineID = cp.Hostname, cp.MachineID },
			[]string{"unique:error", "unique:error"}, []string{"unique:error", "unique:error"}},
		{"clock skew", func(cp, w *facts.Facts, n []Node) { n[1].Skew = -45 * time.Second }, nil, []string{"clock:error"}},
		{"skew within bounds", func(cp, w *facts.Facts, n []Node) { n[1].Skew = 29 * time.Second }, nil, nil},
		{"swap", func(cp, w *facts.Facts, n []Node) { cp.SwapBytes = 2 << 30 }, []string{"swap:warning"}, nil},
		{"ports by role", func(cp, w *facts.Facts, n []Node) {
			ports := []facts.Port{{Proto: "tcp", Addr: "0.0.0.0", Port: 6443}, {Proto: "tcp6", Addr: "::", Port: 5443}, {Proto: "udp", Addr: "0.0.0.0", Port: 10250}}
			cp.Listening, w.Listening = ports, ports
		}, []string{"ports:error", "ports:error"}, nil},
		{"ports of the ingress controller, on every node", func(cp, w *facts.Facts, n []Node) {
			cp.Listening = []facts.Port{{Proto: "tcp", Addr: "0.0.0.0", Port: 80}}
			w.Listening = []facts.Port{{Proto: "tcp6", Addr: "::", Port: 443}, {Proto: "tcp", Addr: "127.0.0.1", Port: 8080}}
		}, []string{"ports:error"}, []string{"ports:error"}},
		{"ports 80 and 443 without the ingress controller", func(cp, w *facts.Facts, n []Node) {
			cp.Listening = []facts.Port{{Proto: "tcp", Addr: "0.0.0.0", Port: 80}}
			w.Listening = []facts.Port{{Proto: "tcp6", Addr: "::", Port: 443}}
		}, nil, nil},
		{"our own containerd", func(cp, w *facts.Facts, n []Node) {
			cp.Runtimes = []facts.Runtime{{Name: "containerd", Path: "/usr/local/bin/containerd", Running: true}}
		}, nil, nil},
		{"ports held by our own registry", func(cp, w *facts.Facts, n []Node) {
			cp.Listening = []facts.Port{{Proto: "tcp6", Addr: "::", Port: 5443}}
		}, nil, nil},
		{"runtimes", func(cp, w *facts.Facts, n []Node) {
			cp.Runtimes = []facts.Runtime{{Name: "docker", Path: "/usr/bin/dockerd", Running: true}}
			w.Runtimes = []facts.Runtime{{Name: "containerd", Path: "/usr/bin/containerd"}}
		}, []string{"runtime:error"}, []string{"runtime:warning"}},
		{"modules", func(cp, w *facts.Facts, n []Node) { cp.Modules[0].Available = false; cp.Modules[2].Available = false },
			[]string{"modules:error", "modules:warning"}, nil},
		{"no systemd, cgroup v1", func(cp, w *facts.Facts, n []Node) { cp.Systemd = false; w.CgroupVersion = 1 },
			[]string{"systemd:error"}, []string{"cgroup:warning"}},
		{"commands", func(cp, w *facts.Facts, n []Node) {
			cp.Commands = []facts.Command{{Name: "systemctl"}, {Name: "mount", Path: "/bin/mount"}, {Name: "ethtool"}}
		}, []string{"commands:error", "commands:warning"}, nil},
		{"selinux and firewalld", func(cp, w *facts.Facts, n []Node) { cp.SELinux = "enforcing"; cp.Firewalld = "running" },
			[]string{"selinux:warning", "firewalld:warning"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCluster(t)
			cp, w := healthy("cp1", "10.99.0.11"), healthy("w1", "10.99.0.12")
			nodes := []Node{{Host: c.Spec.Hosts[0], Facts: cp}, {Host: c.Spec.Hosts[1], Facts: w}}
			tc.edit(cp, w, nodes)
			in := Input{Cluster: c, Nodes: nodes, Payload: payload, Lang: i18n.EN, Owned: owned(tc.name)}
			in.Ingress = tc.name != "ports 80 and 443 without the ingress controller"
			if tc.name == "our own containerd" {
				in.OwnedRuntimes = map[string][]string{"cp1": {"containerd"}}
			}
			rep := Check(in)
			for i, want := range [][]string{tc.want, tc.wantW} {
				var got []string
				for _, f := range rep.Hosts[i].Findings {
					got = append(got, f.Rule+":"+string(f.Severity))
					if f.Message == "" || f.Remediation == "" || strings.Contains(f.Message+f.Remediation, "%!") {
						t.Errorf("bad text in %+v", f)
					}
					if strings.HasPrefix(tc.name, "ports of the ingress") && !strings.Contains(f.Remediation, "spec.ingress.enabled: false") {
						t.Errorf("the remedy for the ingress controller's port does not say how to give it up: %s", f.Remediation)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: findings %v, want %v\n%s", rep.Hosts[i].Name, got, want, dump(rep.Hosts[i]))
				}
			}
		})
	}
}

func dump(v any) string { b, _ := json.MarshalIndent(v, "", "  "); return string(b) }

// The KubeKey #2859 lesson: numbers in messages must be the real ones, with units that make sense.
func TestMessagesAreExact(t *testing.T) {
	c := testCluster(t)
	cp, w := healthy("cp1", "10.99.0.11"), healthy("w1", "10.99.0.12")
	cp.MemoryBytes = 1 << 30
	for _, lang := range []i18n.Lang{i18n.EN, i18n.ZH} {
		rep := Check(Input{Cluster: c, Lang: lang, Nodes: []Node{{Host: c.Spec.Hosts[0], Facts: cp, Skew: 31 * time.Second}, {Host: c.Spec.Hosts[1], Facts: w}}})
		var msgs []string
		for _, f := range rep.Hosts[0].Findings {
			msgs = append(msgs, f.Message)
		}
		all := strings.Join(msgs, "\n")
		for _, want := range []string{"1.0 GiB", "1.7 GiB", "31s", "30s"} {
			if !strings.Contains(all, want) {
				t.Errorf("%s: %q missing from:\n%s", lang, want, all)
			}
		}
		if len(rep.Notes) != 1 {
			t.Errorf("%s: want a note about the missing bundle, got %v", lang, rep.Notes)
		}
	}
}

func TestUnreachableHint(t *testing.T) {
	c := testCluster(t)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&remote.HostKeyError{Host: "cp1", Got: "SHA256:new", Known: []string{"SHA256:old"}}, "STOP"},
		{&remote.HostKeyError{Host: "cp1", Got: "SHA256:new"}, "--accept-new-host-keys"},
		{&remote.AuthError{Host: "cp1", User: "root"}, "password"},
		{&remote.DialError{Host: "cp1", Address: "10.99.0.11:22", Err: fmt.Errorf("i/o timeout")}, "sshd"},
	} {
		rep := Check(Input{Cluster: c, Lang: i18n.EN, Nodes: []Node{{Host: c.Spec.Hosts[0], Err: tc.err}}})
		f := rep.Hosts[0].Findings
		if len(f) != 1 || f[0].Rule != "connect" || f[0].Severity != Error || !strings.Contains(f[0].Remediation, tc.want) || f[0].Message != tc.err.Error() {
			t.Errorf("%T: %+v", tc.err, f)
		}
	}
}

func TestCollect(t *testing.T) {
	agent := t.TempDir() + "/wtctl-linux-arm64"
	os.WriteFile(agent, []byte("#!agent"), 0o755)
	want := healthy("n1", "10.99.0.11")
	js, _ := json.Marshal(want)
	base := time.Unix(1_800_000_000, 0)
	nodeNow := base.Add(40 * time.Second)
	fake := remotetest.New("n1").
		On(`^uname -m$`, "aarch64\n", 0).
		On(`^date -u \+%s%N$`, fmt.Sprintf("%d\n", nodeNow.UnixNano()), 0).
		On(`^/opt/wutong/bin/wtctl node facts --json$`, string(js), 0)
	ticks := []time.Time{base, base.Add(2 * time.Second)}
	now := func() time.Time { t := ticks[0]; ticks = ticks[1:]; return t }
	var asked string
	f, skew, err := Collect(t.Context(), fake, fake, func(arch string) (string, error) { asked = arch; return agent, nil }, now)
	if err != nil {
		t.Fatal(err)
	}
	if asked != "arm64" {
		t.Errorf("agent asked for %q, want arm64", asked)
	}
	if skew != 39*time.Second {
		t.Errorf("skew = %s, want 39s (node clock minus the midpoint of the round trip)", skew)
	}
	if f.Hostname != "n1" || f.OS.ServicePack != "SP2" {
		t.Errorf("facts = %+v", f)
	}
	up, ok := fake.File(AgentPath)
	if !ok || up.Mode != 0o755 || !up.Sudo || string(up.Data) != "#!agent" {
		t.Errorf("agent upload = %+v, %v", up, ok)
	}
	calls := fake.Calls()
	if last := calls[len(calls)-1]; !last.Sudo {
		t.Errorf("facts must run as root: %+v", last)
	}
}

// owned is what an earlier install left running, for the case that needs it.
func owned(name string) map[string][]int {
	if name == "ports held by our own registry" {
		return map[string][]int{"cp1": {5443}}
	}
	return nil
}
