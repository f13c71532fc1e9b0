package appkg

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/platform/app"
)

func TestBuildFromLayouts(t *testing.T) {
	fx := newFixture(t, "shop.yaml", "", 16<<10, webImage, dbImage)
	info := fx.build(t, nil)

	out := filepath.Join(fx.dir, "out")
	if want := filepath.Join(out, "shop-1.2.0.wtapp"); info.Path != want {
		t.Errorf("path %s, want %s", info.Path, want)
	}
	if got := dirNames(t, out); !slices.Equal(got, []string{"shop-1.2.0.wtapp"}) {
		t.Errorf("out dir holds %v, want only the package (no staging left behind)", got)
	}
	if st, err := os.Stat(info.Path); err != nil || st.Size() != info.Size {
		t.Errorf("size %d, file: %v %v", info.Size, st, err)
	}
	if !slices.Equal(info.Arches, DefaultArches) {
		t.Errorf("arches %v, want the default %v for an app that names none", info.Arches, DefaultArches)
	}
	a, canonical := canonicalOf(t, fx.appFile)
	if info.ContentDigest != app.Digest(canonical) || info.App.Key != a.Key {
		t.Errorf("content digest %s, want %s", info.ContentDigest, app.Digest(canonical))
	}
	if info.Signer != bundle.Fingerprint(fx.pub) {
		t.Errorf("signer %q", info.Signer)
	}
	if len(info.Images) != 2 {
		t.Fatalf("images %v", info.Images)
	}
	for _, n := range []string{webImage, dbImage} {
		im := imageByName(t, info.Images, n)
		want, err := images.Resolve(t.Context(), images.Source{OCILayout: fx.layout, RefName: n}, DefaultArches)
		if err != nil {
			t.Fatal(err)
		}
		wd, _ := want.Digest()
		if im.Digest != wd.String() {
			t.Errorf("%s: index digest %s, want the narrowed index %s", n, im.Digest, wd)
		}
		if !reflect.DeepEqual(im.Arches, archDigests(t, fx.idxs[n], DefaultArches)) {
			t.Errorf("%s: arches %v, want the source's per-arch digests", n, im.Arches)
		}
	}

	v, err := Verify(t.Context(), info.Path, fx.trusted())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !v.Trusted || v.PackageDigest != info.PackageDigest || v.ContentDigest != info.ContentDigest || !reflect.DeepEqual(v.Images, info.Images) {
		t.Errorf("verify info differs from build info:\n%+v\n%+v", v, info)
	}
	// Blobs shared by both images and both arches are stored once: per image an index, and per arch a manifest,
	// a config and an own layer; plus the two shared base layers.
	r, _, err := bundle.Open(info.Path, fx.trusted())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, want := len(r.Manifest.Entries), 3+2*(1+2*3)+2; got != want {
		t.Errorf("%d entries, want %d", got, want)
	}
	if r.Manifest.Kind != bundle.KindApp || r.Manifest.Name != "shop" || r.Manifest.Version != "1.2.0" || !r.Manifest.Created.Equal(created) {
		t.Errorf("manifest header %+v", r.Manifest)
	}
	if r.Manifest.Entries[0].Path != AppEntry || r.Manifest.Entries[0].SHA256 != strings.TrimPrefix(info.ContentDigest, "sha256:") {
		t.Errorf("first entry %+v, want app.json with the content digest", r.Manifest.Entries[0])
	}
}

func TestBuildFromRegistry(t *testing.T) {
	host := imagestest.NewRegistry(t)
	web, db := host+"/shop/web:1.0", host+"/shop/db:8.0"
	fx := newFixture(t, "shop.yaml", host+"/", 8<<10, web, db)
	for n, idx := range fx.idxs {
		imagestest.Push(t, n, idx)
	}
	info := fx.build(t, func(o *BuildOptions) {
		o.Layouts = nil
		o.Arches = allArches
		o.Output = filepath.Join(fx.dir, "custom.wtapp")
		o.OutDir = ""
	})
	if info.Path != filepath.Join(fx.dir, "custom.wtapp") || !slices.Equal(info.Arches, allArches) {
		t.Errorf("path %s arches %v", info.Path, info.Arches)
	}
	for n, idx := range fx.idxs {
		im := imageByName(t, info.Images, n)
		d, _ := idx.Digest()
		if im.Digest != d.String() {
			t.Errorf("%s: digest %s, want the registry's %s (nothing to narrow, so kept byte for byte)", n, im.Digest, d)
		}
		if im.Source != n {
			t.Errorf("%s: source %q", n, im.Source)
		}
	}
	if _, err := Verify(t.Context(), info.Path, fx.trusted()); err != nil {
		t.Fatal(err)
	}
}

func TestBuildArches(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		arches     []string
		want       []string
		wantErr    string
	}{
		{name: "app arches are the default", file: "limited.yaml", want: []string{"amd64", "arm64"}},
		{name: "subset of the app's", file: "limited.yaml", arches: []string{"arm64"}, want: []string{"arm64"}},
		{name: "outside the app's", file: "limited.yaml", arches: []string{"amd64", "loong64"}, wantErr: "arch loong64 is not one of the app's arches (amd64, arm64)"},
		{name: "unknown", file: "shop.yaml", arches: []string{"sparc"}, wantErr: `arch "sparc" is not supported`},
		{name: "repeated", file: "shop.yaml", arches: []string{"loong64", "amd64", "loong64"}, want: []string{"loong64", "amd64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, tc.file, "", 1<<10, webImage, dbImage)
			info, err := Build(t.Context(), BuildOptions{AppFile: fx.appFile, OutDir: filepath.Join(fx.dir, "out"), Layouts: []string{fx.layout}, Arches: tc.arches})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if _, serr := os.Stat(filepath.Join(fx.dir, "out")); !os.IsNotExist(serr) {
					t.Error("a refused build created its output dir")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(info.Arches, tc.want) {
				t.Errorf("arches %v, want %v", info.Arches, tc.want)
			}
			for _, im := range info.Images {
				if len(im.Arches) != len(tc.want) {
					t.Errorf("%s has arches %v", im.Name, im.Arches)
				}
			}
		})
	}
}

