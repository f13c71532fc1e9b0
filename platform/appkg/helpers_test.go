package appkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/platform/app"
)

var (
	allArches = []string{"amd64", "arm64", "loong64"}
	created   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

const (
	webImage    = "example.com/shop/web:1.0"
	dbImage     = "example.com/shop/db:8.0"
	legacyImage = "example.com/legacy/tool:7"
)

// fixture is an app.yaml copied from testdata, an OCI layout holding its images for every arch (sharing base
// layers), and a signing key pair.
type fixture struct {
	dir     string
	appFile string
	layout  string
	idxs    map[string]v1.ImageIndex // image name -> the source index, all arches
	key     ed25519.PrivateKey
	pub     ed25519.PublicKey
}

// newFixture copies testdata/name into a temp dir, with "example.com/" replaced by prefix when not empty, and
// writes an OCI layout with every image in imgs (random, about layerSize bytes per layer).
func newFixture(t *testing.T, name, prefix string, layerSize int64, imgs ...string) *fixture {
	t.Helper()
	fx := &fixture{dir: t.TempDir(), idxs: map[string]v1.ImageIndex{}}
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if prefix != "" {
		data = bytes.ReplaceAll(data, []byte("example.com/"), []byte(prefix))
	}
	fx.appFile = filepath.Join(fx.dir, "app.yaml")
	if err := os.WriteFile(fx.appFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fx.pub, fx.key, _ = ed25519.GenerateKey(rand.Reader)
	base := imagestest.RandomLayers(t, 2, layerSize)
	for _, n := range imgs {
		fx.idxs[n] = imagestest.NewIndex(t, allArches, base, 1, layerSize)
	}
	fx.layout = filepath.Join(fx.dir, "layout")
	l, err := images.CreateLayout(fx.layout)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range imgs {
		if _, err := l.Append(t.Context(), n, fx.idxs[n], nil); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

// build builds the fixture's app from its layout into out/, signed unless key is nil.
func (fx *fixture) build(t *testing.T, mod func(*BuildOptions)) *Info {
	t.Helper()
	opts := BuildOptions{AppFile: fx.appFile, OutDir: filepath.Join(fx.dir, "out"), Layouts: []string{fx.layout}, Key: fx.key, Created: created}
	if mod != nil {
		mod(&opts)
	}
	info, err := Build(t.Context(), opts)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return info
}

// trusted are read options trusting only the fixture's key.
func (fx *fixture) trusted() bundle.ReadOptions {
	return bundle.ReadOptions{Keys: []ed25519.PublicKey{fx.pub}}
}

// noTrust are read options with an empty trust dir.
func noTrust(t *testing.T) bundle.ReadOptions {
	return bundle.ReadOptions{TrustDir: t.TempDir()}
}

// wantIntegrity fails unless err is an *IntegrityError whose message holds every one of parts.
func wantIntegrity(t *testing.T, err error, parts ...string) {
	t.Helper()
	var ie *bundle.IntegrityError
	if !errors.As(err, &ie) {
		t.Fatalf("want an IntegrityError, got %T: %v", err, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// archDigests maps arch -> manifest digest of idx, for the arches asked.
func archDigests(t *testing.T, idx v1.ImageIndex, arches []string) map[string]string {
	t.Helper()
	all, err := images.ArchDigests(idx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range arches {
		out[a] = all[a].String()
	}
	return out
}

// dirNames lists a directory's entries, hidden ones included.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// canonicalOf loads an app file and returns its canonical JSON.
func canonicalOf(t *testing.T, path string) (*app.App, []byte) {
	t.Helper()
	a, err := app.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

// imageByName finds an image of an Info.
func imageByName(t *testing.T, imgs []bundle.Image, name string) bundle.Image {
	t.Helper()
	i := slices.IndexFunc(imgs, func(im bundle.Image) bool { return im.Name == name })
	if i < 0 {
		t.Fatalf("no image %s in %v", name, imgs)
	}
	return imgs[i]
}

// readAll reads a file.
func readAll(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
