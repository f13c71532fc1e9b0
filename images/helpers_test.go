package images

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// digestsByArch maps arch -> manifest digest of an index straight from its
// manifest, independently of the code under test.
func digestsByArch(t *testing.T, idx v1.ImageIndex) map[string]v1.Hash {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]v1.Hash{}
	for _, d := range im.Manifests {
		if d.Platform != nil {
			m[d.Platform.Architecture] = d.Digest
		}
	}
	return m
}

// archOrder lists the platform arches of an index's manifests in order.
func archOrder(t *testing.T, idx v1.ImageIndex) []string {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		if d.Platform.OS != "linux" {
			t.Fatalf("manifest %s has OS %q", d.Digest, d.Platform.OS)
		}
		out = append(out, d.Platform.Architecture)
	}
	return out
}

func mustDigest(t *testing.T, x interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// writeGGCRLayout writes indexes (and images) into a fresh OCI layout with
// ggcr, each annotated with its ref name.
func writeGGCRLayout(t *testing.T, dir string, entries map[string]any) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		opt := layout.WithAnnotations(map[string]string{AnnotationRefName: n})
		switch x := entries[n].(type) {
		case v1.ImageIndex:
			err = p.AppendIndex(x, opt)
		case v1.Image:
			err = p.AppendImage(x, opt)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// blobFiles lists the files in dir/blobs/sha256 and fails on leftovers
// that are not finished blobs.
func blobFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || len(e.Name()) != 64 {
			t.Errorf("stray file in blobs: %s", e.Name())
		}
		names = append(names, e.Name())
	}
	return names
}

// checkIndex reads every image of idx in full and checks that each layer's
// content matches its digest, size and config diff ID.
func checkIndex(t *testing.T, idx v1.ImageIndex) {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustDigest(t, img); got != d.Digest {
			t.Errorf("image %s hashes to %s", d.Digest, got)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if len(cf.RootFS.DiffIDs) != len(m.Layers) {
			t.Fatalf("image %s: %d layers, %d diff IDs", d.Digest, len(m.Layers), len(cf.RootFS.DiffIDs))
		}
		for i, ld := range m.Layers {
			l, err := img.LayerByDigest(ld.Digest)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				open func() (io.ReadCloser, error)
				want v1.Hash
				size int64
			}{{l.Compressed, ld.Digest, ld.Size}, {l.Uncompressed, cf.RootFS.DiffIDs[i], -1}} {
				rc, err := c.open()
				if err != nil {
					t.Fatal(err)
				}
				h, n, err := v1.SHA256(rc)
				rc.Close()
				if err != nil || h != c.want || c.size >= 0 && n != c.size {
					t.Errorf("layer %d of %s: sha256 %s size %d (%v), want %s size %d", i, d.Digest, h, n, err, c.want, c.size)
				}
			}
		}
	}
}

// checkLayout checks that every blob file hashes to its name and that every
// blob index.json reaches is there.
func checkLayout(t *testing.T, dir string) {
	t.Helper()
	have := map[string]bool{}
	for _, n := range blobFiles(t, dir) {
		f, err := os.Open(filepath.Join(dir, "blobs", "sha256", n))
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(f)
		f.Close()
		if err != nil || h.Hex != n {
			t.Errorf("blob %s hashes to %s (%v)", n, h, err)
		}
		have[n] = true
	}
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		idx, err := root.ImageIndex(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ref := []v1.Hash{d.Digest}
		cm, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, cd := range cm.Manifests {
			img, err := idx.Image(cd.Digest)
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			ref = append(ref, cd.Digest, m.Config.Digest)
			for _, l := range m.Layers {
				ref = append(ref, l.Digest)
			}
		}
		for _, h := range ref {
			if !have[h.Hex] {
				t.Errorf("image %s: blob %s missing", d.Annotations[AnnotationRefName], h)
			}
		}
	}
}

func writeArchive(t *testing.T, path, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, r, img); err != nil {
		t.Fatal(err)
	}
}
