package containerd

import (
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
