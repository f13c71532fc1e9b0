package cluster

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/kubekey")

// TestFromKubeKey converts each KubeKey sample and compares the cluster.yaml and the notes with the golden files
// NAME.golden.yaml and NAME.notes.golden (go test -run FromKubeKey -update rewrites them).
func TestFromKubeKey(t *testing.T) {
	files, _ := filepath.Glob("testdata/kubekey/*.yaml")
	var samples []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".golden.yaml") {
			samples = append(samples, f)
		}
	}
	if len(samples) < 2 {
		t.Fatalf("samples: %v", samples)
	}
	for _, f := range samples {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, notes, err := FromKubeKey(f, data)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(f, ".yaml")
			golden(t, base+".golden.yaml", out)
			golden(t, base+".notes.golden", []byte(strings.Join(notes, "\n")+"\n"))

			// No password of the KubeKey file reaches the output or the notes.
			for _, pw := range []string{"Cp#2024-pass", "0123", "spare-Pw9", "Harbor12345", "wutong-root"} {
				if bytes.Contains(data, []byte(pw)) && (bytes.Contains(out, []byte(pw)) || strings.Contains(strings.Join(notes, "\n"), pw)) {
					t.Errorf("password %q copied", pw)
				}
			}
			// The output parses back once the variables it references are exported.
			env := map[string]string{"HOME": "/h"}
			for _, h := range c.Spec.Hosts {
				if e := h.Password.Env(); e != "" {
					env[e] = "pw"
				}
			}
			if e := c.Spec.SSH.Password.Env(); e != "" {
				env[e] = "pw"
			}
			back, err := Parse("cluster.yaml", out, ParseOptions{LookupEnv: lookup(env)})
			if err != nil {
				t.Fatalf("Parse(Marshal(FromKubeKey)): %v\n%s", err, out)
			}
			if len(back.Spec.Hosts) != len(c.Spec.Hosts) || len(back.ControlPlanes()) == 0 {
				t.Errorf("round trip lost hosts")
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run FromKubeKey -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run FromKubeKey -update rewrites it); got:\n%s", path, got)
	}
}

func TestFromKubeKeyDetails(t *testing.T) {
	data, _ := os.ReadFile("testdata/kubekey/config-sample.yaml")
	c, notes, err := FromKubeKey("config-sample.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(notes, "\n")
	if got := names(c.ControlPlanes()); got != "master1,master2,master3" {
		t.Errorf("master[1:3] → %s", got)
	}
	if got := names(c.Workers()); got != "node1,node2,node3" {
		t.Errorf("node[1:3] → %s", got)
	}
	if slices.ContainsFunc(c.Spec.Hosts, func(h Host) bool { return h.Name == "spare" }) || !strings.Contains(all, "host spare is in no role group") {
		t.Error("a host in no role group must be left out, with a note")
	}
	if !strings.HasPrefix(notes[0], "export WT_SSH_PASSWORD_MASTER1") {
		t.Errorf("the exports come first: %q", notes[0])
	}
	for _, want := range []string{"roleGroups.etcd was dropped", "internalLoadbalancer \"haproxy\" was dropped", "spec.registry (auths, privateRegistry) was dropped",
		"spec.system", "spec.kubernetes.containerManager", "ClusterConfiguration", "dual-stack", "~/.ssh/id_rsa", "Factory-Line"} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
}

func TestFromKubeKeyErrors(t *testing.T) {
	const base = `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Cluster
metadata: {name: x}
spec:
  hosts:
  - {name: node1, address: 10.0.0.1, password: p}
  roleGroups:
    control-plane:
    - node1
`
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown host", "- node1", "- node1\n    - node[2:3]", `x.yaml:10: spec.roleGroups.control-plane[1]: node2 is in role group control-plane but not in spec.hosts`},
		{"bad range", "- node1", "- node[3:1]", `the range must go from a lower to a higher number`},
		{"huge range", "- node1", "- node[1:99999]", `a range may name at most`},
		{"not kubekey", "kubekey.kubesphere.io/v1alpha2", "wutong.io/v1alpha1", `this is not a KubeKey config`},
		{"wrong kind", "kind: Cluster", "kind: ClusterConfiguration", `kind: found "ClusterConfiguration"`},
		{"hosts not a list", "  - {name: node1, address: 10.0.0.1, password: p}", "    x: 1", `spec.hosts: expected a list`},
		{"syntax", "- node1", "- [node1", `invalid YAML`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(base, tc.from, tc.to, 1)
			if src == base {
				t.Fatal("case does not change the input")
			}
			_, _, err := FromKubeKey("x.yaml", []byte(src))
			var ve *ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a *ValidationError with %q, got %v", tc.want, err)
			}
		})
	}
}

func TestExpandRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"node1", []string{"node1"}},
		{"node[1:3]", []string{"node1", "node2", "node3"}},
		{"node[08:10]", []string{"node08", "node09", "node10"}},
		{"rack[1:2]-a", []string{"rack1-a", "rack2-a"}},
		{"[5:5]", []string{"5"}},
	} {
		got, msg := expandRange(tc.in)
		if msg != "" || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v %s", tc.in, got, msg)
		}
	}
	for _, bad := range []string{"node[a:3]", "node[3:1]", "node[1:2", "node[1:2][3:4]x["} {
		if _, msg := expandRange(bad); msg == "" {
			t.Errorf("%s accepted", bad)
		}
	}
}
