package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wutong-paas/wutong-offline/images/imagestest"
)

// withExtras adds what real multi-arch images carry besides our arches: an
// s390x image and a buildkit attestation manifest.
func withExtras(t *testing.T, idx v1.ImageIndex) v1.ImageIndex {
	t.Helper()
	s390x := imagestest.NewImage(t, "s390x", imagestest.RandomLayers(t, 1, 64))
	att := imagestest.NewImage(t, "unknown", imagestest.RandomLayers(t, 1, 64))
	return mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: s390x, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{annotationReferenceType: "attestation-manifest"},
		}},
	)
}

// indentedIndex is an index whose manifest is indented JSON, the way some
// tools write it, so re-marshalling it would change its digest.
type indentedIndex struct {
	inner v1.ImageIndex
	raw   []byte
}

func indented(t *testing.T, idx v1.ImageIndex) v1.ImageIndex {
	t.Helper()
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "   "); err != nil {
		t.Fatal(err)
	}
	return &indentedIndex{idx, b.Bytes()}
}

func (x *indentedIndex) RawManifest() ([]byte, error)                { return x.raw, nil }
func (x *indentedIndex) Digest() (v1.Hash, error)                    { return partial.Digest(x) }
func (x *indentedIndex) Size() (int64, error)                        { return partial.Size(x) }
func (x *indentedIndex) MediaType() (types.MediaType, error)         { return x.inner.MediaType() }
func (x *indentedIndex) IndexManifest() (*v1.IndexManifest, error)   { return x.inner.IndexManifest() }
func (x *indentedIndex) Image(h v1.Hash) (v1.Image, error)           { return x.inner.Image(h) }
func (x *indentedIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) { return x.inner.ImageIndex(h) }

