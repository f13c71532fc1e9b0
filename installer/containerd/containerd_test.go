package containerd

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

func TestConfigTOML(t *testing.T) {
	off := false
	for _, tc := range []struct {
		o       Options
		sandbox string
		systemd bool
	}{
		{Options{}, "registry.k8s.io/pause:3.10", true},
		{Options{SandboxImage: "registry.k8s.io/pause:3.11", SystemdCgroup: &off}, "registry.k8s.io/pause:3.11", false},
	} {
		var cfg map[string]any
		if err := toml.Unmarshal(ConfigTOML(tc.o), &cfg); err != nil {
			t.Fatalf("not TOML: %v\n%s", err, ConfigTOML(tc.o))
		}
		plugins := cfg["plugins"].(map[string]any)
		images := plugins["io.containerd.cri.v1.images"].(map[string]any)
		if got := images["pinned_images"].(map[string]any)["sandbox"]; got != tc.sandbox {
			t.Errorf("sandbox = %v", got)
		}
		if got := images["registry"].(map[string]any)["config_path"]; got != CertsDir {
			t.Errorf("config_path = %v", got)
		}
		runc := plugins["io.containerd.cri.v1.runtime"].(map[string]any)["containerd"].(map[string]any)["runtimes"].(map[string]any)["runc"].(map[string]any)
		if got := runc["options"].(map[string]any)["SystemdCgroup"]; got != tc.systemd {
			t.Errorf("SystemdCgroup = %v", got)
		}
		if cfg["version"] != int64(3) {
			t.Errorf("version = %v", cfg["version"])
		}
	}
	if !strings.Contains(string(UnitFile()), "ExecStart=/usr/local/bin/containerd") {
		t.Error("unit")
	}
}

func TestTarLayout(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755)
	for p, c := range map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{}`, "blobs/sha256/aa": "blob a", "blobs/sha256/bb": "blob b"} {
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
	var buf bytes.Buffer
	if err := tarLayout(t.Context(), &buf, dir); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got = append(got, h.Name+"="+string(b))
	}
	want := []string{`oci-layout={"imageLayoutVersion":"1.0.0"}`, "index.json={}", "blobs/sha256/aa=blob a", "blobs/sha256/bb=blob b"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tar entries:\n%s", strings.Join(got, "\n"))
	}
	os.Remove(filepath.Join(dir, "index.json"))
	if err := tarLayout(t.Context(), io.Discard, dir); err == nil {
		t.Fatal("a layout without index.json was streamed")
	}
}
