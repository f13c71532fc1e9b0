package nodeprep_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/installer/labtest"
	"github.com/wutong-paas/wutong-offline/installer/nodeprep"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// On a real host (systemd, sshd, a sudo user), through the agent: prepare, then prepare again and change nothing.
func TestLabPrep(t *testing.T) {
	l := labtest.Up(t, labtest.Options{ID: "np", Subnet: 6, N: 1, Personas: []string{"openeuler2203"}})
	h := l.Hosts[0]
	agent := filepath.Join(labtest.BuildAgent(t), "wtctl-linux-amd64")
	c, err := remote.Dial(t.Context(), remote.Config{Host: h.Name, Address: h.IP, User: l.User, Password: l.UserPassword,
		HostKeys: remote.HostKeys{Files: []string{l.KnownHosts}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Upload(t.Context(), agent, "/opt/wutong/bin/wtctl", remote.UploadOptions{Mode: 0o755, Sudo: true}); err != nil {
		t.Fatal(err)
	}
	l.SSH(t, h, "printf '/swapfile none swap sw 0 0\\n' >> /etc/fstab; echo 0 > /proc/sys/net/ipv4/ip_forward")
	prep := func(extra string) nodeprep.Result {
		t.Helper()
		r, err := c.Run(t.Context(), remote.Cmd{Sudo: true,
			Line: "/opt/wutong/bin/wtctl node prep --json --host 10.99.6.11=lab1,registry.wutong.local --port 6443/tcp" + extra})
		if err != nil {
			t.Fatal(err)
		}
		var res nodeprep.Result
		if err := json.Unmarshal(r.Stdout, &res); err != nil {
			t.Fatalf("%v: %s", err, r.Stdout)
		}
		return res
	}
	var got []string
	dry := prep(" --dry-run")
	for _, ch := range dry.Changes {
		got = append(got, ch.Target)
	}
	if l.SSH(t, h, "cat /proc/sys/net/ipv4/ip_forward") != "0" || !slices.Contains(got, "/etc/hosts") {
		t.Fatalf("dry run: %v", got)
	}
	first := prep("")
	got = nil
	for _, ch := range first.Changes {
		got = append(got, ch.Kind+" "+ch.Target)
	}
	// The lab's kernel has br_netfilter and overlay built in, no firewalld and no SELinux: what remains is real.
	for _, want := range []string{"file /etc/fstab", "file /etc/modules-load.d/wutong.conf", "sysctl net.ipv4.ip_forward=1", "file /etc/sysctl.d/99-wutong.conf", "file /etc/hosts"} {
		if !slices.Contains(got, want) {
			t.Errorf("first run: %q missing from %v", want, got)
		}
	}
	if v := l.SSH(t, h, "cat /proc/sys/net/ipv4/ip_forward"); v != "1" {
		t.Errorf("ip_forward = %s", v)
	}
	if hosts := l.SSH(t, h, "cat /etc/hosts"); !strings.Contains(hosts, "10.99.6.11\tlab1 registry.wutong.local") {
		t.Errorf("/etc/hosts:\n%s", hosts)
	}
	if again := prep(""); len(again.Changes) != 0 {
		t.Errorf("second run changed %+v", again.Changes)
	}
}
