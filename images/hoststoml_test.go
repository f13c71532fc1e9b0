package images

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if intended)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestHostsTOML(t *testing.T) {
	const ca = "/etc/wutong/pki/ca.crt"
	tests := []struct{ golden, upstream, local, ca string }{
		{"hosts-registry.k8s.io.toml", "registry.k8s.io", "10.99.0.10:5000", ca},
		{"hosts-docker.io.toml", "index.docker.io", "10.99.0.10:5000", ca},
		{"hosts-port.toml", "localhost:5000", "registry.wutong.local", ca},
		{"hosts-no-ca.toml", "quay.io", "10.99.0.10:5000", ""},
		{"hosts-quoted-ca.toml", "ghcr.io", "10.99.0.10:5000", `C:\ca "x".crt` + "\n"},
		{"hosts-ipv6.toml", "[::1]:5000", "10.99.0.10:5000", ca},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			golden(t, tt.golden, HostsTOML(tt.upstream, tt.local, tt.ca))
		})
	}
}

func TestHostsTOMLMatchesLocalRef(t *testing.T) {
	// The mirror URL path + containerd's repository path must be LocalRef's repository.
	const local = "10.99.0.10:5000"
	for upstream, ref := range map[string]string{
		"registry.k8s.io": "registry.k8s.io/kube-apiserver:v1.37.2",
		"docker.io":       "docker.io/library/nginx:1.27",
		"localhost:5000":  "localhost:5000/team/app:1",
	} {
		got := string(HostsTOML(upstream, local, ""))
		mapped, err := LocalRef(ref, local)
		if err != nil {
			t.Fatal(err)
		}
		repoPath := strings.TrimPrefix(strings.SplitN(ref, ":", 2)[0], upstream+"/")
		if upstream == "localhost:5000" {
			repoPath = "team/app"
		}
		mirror := `[host."https://` + local + `/v2/`
		i := strings.Index(got, mirror)
		if i < 0 {
			t.Fatalf("%s: no mirror host in\n%s", upstream, got)
		}
		comp := got[i+len(mirror):]
		comp = comp[:strings.IndexByte(comp, '"')]
		if want := local + "/" + comp + "/" + repoPath; !strings.HasPrefix(mapped, want+":") {
			t.Errorf("%s: containerd would pull %s, LocalRef says %s", upstream, want, mapped)
		}
	}
}

func TestCertsD(t *testing.T) {
	files := CertsD("10.99.0.10:5000", "/etc/wutong/pki/ca.crt",
		[]string{"registry.k8s.io", "docker.io", "index.docker.io", "Quay.io", "localhost:5000", "10.99.0.10:5000", "../evil", ""})
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"10.99.0.10:5000/hosts.toml", "docker.io/hosts.toml", "localhost:5000/hosts.toml", "quay.io/hosts.toml", "registry.k8s.io/hosts.toml"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("CertsD files = %v; want %v", names, want)
	}
	golden(t, "certsd-local.toml", files["10.99.0.10:5000/hosts.toml"])
	if !bytes.Equal(files["docker.io/hosts.toml"], HostsTOML("docker.io", "10.99.0.10:5000", "/etc/wutong/pki/ca.crt")) {
		t.Error("docker.io/hosts.toml is not HostsTOML(docker.io)")
	}
}
