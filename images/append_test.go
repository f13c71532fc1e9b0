package images

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wutong-paas/wutong-offline/images/imagestest"
)

// appendAll resolves and appends each ref into l under its own name,
// checking that progress adds up to BlobsSize.
func appendAll(t *testing.T, l Layout, arches []string, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		idx, err := Resolve(t.Context(), Source{Registry: ref}, arches)
		if err != nil {
			t.Fatal(err)
		}
		total, err := BlobsSize(t.Context(), idx)
		if err != nil {
			t.Fatal(err)
		}
		var done int64
		d, err := l.Append(t.Context(), ref, idx, func(n int64) { done += n })
		if err != nil {
			t.Fatal(err)
		}
		if done != total || total == 0 {
			t.Errorf("%s: progress reported %d bytes, blobs total %d", ref, done, total)
		}
		if d.Digest != mustDigest(t, idx) || d.Annotations[AnnotationRefName] != ref {
			t.Errorf("%s: descriptor %+v", ref, d)
		}
	}
}

// snapshot records each blob's inode identity and mtime, and index.json.
func snapshot(t *testing.T, dir string) (map[string]os.FileInfo, []byte) {
	t.Helper()
	out := map[string]os.FileInfo{}
	for _, n := range blobFiles(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, "blobs", "sha256", n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = fi
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	return out, b
}

func TestAppendSharedLayers(t *testing.T) {
	host := imagestest.NewRegistry(t)
	arches := []string{"amd64", "arm64"}
	base := imagestest.RandomLayers(t, 2, 4096)
	a := imagestest.NewIndex(t, arches, base, 1, 4096)
	b := imagestest.NewIndex(t, arches, base, 1, 4096)
	refA := imagestest.Push(t, host+"/lib/a:1", a)
	refB := imagestest.Push(t, host+"/lib/b:1", b)

	for _, tc := range []struct {
		name       string
		parallel   bool
		wantBlobs  int
		onlyArches []string
	}{
		// a: index + 2×(manifest, config, own layer) + 2 shared = 9; b adds 7.
		{name: "sequential", wantBlobs: 16},
		{name: "parallel", parallel: true, wantBlobs: 16},
		// one arch: 2 indexes + 2×(manifest, config, own layer) + 2 shared.
		{name: "one arch", wantBlobs: 10, onlyArches: []string{"arm64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			l, err := CreateLayout(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := arches
			if tc.onlyArches != nil {
				want = tc.onlyArches
			}
			if tc.parallel {
				var wg sync.WaitGroup
				for _, ref := range []string{refA, refB} {
					wg.Go(func() { appendAll(t, l, want, ref) })
				}
				wg.Wait()
			} else {
				appendAll(t, l, want, refA, refB)
			}
			if n := len(blobFiles(t, dir)); n != tc.wantBlobs {
				t.Errorf("%d blobs stored, want %d", n, tc.wantBlobs)
			}
			checkLayout(t, dir)

			imgs, err := l.Images()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]map[string]v1.Hash{}
			for _, li := range imgs {
				got[li.Name] = li.Platforms
			}
			for ref, src := range map[string]v1.ImageIndex{refA: a, refB: b} {
				srcDigests := digestsByArch(t, src)
				if len(got[ref]) != len(want) {
					t.Errorf("%s: platforms %v, want %v", ref, got[ref], want)
				}
				for _, arch := range want {
					if got[ref][arch] != srcDigests[arch] {
						t.Errorf("%s %s: digest %s, source %s", ref, arch, got[ref][arch], srcDigests[arch])
					}
				}
			}
			if len(imgs) != 2 || !tc.parallel && (imgs[0].Name != refA || imgs[1].Name != refB) {
				t.Errorf("images %v", imgs)
			}

			// Appending again changes nothing, not even mtimes.
			before, index := snapshot(t, dir)
			time.Sleep(10 * time.Millisecond)
			appendAll(t, l, want, refA)
			after, index2 := snapshot(t, dir)
			if len(after) != len(before) || !bytes.Equal(index, index2) {
				t.Errorf("re-append changed the layout: %d -> %d blobs, index.json %q -> %q", len(before), len(after), index, index2)
			}
			for n, fi := range after {
				if !os.SameFile(fi, before[n]) || !fi.ModTime().Equal(before[n].ModTime()) {
					t.Errorf("blob %s rewritten", n)
				}
			}
		})
	}
}

func TestAppendReplacesName(t *testing.T) {
	l, err := CreateLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	first := imagestest.RandomIndex(t, []string{"amd64"}, 0, 1, 128)
	second := imagestest.RandomIndex(t, []string{"amd64"}, 0, 1, 128)
	other := imagestest.RandomIndex(t, []string{"amd64"}, 0, 1, 128)
	for _, s := range []struct {
		name string
		idx  v1.ImageIndex
	}{{"x.io/a:1", first}, {"x.io/b:1", other}, {"x.io/a:1", second}} {
		if _, err := l.Append(t.Context(), s.name, s.idx, nil); err != nil {
			t.Fatal(err)
		}
	}
	imgs, err := l.Images()
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].Name != "x.io/a:1" || imgs[0].Descriptor.Digest != mustDigest(t, second) ||
		imgs[1].Name != "x.io/b:1" || imgs[1].Descriptor.Digest != mustDigest(t, other) {
		t.Fatalf("images after replacing x.io/a:1: %+v", imgs)
	}
}

