package appkg

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/images/push"
)

// importLike pushes a package's layout to a registry the way an import does, under apps/<key>/, and returns the
// images as Export takes them: by digest.
func importLike(t *testing.T, fx *fixture, info *Info, host string) []ExportImage {
	t.Helper()
	f, err := os.Open(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkg, err := Open(t.Context(), f, fx.trusted())
	if err != nil {
		t.Fatal(err)
	}
	defer pkg.Close()
	dir := filepath.Join(t.TempDir(), "oci")
	if err := pkg.ExtractLayout(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	res, err := push.FromLayout(t.Context(), dir, push.Options{Target: host, InsecureHTTP: true, Retries: -1,
		MapRef: func(n string) (string, error) {
			r, err := images.LocalRef(n, "local.test")
			return host + "/apps/" + info.App.Key + "/" + strings.TrimPrefix(r, "local.test/"), err
		}})
	if err != nil {
		t.Fatal(err)
	}
	var out []ExportImage
	for _, im := range res.Images {
		out = append(out, ExportImage{Name: im.Name, Ref: im.Target + "@" + im.Digest})
	}
	return out
}

func manifestOf(t *testing.T, path string, ro bundle.ReadOptions) *bundle.Manifest {
	t.Helper()
	r, _, err := bundle.Open(path, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Manifest
}

func TestExportRoundTrip(t *testing.T) {
	fx := newFixture(t, "shop.yaml", "", 16<<10, webImage, dbImage)
	orig := fx.build(t, nil)
	host := imagestest.NewRegistry(t)
	imgs := importLike(t, fx, orig, host)
	canonical, _ := orig.App.Canonical()

	var buf bytes.Buffer
	info, err := Export(t.Context(), &buf, canonical, imgs, ExportOptions{Key: fx.key, Created: created})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(buf.Len()) || info.Path != "" || info.Signer != bundle.Fingerprint(fx.pub) {
		t.Errorf("export info %+v (wrote %d bytes)", info, buf.Len())
	}
	out := filepath.Join(fx.dir, "exported.wtapp")
	os.WriteFile(out, buf.Bytes(), 0o644)
	got, err := Verify(t.Context(), out, fx.trusted())
	if err != nil {
		t.Fatalf("verify the exported package: %v", err)
	}
	if got.ContentDigest != orig.ContentDigest || !slices.Equal(got.Arches, orig.Arches) {
		t.Errorf("exported %s %v, built %s %v", got.ContentDigest, got.Arches, orig.ContentDigest, orig.Arches)
	}
	for _, want := range orig.Images {
		im := imageByName(t, got.Images, want.Name)
		if im.Digest != want.Digest || !reflect.DeepEqual(im.Arches, want.Arches) || im.Size != want.Size {
			t.Errorf("%s: exported %+v, built %+v", want.Name, im, want)
		}
	}
	// Same entries, in the same order, with the same content: index.json is written the way images.Layout writes
	// it and blobs are ordered by digest, as Build does.
	if a, b := manifestOf(t, orig.Path, fx.trusted()).Entries, manifestOf(t, out, fx.trusted()).Entries; !reflect.DeepEqual(a, b) {
		t.Errorf("entries differ:\nbuilt    %v\nexported %v", a, b)
	}

	// Narrowed to one arch: the per-arch digest survives, the index is a new one.
	buf.Reset()
	narrow, err := Export(t.Context(), &buf, canonical, imgs, ExportOptions{Arches: []string{"arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(out, buf.Bytes(), 0o644)
	if _, err := Verify(t.Context(), out, bundle.ReadOptions{InsecureSkipVerify: true, TrustDir: t.TempDir()}); err != nil {
		t.Fatalf("verify the narrowed export: %v", err)
	}
	for _, want := range orig.Images {
		im := imageByName(t, narrow.Images, want.Name)
		if len(im.Arches) != 1 || im.Arches["arm64"] != want.Arches["arm64"] || im.Digest == want.Digest {
			t.Errorf("%s narrowed: %+v", want.Name, im)
		}
	}
	if _, err := Export(t.Context(), &buf, canonical, imgs, ExportOptions{Arches: []string{"loong64"}}); err == nil || !strings.Contains(err.Error(), "no linux/loong64") {
		t.Errorf("export for an arch the images lack: %v", err)
	}
}

func TestExportRefusesBadImageLists(t *testing.T) {
	fx := newFixture(t, "shop.yaml", "", 1<<10, webImage, dbImage)
	orig := fx.build(t, nil)
	host := imagestest.NewRegistry(t)
	imgs := importLike(t, fx, orig, host)
	canonical, _ := orig.App.Canonical()
	byTag := slices.Clone(imgs)
	byTag[0].Ref = strings.Split(byTag[0].Ref, "@")[0]
	for _, tc := range []struct {
		name string
		imgs []ExportImage
		want string
	}{
		{"one missing", imgs[:1], "which the app uses, has no registry reference"},
		{"an extra one", append(slices.Clone(imgs), ExportImage{Name: "example.com/extra:1", Ref: imgs[0].Ref}), "is not used by the app"},
		{"twice", append(slices.Clone(imgs), imgs[0]), "is given twice"},
		{"by tag", byTag, "must name the image by digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := Export(t.Context(), &buf, canonical, tc.imgs, ExportOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("a refused export wrote %d bytes", buf.Len())
			}
		})
	}
}

// gateWriter counts what Export writes.
type gateWriter struct{ n atomic.Int64 }

func (g *gateWriter) Write(p []byte) (int, error) {
	g.n.Add(int64(len(p)))
	return len(p), nil
}

// Export streams layers: while the registry has sent only part of a large layer, most of that part has already
// been written out. A version that read whole blobs into memory first would write nothing until the layer ended.
func TestExportStreamsLayers(t *testing.T) {
	const layerSize = 24 << 20
	out := &gateWriter{}
	var (
		big      atomic.Value          // path suffix of the big layer's blob URL
		streamed = make(chan int64, 1) // bytes written when the registry paused, or -1 if too few
		once     sync.Once
	)
	host := imagestest.NewRegistryWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s, _ := big.Load().(string); s != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, s) {
				w = &pausingWriter{ResponseWriter: w, at: layerSize / 2, pause: func(sent int64) {
					once.Do(func() {
						if waitFor(func() bool { return out.n.Load() >= sent/2 }, 20*time.Second) {
							streamed <- out.n.Load()
						} else {
							streamed <- -1 - out.n.Load()
						}
					})
				}}
			}
			h.ServeHTTP(w, r)
		})
	})
	idx := imagestest.NewIndex(t, []string{"amd64", "arm64"}, imagestest.RandomLayers(t, 1, layerSize), 0, 0)
	m, _ := idx.IndexManifest()
	img, _ := idx.Image(m.Manifests[0].Digest)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	d, _ := idx.Digest()
	ref := imagestest.Push(t, host+"/apps/limited/example.com/shop/web:1.0", idx)
	big.Store("/blobs/" + ld.String())

	fx := newFixture(t, "limited.yaml", "", 1<<10)
	_, canonical := canonicalOf(t, fx.appFile)
	info, err := Export(t.Context(), out, canonical, []ExportImage{{Name: webImage, Ref: ref + "@" + d.String()}},
		ExportOptions{Remote: []remote.Option{remote.WithRetryBackoff(remote.Backoff{Steps: 1})}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-streamed:
		if n < 0 {
			t.Errorf("with %d MiB of the layer sent, Export had written only %d bytes: it buffers blobs instead of streaming them", layerSize/2>>20, -1-n)
		}
	default:
		t.Fatal("the big layer was never fetched")
	}
	if info.Size != out.n.Load() || info.Size < layerSize {
		t.Errorf("size %d, wrote %d", info.Size, out.n.Load())
	}
}

// pausingWriter calls pause once, after at bytes of the response were sent, before sending more.
type pausingWriter struct {
	http.ResponseWriter
	at, sent int64
	pause    func(sent int64)
	paused   bool
}

func (p *pausingWriter) Write(b []byte) (int, error) {
	if !p.paused && p.sent+int64(len(b)) > p.at {
		k := p.at - p.sent
		n, err := p.ResponseWriter.Write(b[:k])
		p.sent += int64(n)
		if err != nil {
			return n, err
		}
		if f, ok := p.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p.paused = true
		p.pause(p.sent)
		m, err := p.ResponseWriter.Write(b[k:])
		p.sent += int64(m)
		return n + m, err
	}
	n, err := p.ResponseWriter.Write(b)
	p.sent += int64(n)
	return n, err
}

func waitFor(cond func() bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}
