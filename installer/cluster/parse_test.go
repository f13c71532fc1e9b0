package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testEnv is the environment the testdata files expect.
var testEnv = map[string]string{
	"HOME":                 "/home/tester",
	"WT_SSH_PASSWORD":      "lab-root-pw",
	"WT_KEY_PASSPHRASE":    "key-pp",
	"WT_SUDO_PASSWORD":     "sudo-pw",
	"WT_WORKER1_PASSWORD":  "worker1-pw",
	"WT_REGISTRY_PASSWORD": "registry-pw",
	"WT_PASS":              "pass",
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func parseFile(t *testing.T, path string) (*Cluster, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(path, data, ParseOptions{LookupEnv: lookup(testEnv)})
}

func mustParseFile(t *testing.T, path string) *Cluster {
	t.Helper()
	c, err := parseFile(t, path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func names(hs []Host) string {
	var ns []string
	for _, h := range hs {
		ns = append(ns, h.Name)
	}
	return strings.Join(ns, ",")
}

func TestParseFull(t *testing.T) {
	c := mustParseFile(t, "testdata/full.yaml")
	if got := names(c.ControlPlanes()); got != "cp1,cp2,cp3" {
		t.Errorf("control planes %s (master must be an alias)", got)
	}
	if got := names(c.Workers()); got != "worker1,worker2" {
		t.Errorf("workers %s", got)
	}
	if got := names(c.Registries()); got != "cp1" {
		t.Errorf("registries %s", got)
	}
	if !c.HasRole(RoleRegistry) || c.Spec.Hosts[3].HasRole(RoleControlPlane) {
		t.Error("HasRole")
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings %v", w)
	}
	if c.Spec.Hosts[1].InternalAddress != "10.20.0.12" || c.Spec.Hosts[0].InternalAddress != "10.20.0.11" {
		t.Errorf("internalAddress: %q, %q", c.Spec.Hosts[1].InternalAddress, c.Spec.Hosts[0].InternalAddress)
	}
	if ep := c.Spec.Kubernetes.ControlPlaneEndpoint; ep != "lb.example.com:6443" {
		t.Errorf("endpoint without a port gets 6443: %q", ep)
	}
	dir, _ := filepath.Abs("testdata")
	if got, want := c.BundlePath(), filepath.Join(filepath.Dir(dir), "bundles/wutong-1.0.tar.zst"); got != want {
		t.Errorf("bundle %q, want %q", got, want)
	}
	if got := c.WorkdirPath(); got != "/var/lib/wutong-installer/prod" {
		t.Errorf("workdir %q", got)
	}

	// cp1 inherits everything from spec.ssh.
	cp1 := c.Spec.Hosts[0].SSH()
	if cp1.User != "wutong" || cp1.Port != 2222 || cp1.PrivateKey != "/home/tester/.ssh/id_ed25519" || !cp1.Sudo ||
		cp1.Passphrase.Reveal() != "key-pp" || cp1.SudoPassword.Reveal() != "sudo-pw" || cp1.Timeout != 45*time.Second || cp1.Agent {
		t.Errorf("cp1 ssh %+v", cp1)
	}
	if b := cp1.Bastion; b == nil || b.Address != "jump.example.com" || b.User != "jump" || b.Port != 22 || !b.Agent ||
		b.PrivateKey != "/home/tester/.ssh/id_ed25519" {
		t.Errorf("bastion %+v", b)
	}
	// worker1 overrides user, port, password, key and sudo; its key path is relative to cluster.yaml.
	w1 := c.Spec.Hosts[3].SSH()
	if w1.User != "root" || w1.Port != 22 || w1.Password.Reveal() != "worker1-pw" || w1.PrivateKey != filepath.Join(dir, "keys/worker1") || w1.Sudo {
		t.Errorf("worker1 ssh %+v", w1)
	}
	if w2 := c.Spec.Hosts[4].SSH(); !w2.SudoNoPassword || !w2.Sudo {
		t.Errorf("worker2 ssh %+v", w2)
	}
	if c.Spec.Registry.Password.Reveal() != "registry-pw" || c.Spec.Registry.Password.Env() != "WT_REGISTRY_PASSWORD" {
		t.Error("registry password not resolved")
	}
	if p := c.Spec.Platform; !p.IsEnabled() || p.NodePort != 30443 || p.StorageSize != "20Gi" || p.InsecureHTTP {
		t.Errorf("platform %+v", p)
	}
}

func TestParseMinimalDefaults(t *testing.T) {
	c := mustParseFile(t, "testdata/minimal.yaml")
	s := c.Spec
	k := s.Kubernetes
	if k.PodCIDR != DefaultPodCIDR || k.ServiceCIDR != DefaultServiceCIDR || k.DNSDomain != DefaultDNSDomain || k.CNI != DefaultCNI ||
		k.ControlPlaneEndpoint != "192.168.1.10:6443" || k.Version != "" {
		t.Errorf("kubernetes defaults %+v", k)
	}
	if r := s.Registry; r.Port != 5443 || r.Domain != "registry.wutong.local" || r.Username != "admin" || !r.Password.IsZero() {
		t.Errorf("registry defaults %+v", r)
	}
	if p := s.Platform; !p.IsEnabled() || p.NodePort != DefaultPlatformNodePort || p.StorageSize != DefaultPlatformStorageSize || p.InsecureHTTP || s.Workdir != ".wutong/mini" {
		t.Errorf("platform %+v (want HTTPS by default) workdir %q", p, s.Workdir)
	}
	abs, _ := filepath.Abs("testdata/.wutong/mini")
	if c.WorkdirPath() != abs {
		t.Errorf("workdir path %q, want %q", c.WorkdirPath(), abs)
	}
	ssh := s.Hosts[0].SSH()
	if ssh.User != "root" || ssh.Port != 22 || !ssh.Agent || ssh.Timeout != DefaultSSHTimeout || ssh.Bastion != nil {
		t.Errorf("ssh %+v", ssh)
	}
	// No host had the registry role: the first control plane gets it, with a warning on its roles line.
	if names(c.Registries()) != "node1" {
		t.Errorf("registries %s", names(c.Registries()))
	}
	w := c.Warnings()
	if len(w) != 1 || w[0].Line != 11 || w[0].Path != "spec.hosts[0].roles" || !strings.Contains(w[0].Msg, "node1, the first control plane, runs the registry") {
		t.Errorf("warnings %+v", w)
	}
	// Default is idempotent: no second registry role, no second warning.
	c.Default()
	if len(c.Spec.Hosts[0].Roles) != 3 || len(c.Warnings()) != 1 {
		t.Errorf("second Default changed things: %v %v", c.Spec.Hosts[0].Roles, c.Warnings())
	}
}

func TestParseLab(t *testing.T) {
	c := mustParseFile(t, "testdata/lab.yaml")
	for _, h := range c.Spec.Hosts {
		if ssh := h.SSH(); ssh.User != "root" || ssh.Password.Reveal() != "lab-root-pw" || ssh.Address != h.Address {
			t.Errorf("%s: %+v", h.Name, ssh)
		}
	}
	if names(c.Workers()) != "lab1,lab2,lab3" || names(c.ControlPlanes()) != "lab1" {
		t.Errorf("roles: %s / %s", names(c.Workers()), names(c.ControlPlanes()))
	}

	// Without its serviceCIDR the lab clashes with the default 10.96.0.0/12, which holds 10.99.0.0/24.
	data, _ := os.ReadFile("testdata/lab.yaml")
	noCIDR := strings.Replace(string(data), "serviceCIDR: 10.96.0.0/16", "dnsDomain: cluster.local", 1)
	_, err := Parse("lab.yaml", []byte(noCIDR), ParseOptions{LookupEnv: lookup(testEnv)})
	if err == nil || !strings.Contains(err.Error(), "spec.kubernetes.serviceCIDR: 10.96.0.0/12 (the default, as serviceCIDR is not set) contains the internalAddress 10.99.0.11 of spec.hosts[0] (lab1)") {
		t.Fatalf("want the default service CIDR reported, got %v", err)
	}

	// The password variable must be set.
	_, err = Parse("lab.yaml", data, ParseOptions{LookupEnv: lookup(map[string]string{"HOME": "/h"})})
	if err == nil || !strings.Contains(err.Error(), "lab.yaml:10: spec.ssh.password: environment variable WT_SSH_PASSWORD is not set") {
		t.Fatalf("unset variable: %v", err)
	}
}

func TestParseProblems(t *testing.T) {
	// Each invalid file, with every problem it must report, as "line path", in order.
	cases := map[string][]string{
		"kubekey.yaml": {"1 apiVersion"},
		"kind.yaml":    {"2 kind"},
		"syntax.yaml":  {"8 "},
		"two-docs.yaml": {
			"9 ",
		},
		"empty-hosts.yaml": {"4 metadata.name", "6 spec.hosts", "7 spec.workdir"},
		"fields.yaml": {
			"7 spec.ssh.port", "8 spec.ssh.agent", "9 spec.ssh.timeout", "10 spec.ssh.privatKey", "11 spec.ssh.roles",
			"12 spec.podCIDR", "15 spec.hosts[0].adress", "16 spec.hosts[0].privateKeyPath", "17 spec.hosts[0].roles",
			"18 spec.hosts[1]", "20 spec.kubernetes.version",
		},
		"hosts.yaml": {
			"12 spec.hosts[1].name", "15 spec.hosts[1].roles[1]", "16 spec.hosts[2].name", "17 spec.hosts[2].address",
			"18 spec.hosts[2].internalAddress", "19 spec.hosts[2].roles[1]", "21 spec.hosts[3].address", "22 spec.hosts[3].roles[0]",
			"23 spec.hosts[4].internalAddress", "25 spec.hosts[4].roles", "27 spec.hosts[5].address", "28 spec.hosts[5].port",
			`32 spec.hosts[5].labels["bad key!"]`, "32 spec.hosts[5].labels.ok", "33 spec.hosts[5].taints[0]",
			"33 spec.hosts[5].taints[1]", "34 spec.hosts[5].arch",
		},
		"login.yaml": {
			"9 spec.ssh.timeout", "10 spec.ssh.bastion", "11 spec.ssh.bastion.address", "12 spec.ssh.bastion.user",
			"14 spec.hosts[0]", "18 spec.hosts[1]", "20 spec.hosts[1].passphrase", "27 spec.hosts[3]",
		},
		"network.yaml": {
			"13 spec.kubernetes.version", "14 spec.kubernetes.controlPlaneEndpoint", "15 spec.kubernetes.podCIDR",
			"16 spec.kubernetes.serviceCIDR", "17 spec.kubernetes.dnsDomain", "18 spec.kubernetes.cni", "20 spec.registry.port",
			"21 spec.registry.domain", "22 spec.firewall",
		},
		"secrets.yaml": {
			"7 spec.ssh.password", "8 spec.ssh.sudoPassword", "12 spec.hosts[0].password", "13 spec.hosts[0].passphrase.default",
			"16 spec.registry.password.envv",
		},
	}
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) != len(cases) {
		t.Errorf("%d files in testdata/invalid, %d cases", len(files), len(cases))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := cases[name]
			if !ok {
				t.Fatal("no expectation for this file")
			}
			_, err := parseFile(t, f)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a *ValidationError, got %v", err)
			}
			var got []string
			for _, p := range ve.Problems {
				got = append(got, fmt.Sprintf("%d %s", p.Line, p.Path))
			}
			if !slices.Equal(got, want) {
				t.Errorf("problems:\n%s\nwant:\n%s\nerror:\n%v", strings.Join(got, "\n"), strings.Join(want, "\n"), err)
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != len(ve.Problems) || !strings.HasPrefix(lines[0], f+":") {
				t.Errorf("Error() must print one problem per line, each starting with the file: %q", err)
			}
		})
	}
}

