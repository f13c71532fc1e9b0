package preflight_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/labtest"
	"github.com/wutong-paas/wutong-offline/installer/preflight"
	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// personas maps each lab persona to what facts must say about it.
var personas = []struct {
	persona, id, versionID, codename, sp string
}{
	{"kylin-v10-sp2", "kylin", "V10", "Sword", "SP2"}, // the control plane, and the host broken below
	{"debian12", "debian", "12", "bookworm", ""},
	{"ubuntu2204", "ubuntu", "22.04", "jammy", ""},
	{"kylin-v10-sp1", "kylin", "V10", "Tercel", "SP1"},
	{"kylin-v10-sp3", "kylin", "V10", "Lance", "SP3"},
	{"kylin-v10-sp3-2403", "kylin", "V10", "Halberd", "SP3-2403"},
	{"uos20", "uos", "20", "kongzi", ""},
	{"openeuler2203", "openeuler", "22.03", "", ""},
	{"openeuler2403", "openeuler", "24.03", "", ""},
	{"anolis8", "anolis", "8.8", "", ""},
	{"rocky9", "rocky", "9.3", "Blue Onyx", ""},
}

// labCluster writes a cluster.yaml for the lab: the first host is the control plane and registry.
func labCluster(t *testing.T, l *labtest.Lab) (string, *cluster.Cluster) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: wutong.io/v1alpha1\nkind: Cluster\nmetadata: {name: lab}\nspec:\n")
	fmt.Fprintf(&b, "  ssh: {password: {env: WT_LAB_ROOT_PASSWORD}}\n  kubernetes: {serviceCIDR: 10.96.0.0/16}\n  hosts:\n")
	for i, h := range l.Hosts {
		role := "worker"
		if i == 0 {
			role = "control-plane, registry"
		}
		fmt.Fprintf(&b, "    - {name: %s, address: %s, roles: [%s]}\n", h.Name, h.IP, role)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "cluster.yaml")
	os.WriteFile(p, []byte(b.String()), 0o600)
	t.Setenv("WT_LAB_ROOT_PASSWORD", l.RootPassword)
	c, err := cluster.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

