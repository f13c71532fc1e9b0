package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const kubeKeyConfig = `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Cluster
metadata:
  name: sample
spec:
  hosts:
  - {name: node1, address: 10.99.0.11, internalAddress: 10.99.0.11, user: root, password: "Kk-Secret-1"}
  - {name: node2, address: 10.99.0.12, internalAddress: 10.99.0.12, user: root, password: "Kk-Secret-1"}
  - {name: node3, address: 10.99.0.13, internalAddress: 10.99.0.13, user: root, password: "Kk-Secret-1"}
  roleGroups:
    etcd:
    - node1
    master:
    - node1
    worker:
    - node[1:3]
  kubernetes:
    version: v1.30.4
  network:
    plugin: flannel
    kubePodsCIDR: 10.233.64.0/18
    kubeServiceCIDR: 10.233.0.0/18
  addons: []
`

func TestClusterImportConfig(t *testing.T) {
	dir := t.TempDir()
	kk := filepath.Join(dir, "config-sample.yaml")
	os.WriteFile(kk, []byte(kubeKeyConfig), 0o644)

	// To stdout, with the notes on stderr, and never the password.
	out, errs, code := run(t, "cluster", "import-config", kk)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.HasPrefix(out, "# Converted from config-sample.yaml") || !strings.Contains(out, "password: {env: WT_SSH_PASSWORD}") ||
		!strings.Contains(out, "roles: [control-plane, worker, registry]") {
		t.Fatalf("stdout:\n%s", out)
	}
	if !strings.Contains(errs, "note: export WT_SSH_PASSWORD:") || !strings.Contains(errs, "roleGroups.etcd was dropped") {
		t.Fatalf("stderr:\n%s", errs)
	}
	if strings.Contains(out+errs, "Kk-Secret-1") {
		t.Fatal("the KubeKey password was copied")
	}

	// To a file: mode 0600, and valid once the variable is exported.
	dest := filepath.Join(dir, "cluster.yaml")
	_, errs, code = run(t, "cluster", "import-config", kk, "-o", dest)
	if code != 0 || !strings.Contains(errs, "wrote "+dest) {
		t.Fatalf("exit %d: %s", code, errs)
	}
	st, err := os.Stat(dest)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("output file: %v %v", st.Mode(), err)
	}
	written, _ := os.ReadFile(dest)
	if string(written) != strings.Replace(out, "validate -f cluster.yaml", "validate -f "+dest, 1) {
		t.Fatalf("file and stdout differ:\n%s", written)
	}
	t.Setenv("WT_SSH_PASSWORD", "x")
	if out := mustRun(t, "cluster", "validate", "-f", dest); !strings.Contains(out, "is valid: cluster sample, 3 hosts") {
		t.Fatalf("validate:\n%s", out)
	}

	// It does not overwrite without --force.
	os.WriteFile(dest, []byte("keep"), 0o600)
	if _, errs, code := run(t, "cluster", "import-config", kk, "-o", dest); code != exitUsage || !strings.Contains(errs, "--force") {
		t.Fatalf("overwrite without --force: exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(dest); string(b) != "keep" {
		t.Fatal("the existing file was changed")
	}
	mustRun(t, "cluster", "import-config", kk, "-o", dest, "--force")
	if b, _ := os.ReadFile(dest); !strings.Contains(string(b), "kind: Cluster") {
		t.Fatal("--force did not overwrite")
	}

	// Bad input is a usage error, with the line.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(kubeKeyConfig, "- node[1:3]", "- node[1:4]", 1)), 0o644)
	if _, errs, code := run(t, "cluster", "import-config", bad); code != exitUsage || !strings.Contains(errs, "bad.yaml:16: spec.roleGroups.worker[0]: node4 is in role group worker but not in spec.hosts") {
		t.Fatalf("unknown host: exit %d: %s", code, errs)
	}
	if _, _, code := run(t, "cluster", "import-config", filepath.Join(dir, "missing.yaml")); code != exitUsage {
		t.Fatalf("missing file: exit %d", code)
	}
	if _, _, code := run(t, "cluster", "import-config"); code != exitUsage {
		t.Fatalf("no argument: exit %d", code)
	}
}

const clusterYAML = `apiVersion: wutong.io/v1alpha1
kind: Cluster
metadata:
  name: lab
spec:
  ssh:
    password: {env: WT_TEST_SSH_PASSWORD}
  hosts:
    - name: node1
      address: 10.20.0.11
      roles: [control-plane, worker]
    - name: node2
      address: 10.20.0.12
      roles: [control-plane, worker]
`

func TestClusterValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "cluster.yaml")
	os.WriteFile(good, []byte(clusterYAML), 0o600)

	// An unset variable is a problem with its line; so is a duplicate address. All are listed, exit 2.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(clusterYAML, "10.20.0.12", "10.20.0.11", 1)), 0o600)
	_, errs, code := run(t, "cluster", "validate", "-f", bad)
	if code != exitUsage {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"has 2 problems; fix them all",
		bad + ":7: spec.ssh.password: environment variable WT_TEST_SSH_PASSWORD is not set",
		bad + `:13: spec.hosts[1].address: "10.20.0.11" is also used by spec.hosts[0] (node1); every host needs its own address`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	out, _, code := run(t, "cluster", "validate", "-f", bad, "-o", "json")
	var res validateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitUsage || res.Valid || len(res.Problems) != 2 || res.Problems[1].Line != 13 {
		t.Fatalf("json: exit %d, %+v, %v\n%s", code, res, err, out)
	}

	// Valid: a summary, the even control-plane count as a warning, exit 0.
	t.Setenv("WT_TEST_SSH_PASSWORD", "pw")
	out, errs, code = run(t, "cluster", "validate", "-f", good)
	if code != 0 || !strings.Contains(out, "is valid: cluster lab, 2 hosts") || !strings.Contains(out, "registry:       node1 (registry.wutong.local:5443)") ||
		!strings.Contains(errs, "warning: "+good+":8: spec.hosts: there are 2 control planes") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if strings.Contains(out+errs, "pw\n") {
		t.Fatal("secret printed")
	}
	out = mustRun(t, "cluster", "validate", "-f", good, "-o", "json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Valid || len(res.Hosts) != 2 || len(res.Warnings) != 2 {
		t.Fatalf("json: %+v, %v\n%s", res, err, out)
	}

	if _, _, code := run(t, "cluster", "validate", "-f", filepath.Join(dir, "nope.yaml")); code != exitUsage {
		t.Fatalf("missing file: exit %d", code)
	}
}
