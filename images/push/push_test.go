package push

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
)

var arches = []string{"amd64", "arm64", "loong64"}

// testLayout writes two multi-arch images sharing base layers into a new layout and returns it with the indexes.
func testLayout(t *testing.T) (string, map[string]v1.ImageIndex) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	l, err := images.CreateLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	base := imagestest.RandomLayers(t, 2, 4096)
	idxs := map[string]v1.ImageIndex{
		"registry.k8s.io/kube-apiserver:v1.37.2": imagestest.NewIndex(t, arches, base, 1, 2048),
		"nginx:1.27":                             imagestest.NewIndex(t, arches, base, 1, 2048),
	}
	for n, idx := range idxs {
		if _, err := l.Append(t.Context(), n, idx, nil); err != nil {
			t.Fatal(err)
		}
	}
	return dir, idxs
}

// blobCounter counts the blob uploads a registry completes and the bytes PATCHed to it.
type blobCounter struct{ puts, mounts atomic.Int64 }

func (c *blobCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/uploads/") {
			switch {
			case r.Method == http.MethodPut:
				c.puts.Add(1)
			case r.Method == http.MethodPost && r.URL.Query().Get("mount") != "":
				c.mounts.Add(1)
			}
		}
		h.ServeHTTP(w, r)
	})
}

