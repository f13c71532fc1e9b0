package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/installer/facts"
)

func TestNodeFactsJSON(t *testing.T) {
	out := mustRun(t, "node", "facts", "--json", "--path", "/", "--path", "/no/such/dir", "--command", "sh", "--module", "loop")
	var f facts.Facts
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if f.Arch != runtime.GOARCH {
		t.Errorf("arch %q, want %q", f.Arch, runtime.GOARCH)
	}
	if f.Kernel == "" || f.CPUs < 1 || f.MemoryBytes == 0 {
		t.Errorf("kernel %q cpus %d memory %d", f.Kernel, f.CPUs, f.MemoryBytes)
	}
	if len(f.Disks) != 2 || f.Disks[0].Path != "/" || f.Disks[1].Path != "/no/such/dir" || f.Disks[1].Exists {
		t.Errorf("--path should replace the default paths: %+v", f.Disks)
	}
	if n := len(f.Commands); n != len(facts.DefaultCommands())+1 || f.Commands[n-1].Name != "sh" {
		t.Errorf("--command should add to the defaults: %+v", f.Commands)
	}
	if n := len(f.Modules); n != len(facts.DefaultModules())+1 || f.Modules[n-1].Name != "loop" {
		t.Errorf("--module should add to the defaults: %+v", f.Modules)
	}
}

func TestNodeFactsText(t *testing.T) {
	out := mustRun(t, "node", "facts", "--root", "../../installer/facts/testdata/roots/kylin-sp2-broken")
	for _, want := range []string{
		"Kylin Linux Advanced Server V10 (Sword) [kylin V10 SP2]",
		"arm64 (aarch64)",
		"4 CPUs",
		"SELinux     enforcing",
		"Firewalld   running",
		"containerd running /usr/bin/containerd",
		"tcp6 [::]:6443",
		"ip_vs missing",
		"missing ethtool, tc",
		"Warning     interfaces:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if _, errs, code := run(t, "node", "facts", "extra"); code != exitUsage {
		t.Errorf("extra argument: exit %d, want %d\n%s", code, exitUsage, errs)
	}
}
