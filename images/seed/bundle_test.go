package seed

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/bundle/build"
)

// buildBundle writes the images as an OCI layout, builds a signed bundle from it and returns the archive path (or
// its first part when split), the public key and the bundle's image list.
func buildBundle(t *testing.T, idxs map[string]v1.ImageIndex, split int64) (string, ed25519.PublicKey, []bundle.Image) {
	t.Helper()
	dir := t.TempDir()
	writeLayout(t, filepath.Join(dir, "layout"), idxs)
	spec := "apiVersion: wutong.io/v1alpha1\nkind: BundleSpec\nname: seedtest\nversion: 1.0.0\narches: [amd64, arm64, loong64]\nkubernetesVersion: v1.37.2\nimages:\n"
	for n := range idxs {
		spec += "  - {name: " + n + ", ociLayout: layout, refName: \"" + n + "\"}\n"
	}
	p := filepath.Join(dir, "bundle.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := build.LoadSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	res, err := build.Build(context.Background(), build.Options{Spec: s, OutDir: filepath.Join(dir, "out"), Key: key, SplitSize: split})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Parts) > 0 {
		return res.Parts[0], pub, res.Images
	}
	return res.Archive, pub, res.Images
}

func TestFromBundle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		split int64
	}{{"archive", 0}, {"parts", 256 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			arch, pub, imgs := buildBundle(t, twoImages(t, 64<<10), tc.split)
			root := t.TempDir()
			ropts := bundle.ReadOptions{Keys: []ed25519.PublicKey{pub}}
			var progressed int64
			st, err := FromBundle(t.Context(), arch, ropts, Options{Root: root, Progress: func(n int64) { progressed += n }})
			if err != nil {
				t.Fatal(err)
			}
			if st.Images != len(imgs) || st.BytesWritten == 0 || st.BlobsSkipped != 0 || progressed != st.BytesWritten {
				t.Fatalf("first seed: %+v (progress %d), want %d images", st, progressed, len(imgs))
			}
			srv := serveRoot(t, root)
			for _, im := range imgs {
				want, err := v1.NewHash(im.Digest)
				if err != nil {
					t.Fatal(err)
				}
				if err := srv.pullIndex(t.Context(), im.Name, want); err != nil {
					t.Fatalf("pull %s: %v", im.Name, err)
				}
			}
			again, err := FromBundle(t.Context(), arch, ropts, Options{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			if again.BytesWritten != 0 || again.Links != 0 || again.BlobsSkipped != again.Blobs {
				t.Fatalf("second seed is not a no-op: %+v", again)
			}
		})
	}
}

// TestFromBundleUntrusted: a bundle signed by an unknown key is refused before anything is written.
func TestFromBundleUntrusted(t *testing.T) {
	arch, _, _ := buildBundle(t, twoImages(t, 16<<10), 0)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	root := filepath.Join(t.TempDir(), "root")
	_, err := FromBundle(t.Context(), arch, bundle.ReadOptions{Keys: []ed25519.PublicKey{other}}, Options{Root: root})
	var te *bundle.TrustError
	if !errors.As(err, &te) {
		t.Fatalf("want a *bundle.TrustError, got %v", err)
	}
	if _, err := os.Stat(root); err == nil {
		t.Fatal("the storage root was created for an untrusted bundle")
	}
}