// A component limited to some arches gets its image packed for those alone.
func TestBuildComponentArches(t *testing.T) {
	fx := newFixture(t, "partial.yaml", "", 1<<10, webImage, legacyImage)
	info := fx.build(t, nil)
	if got := imageByName(t, info.Images, legacyImage).Arches; len(got) != 1 || got["amd64"] == "" {
		t.Errorf("legacy image arches %v, want amd64 only", got)
	}
	if got := imageByName(t, info.Images, webImage).Arches; len(got) != 2 {
		t.Errorf("web image arches %v, want amd64 and arm64", got)
	}
	if _, err := Verify(t.Context(), info.Path, fx.trusted()); err != nil {
		t.Fatal(err)
	}
	// Packing for arm64 alone leaves the legacy component's image without an arch.
	_, err := Build(t.Context(), BuildOptions{AppFile: fx.appFile, OutDir: filepath.Join(fx.dir, "arm"), Layouts: []string{fx.layout}, Arches: []string{"arm64"}})
	if err == nil || !strings.Contains(err.Error(), legacyImage) {
		t.Fatalf("want an error naming %s, got %v", legacyImage, err)
	}
}

func TestBuildLeavesNothingOnFailure(t *testing.T) {
	host := imagestest.NewRegistry(t) // reachable, but holds nothing
	fx := newFixture(t, "shop.yaml", host+"/", 1<<10, host+"/shop/web:1.0")

	// An image in no layout and not in its registry.
	out := filepath.Join(fx.dir, "new", "out")
	_, err := Build(t.Context(), BuildOptions{AppFile: fx.appFile, OutDir: out, Layouts: []string{fx.layout}})
	if err == nil || !strings.Contains(err.Error(), host+"/shop/db:8.0") || !strings.Contains(err.Error(), "OCI layout") {
		t.Fatalf("want an error naming the missing image and the fix, got %v", err)
	}
	if _, serr := os.Stat(out); !os.IsNotExist(serr) {
		t.Errorf("a failed build left its output dir behind: %v", dirNames(t, out))
	}

	// A corrupt layer fails while staging, after other blobs were written: an older package of the same name
	// survives untouched, and nothing else is left.
	fx2 := newFixture(t, "shop.yaml", "", 4<<10, webImage, dbImage)
	first := fx2.build(t, nil)
	old := readAll(t, first.Path)
	m, _ := fx2.idxs[dbImage].IndexManifest()
	img, _ := fx2.idxs[dbImage].Image(m.Manifests[1].Digest)
	layers, _ := img.Layers()
	ld, _ := layers[len(layers)-1].Digest()
	blob := filepath.Join(fx2.layout, "blobs", "sha256", ld.Hex)
	data := readAll(t, blob)
	data[len(data)/2] ^= 1
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Build(t.Context(), BuildOptions{AppFile: fx2.appFile, OutDir: filepath.Join(fx2.dir, "out"), Layouts: []string{fx2.layout}, Force: true})
	if err == nil || !strings.Contains(err.Error(), dbImage) {
		t.Fatalf("want an error naming %s, got %v", dbImage, err)
	}
	if got := dirNames(t, filepath.Join(fx2.dir, "out")); !slices.Equal(got, []string{"shop-1.2.0.wtapp"}) {
		t.Errorf("out dir holds %v after a failed build", got)
	}
	if !slices.Equal(readAll(t, first.Path), old) {
		t.Error("a failed --force build changed the existing package")
	}
}

func TestBuildRefusesExistingOutput(t *testing.T) {
	fx := newFixture(t, "shop.yaml", "", 1<<10, webImage, dbImage)
	first := fx.build(t, nil)
	_, err := Build(t.Context(), BuildOptions{AppFile: fx.appFile, OutDir: filepath.Join(fx.dir, "out"), Layouts: []string{fx.layout}})
	if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("want a refusal naming --force, got %v", err)
	}
	second := fx.build(t, func(o *BuildOptions) { o.Force = true; o.Key = nil })
	if second.Path != first.Path || second.Signer != "" {
		t.Errorf("forced rebuild: %+v", second)
	}
	if _, err := Build(t.Context(), BuildOptions{AppFile: fx.appFile, Output: fx.dir, Layouts: []string{fx.layout}}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("output that is a directory: %v", err)
	}
}

// An image found in a layout under its normalized name (docker.io/library/…) matches the short name the app uses.
func TestLayoutRefsMatchNormalizedNames(t *testing.T) {
	lr := layoutRefs{refs: []string{"docker.io/library/nginx:1.27", "registry.k8s.io/pause:3.10"}}
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"nginx:1.27", "docker.io/library/nginx:1.27", true},
		{"index.docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27", true},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", true},
		{"nginx:1.28", "", false},
		{"pause:3.10", "", false},
	} {
		got, ok := lr.find(tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("find(%s) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
