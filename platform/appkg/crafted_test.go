package appkg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
)

// crafted is a package taken apart: its manifest header and images, app.json, and its extracted OCI layout, to be
// altered and written again with bundle.Write and the fixture's key.
type crafted struct {
	m       *bundle.Manifest
	appJSON []byte
	layout  string
	drop    map[string]bool // blob hexes left out of the archive
}

func craft(t *testing.T, fx *fixture, info *Info, mutate func(c *crafted)) string {
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
	c := &crafted{layout: filepath.Join(t.TempDir(), "oci"), drop: map[string]bool{}}
	if err := pkg.ExtractLayout(t.Context(), c.layout); err != nil {
		t.Fatal(err)
	}
	c.appJSON, _ = info.App.Canonical()
	c.m = &bundle.Manifest{APIVersion: bundle.APIVersion, Kind: bundle.KindApp, Name: info.App.Key, Version: info.App.Version,
		Arches: info.Arches, Created: info.Created}
	for _, im := range info.Images {
		im.Arches = maps.Clone(im.Arches)
		c.m.Images = append(c.m.Images, im)
	}
	mutate(c)
	items, err := bundle.LayoutItems(c.layout, OCIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	all := []bundle.Item{bundle.BytesItem(AppEntry, c.appJSON)}
	for _, it := range items {
		if !c.drop[it.SHA256] || !strings.HasPrefix(it.Path, ociBlobPrefix) {
			all = append(all, it)
		}
	}
	out := filepath.Join(t.TempDir(), "crafted.wtapp")
	var buf bytes.Buffer
	if err := bundle.Write(t.Context(), &buf, c.m, all, bundle.WriteOptions{Key: fx.key}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// withoutImage drops the index.json entry named n.
func (c *crafted) withoutImage(t *testing.T, n string) {
	p := filepath.Join(c.layout, "index.json")
	im, err := v1.ParseIndexManifest(bytes.NewReader(readAll(t, p)))
	if err != nil {
		t.Fatal(err)
	}
	var keep []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Annotations[images.AnnotationRefName] != n {
			keep = append(keep, d)
		}
	}
	im.Manifests = keep
	data, _ := json.MarshalIndent(im, "", "  ")
	os.WriteFile(p, data, 0o644)
}

// imageBlobs are the hexes of an image's index, its arch manifests, and (when layers) the layers of each.
func imageBlobs(t *testing.T, c *crafted, n string, layers bool) (index string, rest []string) {
	t.Helper()
	for _, im := range c.m.Images {
		if im.Name != n {
			continue
		}
		index = strings.TrimPrefix(im.Digest, "sha256:")
		for _, d := range im.Arches {
			if !layers {
				rest = append(rest, strings.TrimPrefix(d, "sha256:"))
				continue
			}
			m, err := v1.ParseManifest(bytes.NewReader(readAll(t, filepath.Join(c.layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))))
			if err != nil {
				t.Fatal(err)
			}
			rest = append(rest, m.Layers[len(m.Layers)-1].Digest.Hex) // its own layer, not a shared base
		}
	}
	return index, rest
}

// Packages whose model, manifest and layout disagree are refused, naming the image and the fix.
func TestRefuseInconsistentPackages(t *testing.T) {
	fx := newFixture(t, "shop.yaml", "", 4<<10, webImage, dbImage)
	info := fx.build(t, nil)
	for _, tc := range []struct {
		name    string
		mutate  func(t *testing.T, c *crafted)
		headErr []string // refused by Inspect, Open and Verify
		fullErr []string // accepted by Inspect (head only), refused by Open or Verify
	}{
		{
			name:    "manifest lacks an image the app uses",
			mutate:  func(t *testing.T, c *crafted) { c.m.Images = c.m.Images[1:] }, // sorted: db first
			headErr: []string{`image "` + dbImage + `", which the app uses, is missing from the package`, "rebuild the package"},
		},
		{
			name: "layout lacks an image the app uses",
			mutate: func(t *testing.T, c *crafted) {
				c.withoutImage(t, dbImage)
			},
			fullErr: []string{`image "` + dbImage + `", which the app uses, is missing from the OCI layout`, "rebuild"},
		},
		{
			name: "image the app does not use",
			mutate: func(t *testing.T, c *crafted) {
				extra := c.m.Images[0]
				extra.Name = "example.com/extra:1"
				c.m.Images = append(c.m.Images, extra)
			},
			headErr: []string{`image "example.com/extra:1" is in the package but the app does not use it`},
		},
		{
			name: "index blob missing",
			mutate: func(t *testing.T, c *crafted) {
				idx, _ := imageBlobs(t, c, webImage, false)
				c.drop[idx] = true
			},
			headErr: []string{"the index sha256:", `of image "` + webImage + `" is missing from the package`},
		},
		{
			name: "a layer missing",
			mutate: func(t *testing.T, c *crafted) {
				_, layers := imageBlobs(t, c, dbImage, true)
				c.drop[layers[0]] = true
			},
			fullErr: []string{"layer", `of image "` + dbImage + `"`, "is missing from the package"},
		},
		{
			name: "a blob no image refers to",
			mutate: func(t *testing.T, c *crafted) {
				junk := bytes.Repeat([]byte("unreferenced "), 1000)
				sum := sha256.Sum256(junk)
				os.WriteFile(filepath.Join(c.layout, "blobs", "sha256", hex.EncodeToString(sum[:])), junk, 0o644)
			},
			fullErr: []string{"a blob of 13000 bytes that no image of the package refers to", "rebuild"},
		},
		{
			name:    "a cluster bundle",
			mutate:  func(t *testing.T, c *crafted) { c.m.Kind = bundle.KindBundle },
			headErr: []string{"not an app package", "wtctl bundle"},
		},
		{
			name:    "version differs from app.json",
			mutate:  func(t *testing.T, c *crafted) { c.m.Version = "9.9.9" },
			headErr: []string{"app differs from the manifest", "shop 9.9.9", "shop 1.2.0"},
		},
		{
			name:    "image arch outside the package arches",
			mutate:  func(t *testing.T, c *crafted) { c.m.Arches = []string{"amd64"} },
			headErr: []string{"has a arm64 manifest, but the package is for amd64"},
		},
		{
			name: "app.json not canonical",
			mutate: func(t *testing.T, c *crafted) {
				var v any
				json.Unmarshal(c.appJSON, &v)
				c.appJSON, _ = json.MarshalIndent(v, "", "  ")
			},
			headErr: []string{"not in canonical form"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := craft(t, fx, info, func(c *crafted) { tc.mutate(t, c) })
			_, ierr := Inspect(t.Context(), path, fx.trusted())
			_, verr := Verify(t.Context(), path, fx.trusted())
			if tc.headErr != nil {
				wantIntegrity(t, ierr, tc.headErr...)
				wantIntegrity(t, verr, tc.headErr...)
				return
			}
			if ierr != nil {
				t.Errorf("inspect reads only the head and should accept it: %v", ierr)
			}
			wantIntegrity(t, verr, tc.fullErr...)
			dir := filepath.Join(t.TempDir(), "oci")
			f, _ := os.Open(path)
			defer f.Close()
			pkg, err := Open(t.Context(), f, fx.trusted())
			if err == nil {
				err = pkg.ExtractLayout(t.Context(), dir)
				pkg.Close()
			}
			wantIntegrity(t, err, tc.fullErr...)
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				t.Error("a refused package left a layout behind")
			}
		})
	}
}
