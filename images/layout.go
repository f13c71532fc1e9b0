package images

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layout is a directory holding one OCI image layout. Each image is an
// index.json entry annotated with its full name; blobs are shared by all.
type Layout string

// LayoutImage is one index.json entry of a Layout.
type LayoutImage struct {
	Name       string             // the ref.name annotation, e.g. registry.k8s.io/pause:3.10
	Descriptor v1.Descriptor      // the entry as index.json has it
	Platforms  map[string]v1.Hash // arch -> linux image manifest digest
}

const ociLayoutFile = `{"imageLayoutVersion":"1.0.0"}`

// indexMu serialises index.json updates within the process.
var indexMu sync.Mutex

// CreateLayout creates an empty OCI image layout in dir, which must not
// exist or be empty.
func CreateLayout(dir string) (Layout, error) {
	l := Layout(dir)
	if err := l.create(); err != nil {
		return "", fmt.Errorf("create OCI layout %s: %w", dir, err)
	}
	return l, nil
}

func (l Layout) create() error {
	if err := os.MkdirAll(l.Path("blobs", "sha256"), 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(l.Path())
	if err != nil {
		return err
	}
	if len(ents) != 1 || ents[0].Name() != "blobs" {
		return errors.New("directory is not empty")
	}
	if err := os.WriteFile(l.Path("oci-layout"), []byte(ociLayoutFile), 0o644); err != nil {
		return err
	}
	return l.writeIndex(&v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}})
}

// OpenLayout opens an existing OCI image layout.
func OpenLayout(dir string) (Layout, error) {
	l := Layout(dir)
	for _, f := range []string{"oci-layout", "index.json"} {
		if _, err := os.Stat(l.Path(f)); err != nil {
			return "", fmt.Errorf("open OCI layout %s: %w", dir, err)
		}
	}
	return l, nil
}

// Path joins elem to the layout directory.
func (l Layout) Path(elem ...string) string {
	return filepath.Join(append([]string{string(l)}, elem...)...)
}

// BlobPath is where the blob with digest h lives.
func (l Layout) BlobPath(h v1.Hash) string {
	return l.Path("blobs", h.Algorithm, h.Hex)
}

func (l Layout) readIndex() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(l.Path("index.json"))
	if err != nil {
		return nil, err
	}
	return v1.ParseIndexManifest(bytes.NewReader(b))
}

// writeIndex replaces index.json atomically.
func (l Layout) writeIndex(im *v1.IndexManifest) error {
	b, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(l.Path(), ".index.json-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), l.Path("index.json"))
}

// setRef adds d to index.json, replacing an entry with the same ref name.
func (l Layout) setRef(d v1.Descriptor) error {
	indexMu.Lock()
	defer indexMu.Unlock()
	im, err := l.readIndex()
	if err != nil {
		return err
	}
	name := d.Annotations[AnnotationRefName]
	replaced := false
	for i, old := range im.Manifests {
		if old.Annotations[AnnotationRefName] == name {
			im.Manifests[i] = d
			replaced = true
			break
		}
	}
	if !replaced {
		im.Manifests = append(im.Manifests, d)
	}
	return l.writeIndex(im)
}

// Images lists the index.json entries in order, with the linux image
// manifest digest of each arch.
func (l Layout) Images() ([]LayoutImage, error) {
	im, err := l.readIndex()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", l, err)
	}
	var out []LayoutImage
	for _, d := range im.Manifests {
		li := LayoutImage{Name: d.Annotations[AnnotationRefName], Descriptor: d}
		if li.Platforms, err = l.platforms(d); err != nil {
			return nil, fmt.Errorf("read image %s in OCI layout %s: %w", li.Name, l, err)
		}
		out = append(out, li)
	}
	return out, nil
}

func (l Layout) platforms(d v1.Descriptor) (map[string]v1.Hash, error) {
	switch {
	case d.MediaType.IsIndex():
		b, err := os.ReadFile(l.BlobPath(d.Digest))
		if err != nil {
			return nil, err
		}
		im, err := v1.ParseIndexManifest(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return archDigests(im, l.configPlatform)
	case d.MediaType.IsImage():
		p, err := l.configPlatform(d.Digest)
		if err != nil {
			return nil, err
		}
		if p == nil || p.OS != "linux" {
			return map[string]v1.Hash{}, nil
		}
		return map[string]v1.Hash{p.Architecture: d.Digest}, nil
	}
	return map[string]v1.Hash{}, nil
}

// configPlatform reads the platform from the config of image manifest h.
func (l Layout) configPlatform(h v1.Hash) (*v1.Platform, error) {
	b, err := os.ReadFile(l.BlobPath(h))
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	b, err = os.ReadFile(l.BlobPath(m.Config.Digest))
	if err != nil {
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return cf.Platform(), nil
}

// ArchDigests maps each arch of idx to its linux image manifest digest.
// Entries that are not linux images are skipped; two images for one arch
// are an error.
func ArchDigests(idx v1.ImageIndex) (map[string]v1.Hash, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index manifest: %w", err)
	}
	m, err := archDigests(im, func(h v1.Hash) (*v1.Platform, error) {
		img, err := idx.Image(h)
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		return cf.Platform(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("map arches to digests: %w", err)
	}
	return m, nil
}

func archDigests(im *v1.IndexManifest, configPlatform func(v1.Hash) (*v1.Platform, error)) (map[string]v1.Hash, error) {
	out := map[string]v1.Hash{}
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() || d.Annotations[annotationReferenceType] != "" {
			continue
		}
		p := d.Platform
		if p == nil {
			var err error
			if p, err = configPlatform(d.Digest); err != nil {
				return nil, err
			}
		}
		if p == nil || p.OS != "linux" {
			continue
		}
		if prev, ok := out[p.Architecture]; ok {
			return nil, fmt.Errorf("two images for %s: %s and %s", platformString(p), prev, d.Digest)
		}
		out[p.Architecture] = d.Digest
	}
	return out, nil
}
