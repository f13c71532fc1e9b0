package images

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/wutong-paas/wutong-offline/images/imagestest"
)

func TestArchBlobs(t *testing.T) {
	l, err := CreateLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	multi := imagestest.RandomIndex(t, []string{"amd64", "arm64"}, 1, 1, 256)
	armOnly := imagestest.RandomIndex(t, []string{"arm64"}, 0, 1, 256)
	for name, idx := range map[string]v1.ImageIndex{"x.io/multi:1": multi, "x.io/arm:1": armOnly} {
		if _, err := l.Append(t.Context(), name, idx, nil); err != nil {
			t.Fatal(err)
		}
	}
	amd, err := l.ArchBlobs("amd64")
	if err != nil {
		t.Fatal(err)
	}
	arm, err := l.ArchBlobs("arm64")
	if err != nil {
		t.Fatal(err)
	}
	// amd64: multi's index, its amd64 manifest, config, shared layer and own layer.
	if len(amd) != 5 {
		t.Fatalf("amd64 blobs: %d %v", len(amd), amd)
	}
	// arm64: the same for multi, plus armOnly's index, manifest, config and layer.
	if len(arm) != 9 {
		t.Fatalf("arm64 blobs: %d %v", len(arm), arm)
	}
	if none, err := l.ArchBlobs("loong64"); err != nil || len(none) != 0 {
		t.Fatalf("loong64: %v %v", none, err)
	}

	// Copied with index.json and oci-layout, the amd64 subset is a layout go-containerregistry reads fully for amd64.
	sub := t.TempDir()
	os.MkdirAll(filepath.Join(sub, "blobs", "sha256"), 0o755)
	for _, f := range []string{"index.json", "oci-layout"} {
		b, _ := os.ReadFile(l.Path(f))
		os.WriteFile(filepath.Join(sub, f), b, 0o644)
	}
	for _, h := range amd {
		b, _ := os.ReadFile(l.BlobPath(h))
		os.WriteFile(filepath.Join(sub, "blobs", "sha256", h.Hex), b, 0o644)
	}
	p, err := layout.FromPath(sub)
	if err != nil {
		t.Fatal(err)
	}
	ii, _ := p.ImageIndex()
	im, _ := ii.IndexManifest()
	var found bool
	for _, d := range im.Manifests {
		if d.Annotations[AnnotationRefName] != "x.io/multi:1" {
			continue
		}
		child, err := ii.ImageIndex(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cm, _ := child.IndexManifest()
		for _, m := range cm.Manifests {
			if m.Platform.Architecture != "amd64" {
				continue
			}
			img, _ := child.Image(m.Digest)
			layers, _ := img.Layers()
			for _, layer := range layers {
				rc, err := layer.Compressed()
				if err != nil {
					t.Fatalf("amd64 layer missing from the subset: %v", err)
				}
				rc.Close()
			}
			found = true
		}
	}
	if !found || !slices.IsSortedFunc(amd, func(a, b v1.Hash) int {
		if a.String() < b.String() {
			return -1
		}
		return 1
	}) {
		t.Fatal("amd64 image not found in the subset, or blobs not sorted")
	}
}
