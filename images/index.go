package images

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one image manifest of a resolved index. Either img is set (an
// image we built or a single-image source; its digest is computed lazily), or
// from is the source index that holds desc.Digest.
type entry struct {
	desc v1.Descriptor
	img  v1.Image
	from v1.ImageIndex
}

// resolvedIndex is the v1.ImageIndex that Resolve returns: exactly the
// entries asked for, computed lazily so that resolving reads no layer blobs.
type resolvedIndex struct {
	mediaType   types.MediaType
	annotations map[string]string
	entries     []entry
	// srcRaw, when set, is the source index manifest, which describes
	// exactly entries; it is kept byte for byte so the index digest survives.
	srcRaw []byte
	// layoutBlobs is the blobs directory of a source OCI layout on disk;
	// Append may hardlink blobs from there.
	layoutBlobs string

	once     sync.Once
	raw      []byte
	manifest *v1.IndexManifest
	err      error
}

var _ v1.ImageIndex = (*resolvedIndex)(nil)

func (x *resolvedIndex) compute() error {
	x.once.Do(func() {
		if x.srcRaw != nil {
			x.raw = x.srcRaw
			x.manifest, x.err = v1.ParseIndexManifest(bytes.NewReader(x.raw))
			return
		}
		m := &v1.IndexManifest{SchemaVersion: 2, MediaType: x.mediaType, Annotations: x.annotations}
		for _, e := range x.entries {
			d := e.desc
			if e.img != nil {
				pd, err := partial.Descriptor(e.img)
				if err != nil {
					x.err = fmt.Errorf("describe image manifest: %w", err)
					return
				}
				d.MediaType, d.Size, d.Digest = pd.MediaType, pd.Size, pd.Digest
			}
			m.Manifests = append(m.Manifests, d)
		}
		x.manifest = m
		x.raw, x.err = json.Marshal(m)
	})
	return x.err
}

func (x *resolvedIndex) MediaType() (types.MediaType, error) { return x.mediaType, nil }

func (x *resolvedIndex) Digest() (v1.Hash, error) { return partial.Digest(x) }

func (x *resolvedIndex) Size() (int64, error) { return partial.Size(x) }

func (x *resolvedIndex) IndexManifest() (*v1.IndexManifest, error) {
	if err := x.compute(); err != nil {
		return nil, err
	}
	return x.manifest.DeepCopy(), nil
}

func (x *resolvedIndex) RawManifest() ([]byte, error) {
	if err := x.compute(); err != nil {
		return nil, err
	}
	return x.raw, nil
}

func (x *resolvedIndex) Image(h v1.Hash) (v1.Image, error) {
	if err := x.compute(); err != nil {
		return nil, err
	}
	for i, d := range x.manifest.Manifests {
		if d.Digest != h {
			continue
		}
		if e := x.entries[i]; e.img != nil {
			return e.img, nil
		}
		return x.entries[i].from.Image(h)
	}
	return nil, fmt.Errorf("image manifest %s not in index", h)
}

func (x *resolvedIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("index %s not in index: resolved indexes hold only image manifests", h)
}
