package images

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wutong-paas/wutong-offline/images/imagestest"
)

func TestCreateOpenLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "layout")
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"oci-layout": `"imageLayoutVersion":"1.0.0"`, "index.json": `"manifests": []`} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s = %q, %v; want it to contain %s", f, b, err, want)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("layout dir: %v, %v", fi, err)
	}
	if imgs, err := l.Images(); err != nil || len(imgs) != 0 {
		t.Errorf("new layout lists %v, %v", imgs, err)
	}
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	if got, want := l.BlobPath(h), filepath.Join(dir, "blobs", "sha256", h.Hex); got != want {
		t.Errorf("BlobPath = %s, want %s", got, want)
	}
	if _, err := CreateLayout(dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("creating over an existing layout: %v", err)
	}
	if _, err := OpenLayout(dir); err != nil {
		t.Errorf("open: %v", err)
	}
	if _, err := OpenLayout(filepath.Dir(dir)); err == nil || !strings.Contains(err.Error(), "oci-layout") {
		t.Errorf("opening a plain dir: %v", err)
	}
}

func TestLayoutImagesOfForeignLayout(t *testing.T) {
	dir := t.TempDir()
	idx := imagestest.RandomIndex(t, []string{"arm64", "loong64"}, 0, 1, 128)
	img := imagestest.NewImage(t, "amd64", imagestest.RandomLayers(t, 1, 128))
	writeGGCRLayout(t, dir, map[string]any{"a.io/idx:1": idx, "b.io/img:1": img})
	imgs, err := Layout(dir).Images()
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].Name != "a.io/idx:1" || imgs[1].Name != "b.io/img:1" {
		t.Fatalf("images %+v", imgs)
	}
	want := digestsByArch(t, idx)
	if len(imgs[0].Platforms) != 2 || imgs[0].Platforms["arm64"] != want["arm64"] || imgs[0].Platforms["loong64"] != want["loong64"] {
		t.Errorf("index platforms %v, want %v", imgs[0].Platforms, want)
	}
	if len(imgs[1].Platforms) != 1 || imgs[1].Platforms["amd64"] != mustDigest(t, img) {
		t.Errorf("image platforms %v", imgs[1].Platforms)
	}
}

func TestArchDigests(t *testing.T) {
	amd := imagestest.NewImage(t, "amd64", imagestest.RandomLayers(t, 1, 64))
	amd2 := imagestest.NewImage(t, "amd64", imagestest.RandomLayers(t, 1, 64))
	arm := imagestest.NewImage(t, "arm64", imagestest.RandomLayers(t, 1, 64))
	base := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	plat := func(arch string) v1.Descriptor {
		return v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}
	}
	for _, tc := range []struct {
		name    string
		idx     v1.ImageIndex
		want    map[string]v1.Hash
		wantErr string
	}{
		{"platforms", mutate.AppendManifests(base,
			mutate.IndexAddendum{Add: amd, Descriptor: plat("amd64")},
			mutate.IndexAddendum{Add: arm, Descriptor: plat("arm64")}),
			map[string]v1.Hash{"amd64": mustDigest(t, amd), "arm64": mustDigest(t, arm)}, ""},
		{"platform from config", mutate.AppendManifests(base, mutate.IndexAddendum{Add: arm}),
			map[string]v1.Hash{"arm64": mustDigest(t, arm)}, ""},
		{"windows skipped", mutate.AppendManifests(base,
			mutate.IndexAddendum{Add: amd2, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "windows", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: amd, Descriptor: plat("amd64")}),
			map[string]v1.Hash{"amd64": mustDigest(t, amd)}, ""},
		{"two amd64", mutate.AppendManifests(base,
			mutate.IndexAddendum{Add: amd, Descriptor: plat("amd64")},
			mutate.IndexAddendum{Add: amd2, Descriptor: plat("amd64")}),
			nil, "two images for linux/amd64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ArchDigests(tc.idx)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for a, h := range tc.want {
				if got[a] != h {
					t.Errorf("%s: %s, want %s", a, got[a], h)
				}
			}
		})
	}
}

func TestResolveNestedAndUnlabelled(t *testing.T) {
	amd := imagestest.NewImage(t, "amd64", imagestest.RandomLayers(t, 1, 64))
	arm := imagestest.NewImage(t, "arm64", imagestest.RandomLayers(t, 1, 64))
	loong := imagestest.NewImage(t, "loong64", imagestest.RandomLayers(t, 1, 64))
	base := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	inner := mutate.AppendManifests(base,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	outer := mutate.AppendManifests(base,
		mutate.IndexAddendum{Add: inner},
		mutate.IndexAddendum{Add: amd}, // no platform in the index: read from the config
		mutate.IndexAddendum{Add: loong, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "loong64"}}})
	deep := mutate.AppendManifests(base, mutate.IndexAddendum{Add: outer})
	dir := t.TempDir()
	writeGGCRLayout(t, dir, map[string]any{"x/outer:1": outer, "x/deep:1": deep})

	idx, err := Resolve(t.Context(), Source{OCILayout: dir, RefName: "x/outer:1"}, Arches)
	if err != nil {
		t.Fatal(err)
	}
	if got := archOrder(t, idx); !slices.Equal(got, Arches) {
		t.Fatalf("arches %v", got)
	}
	im, _ := idx.IndexManifest()
	if v := im.Manifests[1].Platform.Variant; v != "v8" {
		t.Errorf("arm64 variant %q, want v8 kept", v)
	}
	for i, img := range []v1.Image{amd, arm, loong} {
		if im.Manifests[i].Digest != mustDigest(t, img) {
			t.Errorf("manifest %d: digest %s, want %s", i, im.Manifests[i].Digest, mustDigest(t, img))
		}
	}
	checkIndex(t, idx)

	_, err = Resolve(t.Context(), Source{OCILayout: dir, RefName: "x/deep:1"}, []string{"amd64"})
	if err == nil || !strings.Contains(err.Error(), "one level of nesting") {
		t.Errorf("doubly nested index: %v", err)
	}
}