func TestLabPreflight(t *testing.T) {
	var names []string
	for _, p := range personas {
		names = append(names, p.persona)
	}
	l := labtest.Up(t, labtest.Options{ID: "pf", Subnet: 2, N: len(names), Personas: names})
	agentDir := labtest.BuildAgent(t)
	path, c := labCluster(t, l)
	keys := remote.HostKeys{Files: []string{l.KnownHosts}}
	agent := func(arch string) (string, error) { return preflight.LocalAgent(arch, agentDir) }

	nodes := preflight.Gather(t.Context(), c, preflight.GatherOptions{HostKeys: keys, Agent: agent})
	for i, n := range nodes {
		want, h := personas[i], l.Hosts[i]
		if n.Err != nil {
			t.Fatalf("%s: %v", h.Name, n.Err)
		}
		f := n.Facts
		o := f.OS
		if o.ID != want.id || o.VersionID != want.versionID || o.Codename != want.codename || o.ServicePack != want.sp {
			t.Errorf("%s (%s): os = %+v; want id %s version %s codename %q sp %q", h.Name, want.persona, o, want.id, want.versionID, want.codename, want.sp)
		}
		if f.Hostname != h.Name || f.MachineID != h.MachineID || f.Arch != "amd64" || f.DefaultIP != h.IP || !f.Systemd {
			t.Errorf("%s: hostname %q machine-id %q arch %q ip %q systemd %v", h.Name, f.Hostname, f.MachineID, f.Arch, f.DefaultIP, f.Systemd)
		}
		if n.Skew < -2e9 || n.Skew > 2e9 {
			t.Errorf("%s: skew %s on a host sharing this machine's clock", h.Name, n.Skew)
		}
	}
	payload := &preflight.Payload{Arches: []string{"amd64"}, Files: map[string]int64{"amd64": 300 << 20}, Images: 500 << 20}
	baseline := preflight.Check(preflight.Input{Cluster: c, Nodes: nodes, Payload: payload, Lang: i18n.EN})
	for _, h := range baseline.Hosts {
		if n := errorsOf(h); len(n) > 0 {
			t.Fatalf("clean lab host %s has errors: %v", h.Name, n)
		}
	}

	// Break the Kylin SP2 host the way servers in the field are broken: swap on, 6443 taken, little disk.
	broken := l.Hosts[0]
	l.SSH(t, broken, `set -e
printf 'Filename\tType\tSize\tUsed\tPriority\n/swapfile                               file\t2097148\t0\t-2\n' > /run/fake-swaps
mount --bind /run/fake-swaps /proc/swaps
/usr/sbin/sshd -p 6443 -o PidFile=/run/sshd-6443.pid
mkdir -p /var/lib/containerd && mount -t tmpfs -o size=64m tmpfs /var/lib/containerd`)

	nodes = preflight.Gather(t.Context(), c, preflight.GatherOptions{HostKeys: keys, Agent: agent})
	rep := preflight.Check(preflight.Input{Cluster: c, Nodes: nodes, Payload: payload, Lang: i18n.EN})
	got := diff(rep.Hosts[0], baseline.Hosts[0])
	want := []string{"disk:error", "ports:error", "swap:warning"}
	if !slices.Equal(got, want) {
		t.Fatalf("broken host: new findings %v, want exactly %v\n%+v", got, want, rep.Hosts[0].Findings)
	}
	for _, f := range rep.Hosts[0].Findings {
		t.Logf("%s %s: %s → %s", f.Severity, f.Rule, f.Message, f.Remediation)
		if f.Rule == "ports" && !strings.Contains(f.Message, "6443") {
			t.Errorf("ports finding does not name 6443: %s", f.Message)
		}
		if f.Rule == "disk" && !strings.Contains(f.Message, "/var/lib/containerd") {
			t.Errorf("disk finding does not name the path: %s", f.Message)
		}
	}
	for i, h := range rep.Hosts {
		if i != 0 && len(diff(h, baseline.Hosts[i])) > 0 {
			t.Errorf("%s changed: %v", h.Name, diff(h, baseline.Hosts[i]))
		}
	}

	// The command line end to end: a table, the JSON report in the workdir, and a failing exit code.
	wtctl := filepath.Join(agentDir, "wtctl-linux-amd64")
	cmd := exec.Command(wtctl, "cluster", "preflight", "-f", path, "--known-hosts", l.KnownHosts, "--agent-dir", agentDir, "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("wtctl cluster preflight: %v, want a non-zero exit\n%s", err, stderr.String())
	}
	var cli preflight.Report
	if err := json.Unmarshal(stdout.Bytes(), &cli); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout.String())
	}
	// Without a bundle the disk is not judged (and a note says so): the port is the one error left.
	if len(cli.Hosts) != len(l.Hosts) || len(errorsOf(cli.Hosts[0])) != 1 || len(cli.Notes) != 1 || len(cli.CgroupV1) != len(rep.CgroupV1) {
		t.Fatalf("cli report: hosts %d, errors on %s %v, notes %v, cgroup v1 %v", len(cli.Hosts), cli.Hosts[0].Name, errorsOf(cli.Hosts[0]), cli.Notes, cli.CgroupV1)
	}
	if _, err := os.Stat(filepath.Join(c.WorkdirPath(), "preflight.json")); err != nil {
		t.Fatalf("report not saved in the workdir: %v", err)
	}
}

func errorsOf(h preflight.HostReport) []string {
	var out []string
	for _, f := range h.Findings {
		if f.Severity == preflight.Error {
			out = append(out, f.Rule+": "+f.Message)
		}
	}
	return out
}

// diff lists the findings of h that base does not have, as rule:severity, sorted.
func diff(h, base preflight.HostReport) []string {
	seen := map[string]bool{}
	for _, f := range base.Findings {
		seen[f.Rule+f.Message] = true
	}
	var out []string
	for _, f := range h.Findings {
		if !seen[f.Rule+f.Message] {
			out = append(out, f.Rule+":"+string(f.Severity))
		}
	}
	slices.Sort(out)
	return out
}