func TestResolveRegistry(t *testing.T) {
	// Count layer fetches: Resolve must not read any.
	var mu sync.Mutex
	var blobGets []string
	host := imagestest.NewRegistryWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				mu.Lock()
				blobGets = append(blobGets, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	all := indented(t, imagestest.RandomIndex(t, Arches, 1, 1, 512))
	allRef := imagestest.Push(t, host+"/test/all:1", all)
	extra := withExtras(t, imagestest.RandomIndex(t, []string{"arm64", "amd64"}, 1, 1, 512))
	extraRef := imagestest.Push(t, host+"/test/extra:1", extra)
	single := imagestest.NewImage(t, "arm64", imagestest.RandomLayers(t, 2, 512))
	singleRef := host + "/test/single:1"
	if ref, err := name.ParseReference(singleRef); err != nil {
		t.Fatal(err)
	} else if err := remote.Write(ref, single); err != nil {
		t.Fatal(err)
	}
	pinned := host + "/test/all@" + mustDigest(t, all).String()

	for _, tc := range []struct {
		name       string
		ref        string
		src        v1.ImageIndex // where digests come from; nil for single
		arches     []string
		missing    string // arch expected in a MissingPlatformError
		sameDigest bool   // index digest must equal the source's
	}{
		{name: "one arch", ref: allRef, src: all, arches: []string{"amd64"}},
		{name: "reordered", ref: allRef, src: all, arches: []string{"loong64", "amd64"}},
		{name: "all arches unchanged", ref: allRef, src: all, arches: Arches, sameDigest: true},
		{name: "pinned by digest", ref: pinned, src: all, arches: []string{"arm64"}},
		{name: "extras dropped", ref: extraRef, src: extra, arches: []string{"amd64", "arm64"}},
		{name: "extras missing loong64", ref: extraRef, arches: []string{"amd64", "loong64"}, missing: "loong64"},
		{name: "single image", ref: singleRef, arches: []string{"arm64"}},
		{name: "single image missing amd64", ref: singleRef, arches: []string{"arm64", "amd64"}, missing: "amd64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			blobGets = nil
			mu.Unlock()
			idx, err := Resolve(t.Context(), Source{Registry: tc.ref}, tc.arches)
			if tc.missing != "" {
				t.Log(err)
				var mp *MissingPlatformError
				if !errors.As(err, &mp) || mp.Arch != tc.missing || mp.Image != tc.ref {
					t.Fatalf("err = %v, want MissingPlatformError for %s", err, tc.missing)
				}
				for _, want := range []string{tc.ref, "linux/" + tc.missing, "linux/arm64", "arches:"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := archOrder(t, idx); !slices.Equal(got, tc.arches) {
				t.Fatalf("arches = %v, want %v", got, tc.arches)
			}
			got := digestsByArch(t, idx)
			if tc.src != nil {
				want := digestsByArch(t, tc.src)
				for _, a := range tc.arches {
					if got[a] != want[a] {
						t.Errorf("%s digest = %s, source has %s", a, got[a], want[a])
					}
				}
			} else if got[tc.arches[0]] != mustDigest(t, single) {
				t.Errorf("single image digest = %s, want %s", got[tc.arches[0]], mustDigest(t, single))
			}
			if tc.sameDigest != (tc.src != nil && mustDigest(t, idx) == mustDigest(t, tc.src)) {
				t.Errorf("index digest kept = %v, want %v", !tc.sameDigest, tc.sameDigest)
			}
			// Every manifest is reachable through the index.
			for a, h := range got {
				img, err := idx.Image(h)
				if err != nil {
					t.Fatal(err)
				}
				cf, err := img.ConfigFile()
				if err != nil || cf.Architecture != a {
					t.Fatalf("image %s: config arch %v, %v", h, cf, err)
				}
			}
			if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
				t.Errorf("media type %s", mt)
			}
			// Manifests and configs may be fetched, layers must not be.
			mu.Lock()
			defer mu.Unlock()
			for _, h := range got {
				img, _ := idx.Image(h)
				m, err := img.Manifest()
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range m.Layers {
					if slices.Contains(blobGets, l.Digest.String()) {
						t.Errorf("Resolve fetched layer %s", l.Digest)
					}
				}
			}
		})
	}
}

func TestResolveLayout(t *testing.T) {
	dir := t.TempDir()
	a := imagestest.RandomIndex(t, Arches, 1, 1, 256)
	b := withExtras(t, imagestest.RandomIndex(t, []string{"amd64", "arm64"}, 1, 0, 256))
	c := imagestest.NewImage(t, "amd64", imagestest.RandomLayers(t, 1, 256))
	writeGGCRLayout(t, dir, map[string]any{
		"example.com/lib/a:1": a,
		"other.io/b:2":        b,
		"mirror.io/b:2":       b,
		"c:3":                 c,
	})
	for _, tc := range []struct {
		name    string
		refName string
		arches  []string
		src     v1.Image
		srcIdx  v1.ImageIndex
		wantErr []string
	}{
		{name: "exact", refName: "example.com/lib/a:1", arches: []string{"arm64", "loong64"}, srcIdx: a},
		{name: "suffix", refName: "a:1", arches: []string{"amd64"}, srcIdx: a},
		{name: "suffix with path", refName: "lib/a:1", arches: []string{"loong64"}, srcIdx: a},
		{name: "exact beats nothing", refName: "other.io/b:2", arches: []string{"amd64", "arm64"}, srcIdx: b},
		{name: "single image", refName: "c:3", arches: []string{"amd64"}, src: c},
		{name: "no boundary", refName: "b/a:1", wantErr: []string{`no image named "b/a:1"`, "example.com/lib/a:1", "c:3"}},
		{name: "ambiguous", refName: "b:2", wantErr: []string{"matches 2 images", "other.io/b:2", "mirror.io/b:2"}},
		{name: "unnamed pick", refName: "", wantErr: []string{"holds 4 images", "example.com/lib/a:1"}},
		{name: "missing arch", refName: "other.io/b:2", arches: []string{"loong64"}, wantErr: []string{"linux/loong64", "linux/s390x", "arches:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arches := tc.arches
			if arches == nil {
				arches = []string{"amd64"}
			}
			src := Source{OCILayout: dir, RefName: tc.refName}
			idx, err := Resolve(t.Context(), src, arches)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				t.Log(err)
				for _, w := range append(tc.wantErr, dir) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := archOrder(t, idx); !slices.Equal(got, arches) {
				t.Fatalf("arches = %v, want %v", got, arches)
			}
			got := digestsByArch(t, idx)
			for _, arch := range arches {
				var want v1.Hash
				if tc.srcIdx != nil {
					want = digestsByArch(t, tc.srcIdx)[arch]
				} else {
					want = mustDigest(t, tc.src)
				}
				if got[arch] != want {
					t.Errorf("%s: digest %s, want %s", arch, got[arch], want)
				}
			}
			if r, ok := idx.(*resolvedIndex); !ok || r.layoutBlobs != filepath.Join(dir, "blobs") {
				t.Errorf("layout blobs dir not recorded: %#v", idx)
			}
		})
	}
}

func TestResolveDockerArchive(t *testing.T) {
	dir := t.TempDir()
	amd := imagestest.NewImage(t, "amd64", imagestest.RandomLayers(t, 2, 256))
	arm := imagestest.NewImage(t, "arm64", imagestest.RandomLayers(t, 1, 256))
	one := filepath.Join(dir, "one.tar")
	if err := tarball.WriteToFile(one, name.MustParseReference("example.com/one:1"), amd); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two.tar")
	err := tarball.MultiRefWriteToFile(two, map[name.Reference]v1.Image{
		name.MustParseReference("example.com/x:amd"): amd,
		name.MustParseReference("example.com/x:arm"): arm,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		src     Source
		arches  []string
		wantErr []string
	}{
		{name: "single", src: Source{DockerArchive: one}, arches: []string{"amd64"}},
		{name: "tag", src: Source{DockerArchive: two, Tag: "example.com/x:arm"}, arches: []string{"arm64"}},
		{name: "wrong arch", src: Source{DockerArchive: one}, arches: []string{"arm64"}, wantErr: []string{"linux/arm64", "linux/amd64", one}},
		{name: "needs tag", src: Source{DockerArchive: two}, arches: []string{"amd64"}, wantErr: []string{two, "example.com/x:amd", "example.com/x:arm"}},
		{name: "unknown tag", src: Source{DockerArchive: two, Tag: "example.com/x:s390x"}, arches: []string{"amd64"}, wantErr: []string{"example.com/x:s390x", "example.com/x:arm"}},
		{name: "missing file", src: Source{DockerArchive: filepath.Join(dir, "nope.tar")}, arches: []string{"amd64"}, wantErr: []string{"nope.tar"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx, err := Resolve(t.Context(), tc.src, tc.arches)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				t.Log(err)
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := archOrder(t, idx); !slices.Equal(got, tc.arches) {
				t.Fatalf("arches = %v, want %v", got, tc.arches)
			}
			if mt, _ := idx.MediaType(); mt != types.DockerManifestList {
				t.Errorf("media type %s, want a docker manifest list for docker images", mt)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	missingDir := filepath.Join(t.TempDir(), "no-layout")
	for _, tc := range []struct {
		name   string
		src    Source
		arches []string
		want   []string
	}{
		{"unreachable registry", Source{Registry: "127.0.0.1:1/lib/app:1"}, []string{"amd64"}, []string{"127.0.0.1:1/lib/app:1", "connection refused"}},
		{"bad reference", Source{Registry: "Not A Ref"}, []string{"amd64"}, []string{"Not A Ref"}},
		{"missing layout", Source{OCILayout: missingDir}, []string{"amd64"}, []string{missingDir, "no such file"}},
		{"unknown arch", Source{Registry: "example.com/a:1"}, []string{"amd64", "x86_64"}, []string{`unknown arch "x86_64"`, "amd64, arm64, loong64"}},
		{"empty source", Source{}, []string{"amd64"}, []string{"empty image source"}},
		{"two sources", Source{Registry: "a:1", OCILayout: "/x"}, []string{"amd64"}, []string{"registry and ociLayout"}},
		{"stray tag", Source{Registry: "a:1", Tag: "b"}, []string{"amd64"}, []string{"only valid with dockerArchive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(ctx, tc.src, tc.arches)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
