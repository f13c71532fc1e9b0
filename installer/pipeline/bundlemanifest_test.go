package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBundleManifestStaysInBundle: manifests are read from the extracted bundle only; a link that leads outside the
// bundle directory is refused instead of followed, while links inside it still work.
func TestBundleManifestStaysInBundle(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.yaml")
	if err := os.WriteFile(secret, []byte("secret: outside the bundle\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	manifests := filepath.Join(dir, "manifests")
	if err := os.Mkdir(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(manifests, "flannel.yaml"), []byte("kind: flannel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"alias.yaml":    "flannel.yaml", // inside the bundle
		"escape.yaml":   secret,         // absolute, outside
		"relative.yaml": filepath.Join("..", "..", filepath.Base(outside), "secret.yaml"),
		"outdir":        outside,
	} {
		if err := os.Symlink(target, filepath.Join(manifests, name)); err != nil {
			t.Fatal(err)
		}
	}
	in := &Install{BundleDir: dir}
	cases := []struct {
		name    string
		want    string // content, when read
		ok      bool
		refused bool
	}{
		{"flannel.yaml", "kind: flannel\n", true, false},
		{"alias.yaml", "kind: flannel\n", true, false},
		{"none.yaml", "", false, false},
		{"escape.yaml", "", false, true},
		{"relative.yaml", "", false, true},
		{"outdir/secret.yaml", "", false, true},
	}
	for _, tc := range cases {
		data, ok, err := in.bundleManifest(tc.name)
		switch {
		case tc.refused && (err == nil || ok || data != nil):
			t.Errorf("%s: read %q (ok=%v, err=%v); want a refusal, the link leads outside the bundle", tc.name, data, ok, err)
		case tc.refused && !strings.Contains(err.Error(), tc.name):
			t.Errorf("%s: error %q does not name the manifest", tc.name, err)
		case !tc.refused && (err != nil || ok != tc.ok || string(data) != tc.want):
			t.Errorf("%s: got %q, ok=%v, err=%v; want %q, ok=%v", tc.name, data, ok, err, tc.want, tc.ok)
		}
	}
}
