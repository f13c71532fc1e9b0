// Package imagestest helps tests that need OCI images: a real registry
// (distribution/distribution v3 with in-memory storage) served over HTTP in
// the test process, and random multi-arch images that share layers.
package imagestest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory" // storage driver "inmemory"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sirupsen/logrus"
)

var quiet sync.Once

// NewRegistry starts a distribution registry with in-memory storage on a
// loopback port and returns its host:port. It stops when the test ends.
// The registry logs every 404 as an error, which is routine for pushes, so
// logrus (a global) is set to log only fatal errors.
func NewRegistry(t testing.TB) (host string) {
	t.Helper()
	return NewRegistryWith(t, nil)
}

// NewRegistryWith is NewRegistry with the registry's handler passed through
// wrap (when not nil), so a test can watch or tamper with the traffic.
func NewRegistryWith(t testing.TB, wrap func(http.Handler) http.Handler) (host string) {
	t.Helper()
	quiet.Do(func() { logrus.SetLevel(logrus.FatalLevel) })
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory":    configuration.Parameters{},
			"delete":      configuration.Parameters{"enabled": true},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
	}
	cfg.HTTP.Secret = "imagestest"
	app := handlers.NewApp(context.Background(), cfg)
	var h http.Handler = app
	if wrap != nil {
		h = wrap(app)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = app.Shutdown()
	})
	return strings.TrimPrefix(srv.URL, "http://")
}

// RandomLayers returns n random gzip layers of about size bytes each.
func RandomLayers(t testing.TB, n int, size int64) []v1.Layer {
	t.Helper()
	var ls []v1.Layer
	for range n {
		l, err := random.Layer(size, types.OCILayer)
		if err != nil {
			t.Fatalf("random layer: %v", err)
		}
		ls = append(ls, l)
	}
	return ls
}

// RandomIndex returns an OCI index with one linux image per arch, in order.
// Each image has the same shared random layers at its base, then perArch
// layers of its own; layers are about layerSize bytes.
func RandomIndex(t testing.TB, arches []string, shared int, perArch int, layerSize int64) v1.ImageIndex {
	t.Helper()
	return NewIndex(t, arches, RandomLayers(t, shared, layerSize), perArch, layerSize)
}

// NewIndex is RandomIndex with the shared base layers given, so that
// several indexes can share them too.
func NewIndex(t testing.TB, arches []string, base []v1.Layer, perArch int, layerSize int64) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range arches {
		img := NewImage(t, arch, append(append([]v1.Layer{}, base...), RandomLayers(t, perArch, layerSize)...))
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	return idx
}

// NewImage returns an OCI image for linux/arch made of layers.
func NewImage(t testing.TB, arch string, layers []v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatalf("append layers: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("config file: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("set config: %v", err)
	}
	return img
}

// Push writes idx to ref (e.g. host+"/library/app:1") and returns ref.
func Push(t testing.TB, ref string, idx v1.ImageIndex) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("parse %s: %v", ref, err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}