func TestProblemMessages(t *testing.T) {
	// The messages say what is wrong and how to fix it.
	for _, tc := range []struct{ file, want string }{
		{"hosts.yaml", `hosts.yaml:17: spec.hosts[2].address: "10.99.0.11" is also used by spec.hosts[0] (node1); every host needs its own address`},
		{"hosts.yaml", `spec.hosts[2].roles[1]: etcd is not a role of its own: etcd runs on every control-plane host (stacked)`},
		{"hosts.yaml", `unknown role "wroker": did you mean "worker"?`},
		{"hosts.yaml", `unknown effect "NoSchedul": did you mean "NoSchedule"?`},
		{"hosts.yaml", `"x86_64": that is uname's name; write amd64`},
		{"fields.yaml", `spec.ssh.privatKey: unknown field "privatKey"; did you mean "privateKey"?`},
		{"fields.yaml", `spec.podCIDR: unknown field "podCIDR"; it belongs in spec.kubernetes`},
		{"fields.yaml", `spec.hosts[0].privateKeyPath: unknown field "privateKeyPath"; did you mean "privateKey"?`},
		{"fields.yaml", `spec.ssh.agent: expected true or false, found "yes"`},
		{"kubekey.yaml", "convert it with `wtctl cluster import-config"},
		{"kind.yaml", `kind: found "BundleSpec", expected "Cluster"`},
		{"login.yaml", `node1 logs in as "ubuntu" and uses sudo, but has no password for sudo: set sudoPassword (or password), or sudoNoPassword: true`},
		{"login.yaml", `node2 has no way to log in: set password, privateKey or agent: true`},
		{"network.yaml", `"10.244.1.0/16" has bits set after the prefix; did you mean 10.244.0.0/16?`},
		{"network.yaml", `"1.37.2" is not a Kubernetes version: write v1.37.2`},
		{"secrets.yaml", `spec.ssh.password: environment variable WT_UNSET_PASSWORD is not set`},
		{"secrets.yaml", `"<redacted>" is the placeholder wtctl writes in place of a secret`},
		{"secrets.yaml", `unknown field "envv"; did you mean "env"?`},
	} {
		_, err := parseFile(t, filepath.Join("testdata/invalid", tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q in\n%v", tc.file, tc.want, err)
		}
	}
}

func TestParseMore(t *testing.T) {
	const head = "apiVersion: wutong.io/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec:\n"
	cases := []struct {
		name, spec string
		want       string // substring of the error, or "" for valid
		check      func(*testing.T, *Cluster)
	}{
		{"numbers stay as written in strings and secrets", `  hosts:
    - {name: "007", address: 10.0.0.1, password: 0123, roles: [control-plane]}
`, "", func(t *testing.T, c *Cluster) {
			if h := c.Spec.Hosts[0]; h.Name != "007" || h.Password.Reveal() != "0123" {
				t.Errorf("name %q password %q", h.Name, h.Password.Reveal())
			}
		}},
		{"anchors and merge keys", `  ssh: &login {user: ops, password: "pw", sudo: true}
  hosts:
    - {name: a, address: 10.0.0.1, roles: [control-plane]}
    - <<: {address: 10.0.0.2, roles: [worker]}
      name: b
`, "", func(t *testing.T, c *Cluster) {
			if h := c.Spec.Hosts[1]; h.Address != "10.0.0.2" || !h.HasRole(RoleWorker) || h.SSH().User != "ops" {
				t.Errorf("merged host %+v", h)
			}
		}},
		{"even control planes is a warning", `  ssh: {agent: true}
  hosts:
    - {name: a, address: 10.0.0.1, roles: [control-plane, registry]}
    - {name: b, address: 10.0.0.2, roles: [control-plane]}
`, "", func(t *testing.T, c *Cluster) {
			w := c.Warnings()
			if len(w) != 1 || w[0].Path != "spec.hosts" || w[0].Line != 6 || !strings.Contains(w[0].Msg, "use an odd number") {
				t.Errorf("warnings %+v", w)
			}
		}},
		{"same address on another port is fine", `  ssh: {agent: true}
  hosts:
    - {name: a, address: 1.2.3.4, port: 2201, internalAddress: 10.0.0.1, roles: [control-plane]}
    - {name: b, address: 1.2.3.4, port: 2202, internalAddress: 10.0.0.2, roles: [worker]}
`, "", nil},
		{"IPv6 endpoint", `  ssh: {agent: true}
  hosts:
    - {name: a, address: "fd00::1", roles: [control-plane]}
  kubernetes: {podCIDR: "fd10::/56", serviceCIDR: "fd20::/108"}
`, "", func(t *testing.T, c *Cluster) {
			if ep := c.Spec.Kubernetes.ControlPlaneEndpoint; ep != "[fd00::1]:6443" {
				t.Errorf("endpoint %q", ep)
			}
		}},
		{"host in the pod range", `  ssh: {agent: true}
  hosts:
    - {name: a, address: 10.244.0.5, roles: [control-plane]}
`, "x.yaml:4: spec.kubernetes.podCIDR: 10.244.0.0/16 (the default, as podCIDR is not set) contains the internalAddress 10.244.0.5 of spec.hosts[0] (a)", nil},
		{"overlapping ranges", `  ssh: {agent: true}
  hosts:
    - {name: a, address: 192.168.0.5, roles: [control-plane]}
  kubernetes: {podCIDR: 10.0.0.0/8, serviceCIDR: 10.96.0.0/12}
`, "x.yaml:8: spec.kubernetes.serviceCIDR: 10.96.0.0/12 overlaps podCIDR 10.0.0.0/8", nil},
		{"empty file", ``, "the file is empty", nil},
		{"misspelled header", "  hosts: []\n", `x.yaml:1: apiversion: unknown field "apiversion"; did you mean "apiVersion"?`, nil},
		{"not a mapping", `  - a`, "spec: expected a mapping", nil},
		{"tilde without HOME", `  ssh: {privateKey: ~/.ssh/k}
  hosts:
    - {name: a, address: 10.0.0.1, roles: [control-plane]}
`, "HOME is not set", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOME": "/h"}
			if strings.Contains(tc.name, "HOME") {
				env = map[string]string{}
				t.Setenv("HOME", "")
			}
			src := head + tc.spec
			switch tc.name {
			case "empty file":
				src = ""
			case "misspelled header":
				src = strings.Replace(src, "apiVersion", "apiversion", 1)
			}
			c, err := Parse("x.yaml", []byte(src), ParseOptions{LookupEnv: lookup(env)})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want %q, got %v", tc.want, err)
			}
			if tc.check != nil && c != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, f := range []string{"testdata/full.yaml", "testdata/minimal.yaml", "testdata/lab.yaml"} {
		c := mustParseFile(t, f)
		out, err := Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := Parse(f, out, ParseOptions{LookupEnv: lookup(testEnv)})
		if err != nil {
			t.Fatalf("%s: Parse(Marshal(c)): %v\n%s", f, err, out)
		}
		out2, _ := Marshal(c2)
		if string(out) != string(out2) {
			t.Errorf("%s: Marshal is not stable across a round trip:\n%s\n---\n%s", f, out, out2)
		}
		if !strings.Contains(string(out), "# SSH defaults for every host") {
			t.Errorf("%s: no section comments:\n%s", f, out)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Setenv("WT_SSH_PASSWORD", "x")
	c, err := Load("testdata/lab.yaml")
	if err != nil || c.File() != "testdata/lab.yaml" {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Load("testdata/nope.yaml"); err == nil || !strings.HasPrefix(err.Error(), "read cluster config: ") {
		t.Fatalf("missing file: %v", err)
	}
}