// checkPulled pulls each image's target and compares the index digest and the per-arch digests.
func checkPulled(t *testing.T, res *Result, idxs map[string]v1.ImageIndex, opts ...remote.Option) {
	t.Helper()
	if len(res.Images) != len(idxs) {
		t.Fatalf("pushed %d images, want %d", len(res.Images), len(idxs))
	}
	for _, img := range res.Images {
		want := idxs[img.Name]
		wd, _ := want.Digest()
		if img.Digest != wd.String() {
			t.Errorf("%s: result digest %s, want %s", img.Name, img.Digest, wd)
		}
		ref, err := name.ParseReference(img.Target, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Index(ref, append(opts, remote.WithContext(t.Context()))...)
		if err != nil {
			t.Fatalf("pull %s: %v", img.Target, err)
		}
		gd, _ := got.Digest()
		if gd != wd {
			t.Errorf("%s: pulled index %s, want %s", img.Target, gd, wd)
		}
		ga, err := images.ArchDigests(got)
		if err != nil {
			t.Fatal(err)
		}
		wa, _ := images.ArchDigests(want)
		for _, a := range arches {
			if ga[a] != wa[a] || ga[a] == (v1.Hash{}) {
				t.Errorf("%s %s: pulled %s, want %s", img.Target, a, ga[a], wa[a])
			}
		}
	}
}

func TestFromLayout(t *testing.T) {
	dir, idxs := testLayout(t)
	var c blobCounter
	host := imagestest.NewRegistryWith(t, c.wrap)
	var planned, progressed int64
	opts := Options{Target: host, InsecureHTTP: true, Planned: func(n int64) { planned = n }, Progress: func(n int64) { progressed += n }}
	res, err := FromLayout(t.Context(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, res, idxs)
	if want := host + "/registry.k8s.io/kube-apiserver:v1.37.2"; !hasTarget(res, want) {
		t.Errorf("targets %+v lack %s", res.Images, want)
	}
	// Per repository: 3 configs + 2 shared base layers + 3 own layers = 8 blobs; 16 in all. The base layers are
	// sent once and mounted into the second repository.
	if res.BlobsUploaded+res.BlobsMounted != 16 || res.BlobsMounted != 2 || res.BlobsSkipped != 0 {
		t.Errorf("first run: %+v; want 14 uploaded, 2 mounted", res)
	}
	if int(c.puts.Load()) != res.BlobsUploaded {
		t.Errorf("registry saw %d uploads, result says %d", c.puts.Load(), res.BlobsUploaded)
	}
	if planned == 0 || progressed != planned {
		t.Errorf("progress %d of planned %d", progressed, planned)
	}
	if res.BytesUploaded <= 0 || res.BytesUploaded >= planned {
		t.Errorf("bytes uploaded %d, planned %d (mounted blobs are not sent)", res.BytesUploaded, planned)
	}

	// A second run finds everything and sends no blob.
	c.puts.Store(0)
	c.mounts.Store(0)
	res2, err := FromLayout(t.Context(), dir, Options{Target: host, InsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.puts.Load() != 0 || c.mounts.Load() != 0 || res2.BlobsSkipped != 16 || res2.BytesUploaded != 0 {
		t.Errorf("second run: %d uploads, %d mounts, result %+v; want all 16 skipped", c.puts.Load(), c.mounts.Load(), res2)
	}
	checkPulled(t, res2, idxs)
}

// TestUntaggedThenTag: an untagged push writes everything by digest and moves no tag; Tag then points the tags.
func TestUntaggedThenTag(t *testing.T) {
	dir, idxs := testLayout(t)
	host := imagestest.NewRegistry(t)
	opts := Options{Target: host, InsecureHTTP: true}
	u := opts
	u.Untagged = true
	res, err := FromLayout(t.Context(), dir, u)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != len(idxs) {
		t.Fatalf("pushed %d images, want %d", len(res.Images), len(idxs))
	}
	for _, img := range res.Images {
		ref, err := name.ParseReference(img.Target, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Head(ref, remote.WithContext(t.Context())); err == nil {
			t.Errorf("%s is tagged after an untagged push", img.Target)
		}
		if _, err := remote.Head(ref.Context().Digest(img.Digest), remote.WithContext(t.Context())); err != nil {
			t.Errorf("%s@%s is not in the registry after an untagged push: %v", img.Target, img.Digest, err)
		}
	}
	if err := Tag(t.Context(), res.Images, opts); err != nil {
		t.Fatal(err)
	}
	checkPulled(t, res, idxs) // by tag, with the pushed digests
}

func hasTarget(res *Result, target string) bool {
	for _, i := range res.Images {
		if i.Target == target {
			return true
		}
	}
	return false
}

func TestInterruptedPushResumes(t *testing.T) {
	dir, idxs := testLayout(t)
	var (
		c       blobCounter
		failing atomic.Bool
		allowed atomic.Int64
	)
	failing.Store(true)
	allowed.Store(5)
	host := imagestest.NewRegistryWith(t, func(h http.Handler) http.Handler {
		return c.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The "network" breaks after 5 completed blob uploads.
			if failing.Load() && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && allowed.Add(-1) < 0 {
				http.Error(w, "cable pulled", http.StatusBadRequest)
				return
			}
			h.ServeHTTP(w, r)
		}))
	})
	_, err := FromLayout(t.Context(), dir, Options{Target: host, InsecureHTTP: true, Concurrency: 1, Retries: -1})
	if err == nil {
		t.Fatal("first push succeeded through a broken network")
	}
	failing.Store(false)
	c.puts.Store(0)
	res, err := FromLayout(t.Context(), dir, Options{Target: host, InsecureHTTP: true, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsSkipped != 5 || int(c.puts.Load()) != res.BlobsUploaded || res.BlobsUploaded+res.BlobsMounted != 11 {
		t.Errorf("resumed push: %+v, registry saw %d uploads; want the 5 finished blobs skipped and 11 others", res, c.puts.Load())
	}
	checkPulled(t, res, idxs)
}

func TestRetries(t *testing.T) {
	dir, idxs := testLayout(t)
	var fails, manifestFails atomic.Int64
	host := imagestest.NewRegistryWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The first 4 blob PATCHes and the first manifest PUT get a 503.
			if (r.Method == http.MethodPatch && fails.Add(1) <= 4) ||
				(r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && manifestFails.Add(1) <= 1) {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	res, err := FromLayout(t.Context(), dir, Options{Target: host, InsecureHTTP: true, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if fails.Load() < 4 || manifestFails.Load() < 1 {
		t.Fatal("the test registry failed too little")
	}
	checkPulled(t, res, idxs)

	_, err = FromLayout(t.Context(), dir, Options{Target: host, InsecureHTTP: true, Retries: -1,
		MapRef: func(n string) (string, error) { return images.LocalRef(n, host+"/other") }})
	if err == nil {
		t.Error("a bad MapRef result was accepted")
	}
}

func TestAuth(t *testing.T) {
	dir, idxs := testLayout(t)
	host, ca := imagestest.NewAuthRegistry(t, "admin", "s3cret", nil)
	tests := []struct {
		name, user, pass, ca string
		auth                 bool // want *AuthError
		ok                   bool
	}{
		{name: "wrong password", user: "admin", pass: "nope", ca: ca, auth: true},
		{name: "unknown user", user: "eve", pass: "s3cret", ca: ca, auth: true},
		{name: "anonymous", ca: ca, auth: true},
		{name: "untrusted certificate", user: "admin", pass: "s3cret"},
		{name: "right", user: "admin", pass: "s3cret", ca: ca, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_CONFIG", t.TempDir())
			res, err := FromLayout(t.Context(), dir, Options{Target: host, Username: tt.user, Password: tt.pass, CACert: tt.ca, Retries: -1})
			var ae *AuthError
			if got := errors.As(err, &ae); got != tt.auth {
				t.Fatalf("err = %v; AuthError %v, want %v", err, got, tt.auth)
			}
			if tt.auth {
				if !strings.Contains(err.Error(), "authentication failed for "+host) || strings.Contains(err.Error(), tt.pass+"\"") && tt.pass != "" {
					t.Errorf("message: %v", err)
				}
				if tt.user != "" && !strings.Contains(err.Error(), "as user "+tt.user) {
					t.Errorf("message does not name the user: %v", err)
				}
			}
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok {
				tr, _ := Options{CACert: ca}.baseTransport()
				checkPulled(t, res, idxs, remote.WithTransport(tr), remote.WithAuth(basic("admin", "s3cret")))
			}
		})
	}
}

func TestFromBundle(t *testing.T) {
	dir, idxs := testLayout(t)
	var items []bundle.Item
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		s := sha256.Sum256(b)
		items = append(items, bundle.Item{
			Entry: bundle.Entry{Path: "oci/" + filepath.ToSlash(rel), Size: int64(len(b)), SHA256: hex.EncodeToString(s[:]), Mode: 0o644},
			Open:  func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	readme := []byte("hello")
	rs := sha256.Sum256(readme)
	items = append(items, bundle.Item{
		Entry: bundle.Entry{Path: "files/all/readme.txt", Size: 5, SHA256: hex.EncodeToString(rs[:]), Mode: 0o644},
		Open:  func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(readme)), nil },
	})
	_, key, _ := ed25519.GenerateKey(nil)
	var buf bytes.Buffer
	m := &bundle.Manifest{Kind: bundle.KindBundle, Name: "demo", Version: "0.1.0", Arches: arches, Created: time.Unix(1700000000, 0).UTC()}
	if err := bundle.Write(t.Context(), &buf, m, items, bundle.WriteOptions{Key: key}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "demo-0.1.0.tar.zst")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	host := imagestest.NewRegistry(t)
	tmp := t.TempDir()
	ropts := bundle.ReadOptions{Keys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}}
	res, err := FromBundle(t.Context(), path, ropts, Options{Target: host, InsecureHTTP: true, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, res, idxs)
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp dir not cleaned: %v", left)
	}

	// An untrusted bundle pushes nothing.
	other, _, _ := ed25519.GenerateKey(nil)
	_, err = FromBundle(t.Context(), path, bundle.ReadOptions{Keys: []ed25519.PublicKey{other}}, Options{Target: host, InsecureHTTP: true, TempDir: tmp})
	var te *bundle.TrustError
	if !errors.As(err, &te) {
		t.Errorf("untrusted bundle: err = %v, want *bundle.TrustError", err)
	}

	// A corrupt bundle pushes nothing and leaves nothing.
	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)-100] ^= 0xff
	badPath := filepath.Join(t.TempDir(), "bad.tar.zst")
	os.WriteFile(badPath, bad, 0o644)
	var c blobCounter
	host2 := imagestest.NewRegistryWith(t, c.wrap)
	if _, err := FromBundle(t.Context(), badPath, ropts, Options{Target: host2, InsecureHTTP: true, TempDir: tmp}); err == nil {
		t.Error("a corrupt bundle was pushed")
	}
	if c.puts.Load() != 0 {
		t.Errorf("%d blobs pushed from a corrupt bundle", c.puts.Load())
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp dir not cleaned: %v", left)
	}
}
