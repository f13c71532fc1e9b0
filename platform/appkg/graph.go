package appkg

import (
	"bytes"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wutong-paas/wutong-offline/bundle"
)

// graph checks an app package's OCI layout as a whole once every entry has been read: each image's index holds
// exactly the manifests the package manifest lists for it, one per arch, and every manifest, config and layer they
// refer to is a blob of the package with the size the descriptor says. Only the indexes and image manifests are
// kept in memory, each bounded by maxManifestBlob.
type graph struct {
	m     *bundle.Manifest
	sizes map[string]int64  // blob hex -> entry size
	keep  map[string]bool   // blob hex of every index and arch manifest
	kept  map[string][]byte // their content, as read
	used  map[string]bool   // blob hex of everything an image refers to
}

func newGraph(m *bundle.Manifest) *graph {
	g := &graph{m: m, sizes: map[string]int64{}, keep: map[string]bool{}, kept: map[string][]byte{}, used: map[string]bool{}}
	for _, e := range m.Entries {
		if h, ok := strings.CutPrefix(e.Path, ociBlobPrefix); ok {
			g.sizes[h] = e.Size
		}
	}
	for _, im := range m.Images {
		g.keep[strings.TrimPrefix(im.Digest, "sha256:")] = true
		for _, d := range im.Arches {
			g.keep[strings.TrimPrefix(d, "sha256:")] = true
		}
	}
	return g
}

// tooLarge reports a kept blob whose entry exceeds the in-memory bound; checked before reading it.
func (g *graph) tooLarge() error {
	for h := range g.keep {
		if g.sizes[h] > maxManifestBlob {
			return &bundle.IntegrityError{Entry: ociBlobPrefix + h, What: "image manifest too large", Expected: fmt.Sprintf("at most %d bytes", maxManifestBlob), Actual: fmt.Sprint(g.sizes[h])}
		}
	}
	return nil
}

// check checks every image's graph, then that every blob of the package belongs to one: a blob no image refers to
// would be carried, unpacked and counted for nothing (and could be any size).
func (g *graph) check() error {
	for _, im := range g.m.Images {
		if err := g.checkImage(im); err != nil {
			return err
		}
	}
	for _, e := range g.m.Entries {
		if h, ok := strings.CutPrefix(e.Path, ociBlobPrefix); ok && !g.used[h] {
			return refuse(e.Path, fmt.Sprintf("a blob of %d bytes that no image of the package refers to", e.Size), rebuildHint)
		}
	}
	return nil
}

func (g *graph) checkImage(im bundle.Image) error {
	idxHex := strings.TrimPrefix(im.Digest, "sha256:")
	entry := ociBlobPrefix + idxHex
	g.used[idxHex] = true
	idx, err := v1.ParseIndexManifest(bytes.NewReader(g.kept[idxHex]))
	if err != nil {
		return &bundle.IntegrityError{Entry: entry, What: fmt.Sprintf("index of image %q is unreadable", im.Name), Actual: err.Error(), Hint: rebuildHint}
	}
	if len(idx.Manifests) != len(im.Arches) {
		return refuse(entry, fmt.Sprintf("the index of image %q lists %d manifests, want one per arch of the image (%d)", im.Name, len(idx.Manifests), len(im.Arches)), rebuildHint)
	}
	for _, d := range idx.Manifests {
		arch := archOf(im, d.Digest.String())
		switch {
		case arch == "":
			return refuse(entry, fmt.Sprintf("the index of image %q lists %s, which the manifest does not give for any arch", im.Name, d.Digest), rebuildHint)
		case !d.MediaType.IsImage():
			return refuse(entry, fmt.Sprintf("the index of image %q lists %s of type %s; want an image manifest", im.Name, d.Digest, d.MediaType), rebuildHint)
		case d.Platform != nil && (d.Platform.OS != "linux" || d.Platform.Architecture != arch):
			return refuse(entry, fmt.Sprintf("the index of image %q gives %s as %s/%s, the manifest as linux/%s", im.Name, d.Digest, d.Platform.OS, d.Platform.Architecture, arch), rebuildHint)
		}
		if err := g.blob(im.Name, arch+" manifest", d); err != nil {
			return err
		}
		m, err := v1.ParseManifest(bytes.NewReader(g.kept[d.Digest.Hex]))
		if err != nil {
			return &bundle.IntegrityError{Entry: ociBlobPrefix + d.Digest.Hex, What: fmt.Sprintf("%s manifest of image %q is unreadable", arch, im.Name), Actual: err.Error(), Hint: rebuildHint}
		}
		if err := g.blob(im.Name, arch+" config", m.Config); err != nil {
			return err
		}
		for i, l := range m.Layers {
			if err := g.blob(im.Name, fmt.Sprintf("%s layer %d", arch, i+1), l); err != nil {
				return err
			}
		}
	}
	return nil
}

// blob checks that the package holds the blob d describes, with its size.
func (g *graph) blob(image, what string, d v1.Descriptor) error {
	size, ok := g.sizes[d.Digest.Hex]
	g.used[d.Digest.Hex] = true
	switch {
	case d.Digest.Algorithm != "sha256" || !ok:
		return refuse(ociBlobPrefix+d.Digest.Hex, fmt.Sprintf("the %s of image %q (%s) is missing from the package", what, image, d.Digest), rebuildHint)
	case size != d.Size:
		return &bundle.IntegrityError{Entry: ociBlobPrefix + d.Digest.Hex, What: fmt.Sprintf("size of the %s of image %q", what, image), Expected: fmt.Sprint(d.Size), Actual: fmt.Sprint(size), Hint: rebuildHint}
	}
	return nil
}

func archOf(im bundle.Image, digest string) string {
	for a, d := range im.Arches {
		if d == digest {
			return a
		}
	}
	return ""
}
