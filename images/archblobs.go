package images

import (
	"bytes"
	"fmt"
	"os"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ArchBlobs lists, sorted and without repeats, the blobs a node of arch needs from the layout: every image's
// index.json entry (the multi-arch index itself), and for arch its image manifest, config and layers. Images
// without arch are skipped. A node given these blobs plus index.json and oci-layout holds a layout that is
// complete for its arch.
func (l Layout) ArchBlobs(arch string) ([]v1.Hash, error) {
	imgs, err := l.Images()
	if err != nil {
		return nil, err
	}
	seen := map[v1.Hash]bool{}
	for _, img := range imgs {
		m, ok := img.Platforms[arch]
		if !ok {
			continue
		}
		seen[img.Descriptor.Digest] = true
		seen[m] = true
		b, err := os.ReadFile(l.BlobPath(m))
		if err != nil {
			return nil, fmt.Errorf("read image %s for %s: %w", img.Name, arch, err)
		}
		mf, err := v1.ParseManifest(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("read image %s for %s: %w", img.Name, arch, err)
		}
		seen[mf.Config.Digest] = true
		for _, layer := range mf.Layers {
			seen[layer.Digest] = true
		}
	}
	out := make([]v1.Hash, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b v1.Hash) int {
		if a.String() < b.String() {
			return -1
		}
		if a.String() > b.String() {
			return 1
		}
		return 0
	})
	return out, nil
}