func TestAppendCorruptLayout(t *testing.T) {
	const name = "example.com/corrupt:1"
	for _, tc := range []struct {
		name    string
		link    bool
		corrupt string // "", "layer" or "manifest"
	}{
		{name: "hardlink ok", link: true},
		{name: "copy ok"},
		{name: "hardlink corrupt layer", link: true, corrupt: "layer"},
		{name: "copy corrupt layer", corrupt: "layer"},
		{name: "corrupt manifest", link: true, corrupt: "manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.link {
				linkFile = func(string, string) error { return errors.New("links not allowed in this test") }
				t.Cleanup(func() { linkFile = os.Link })
			}
			src := t.TempDir()
			idx := imagestest.RandomIndex(t, []string{"amd64", "arm64"}, 1, 1, 4096)
			writeGGCRLayout(t, src, map[string]any{name: idx})
			img, err := idx.Image(digestsByArch(t, idx)["arm64"])
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			bad := map[string]v1.Hash{"layer": m.Layers[1].Digest, "manifest": mustDigest(t, img)}[tc.corrupt]
			if tc.corrupt != "" {
				p := filepath.Join(src, "blobs", bad.Algorithm, bad.Hex)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0xff
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			r, err := Resolve(t.Context(), Source{OCILayout: src}, []string{"amd64", "arm64"})
			if err != nil {
				t.Fatal(err)
			}
			dstDir := filepath.Join(t.TempDir(), "dst")
			dst, err := CreateLayout(dstDir)
			if err != nil {
				t.Fatal(err)
			}
			_, err = dst.Append(t.Context(), name, r, nil)
			files := blobFiles(t, dstDir) // also fails on temp files left behind
			if tc.corrupt == "" {
				if err != nil {
					t.Fatal(err)
				}
				checkLayout(t, dstDir)
				a, _ := os.Stat(filepath.Join(src, "blobs", "sha256", m.Layers[1].Digest.Hex))
				b, _ := os.Stat(dst.BlobPath(m.Layers[1].Digest))
				if os.SameFile(a, b) != tc.link {
					t.Errorf("layer hardlinked = %v, want %v", !tc.link, tc.link)
				}
				return
			}
			t.Log(err)
			var de *DigestError
			if !errors.As(err, &de) || de.Expected != bad || de.Actual == bad {
				t.Fatalf("err = %v, want a DigestError for %s", err, bad)
			}
			for _, w := range []string{name, "expected digest " + bad.String(), "got sha256:"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if slices.Contains(files, bad.Hex) {
				t.Error("corrupt blob was stored")
			}
			if imgs, err := dst.Images(); err != nil || len(imgs) != 0 {
				t.Errorf("index.json lists %v (%v) after a failed append", imgs, err)
			}
		})
	}
}

func TestAppendCorruptRegistryBlob(t *testing.T) {
	idx := imagestest.RandomIndex(t, []string{"amd64"}, 1, 1, 4096)
	img, err := idx.Image(digestsByArch(t, idx)["amd64"])
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	bad := m.Layers[0].Digest
	host := imagestest.NewRegistryWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+bad.String()) {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			body[len(body)/2] ^= 0xff
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	})
	ref := imagestest.Push(t, host+"/lib/flaky:1", idx)
	r, err := Resolve(t.Context(), Source{Registry: ref}, []string{"amd64"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Append(t.Context(), ref, r, nil)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("err = %v, want one naming %s and %s", err, ref, bad)
	}
	if files := blobFiles(t, dir); slices.Contains(files, bad.Hex) {
		t.Error("corrupt blob was stored")
	}
}

func TestAppendLocalSources(t *testing.T) {
	dir := t.TempDir()
	for _, a := range Arches {
		if err := os.WriteFile(filepath.Join(dir, "wutong-linux-"+a), []byte("wutong "+a), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	archive := filepath.Join(dir, "img.tar")
	writeArchive(t, archive, "example.com/app:1", imagestest.NewImage(t, "arm64", imagestest.RandomLayers(t, 2, 1024)))

	l, err := CreateLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name   string
		src    Source
		arches []string
	}{
		{"wutong:1", Source{Binaries: &BinariesSource{Path: filepath.Join(dir, "wutong-linux-{arch}")}}, Arches},
		{"app:1", Source{DockerArchive: archive}, []string{"arm64"}},
	} {
		idx, err := Resolve(t.Context(), s.src, s.arches)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(t.Context(), s.name, idx, nil); err != nil {
			t.Fatal(err)
		}
		// The stored image equals the resolved one, down to the digests.
		want, err := ArchDigests(idx)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := Resolve(t.Context(), Source{OCILayout: string(l), RefName: s.name}, s.arches)
		if err != nil {
			t.Fatal(err)
		}
		if mustDigest(t, stored) != mustDigest(t, idx) || fmt.Sprint(digestsByArch(t, stored)) != fmt.Sprint(want) {
			t.Errorf("%s: stored %v, resolved %v", s.name, digestsByArch(t, stored), want)
		}
		checkIndex(t, stored)
	}
	checkLayout(t, string(l))
}
