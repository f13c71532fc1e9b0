package seed

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wutong-paas/wutong-offline/images"
)

const (
	maxManifest  = 4 << 20  // distribution refuses larger manifests too
	maxIndexJSON = 64 << 20 // a layout's index.json, one entry per image
	maxDepth     = 8        // nested indexes
)

var (
	// repoRE is distribution's repository name grammar (github.com/distribution/reference: path components).
	repoRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
)

// DefaultMapName applies the one ref-mapping rule of images.LocalRef and returns the repository and tag that a
// registry serving the mapped names holds: "registry.k8s.io/pause:3.10" becomes ("registry.k8s.io/pause", "3.10"),
// "busybox:1.36" becomes ("docker.io/library/busybox", "1.36"), and a name without a tag gets "latest". So seeding
// and `registry push` store an image under the same name, and containerd's certs.d mirrors find it. Names with a
// digest cannot be tagged and are refused.
func DefaultMapName(name string) (repo, tag string, err error) {
	if strings.Contains(name, "@") {
		return "", "", fmt.Errorf("image name %q has a digest; only repository:tag names can be seeded", name)
	}
	const placeholder = "seed.invalid"
	local, err := images.LocalRef(name, placeholder)
	if err != nil {
		return "", "", err
	}
	local = strings.TrimPrefix(local, placeholder+"/")
	repo, tag = local, "latest"
	if i := strings.LastIndex(local, ":"); i > strings.LastIndex(local, "/") {
		repo, tag = local[:i], local[i+1:]
	}
	return repo, tag, nil
}

func checkRepoTag(name, repo, tag string) error {
	if len(repo) > 255 || !repoRE.MatchString(repo) {
		return fmt.Errorf("image %s: %q is not a valid registry repository name (lowercase path components, no host:port)", name, repo)
	}
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("image %s: %q is not a valid tag", name, tag)
	}
	return nil
}

// image is one named image to seed and everything it refers to.
type image struct {
	name      string
	repo, tag string
	top       v1.Descriptor
	manifests []v1.Descriptor // dependency order: every child before its parent, top last
	blobs     []v1.Descriptor // configs and layers, each once
}

// manifestDoc covers the fields of OCI and Docker image manifests and indexes that seeding needs.
type manifestDoc struct {
	MediaType string          `json:"mediaType"`
	Manifests []v1.Descriptor `json:"manifests"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
}

// planImages maps and walks every named entry of a layout's index.json. read returns a manifest's verified bytes.
func planImages(idx *v1.IndexManifest, mapName func(string) (string, string, error), read func(v1.Descriptor) ([]byte, error)) ([]*image, error) {
	if mapName == nil {
		mapName = DefaultMapName
	}
	var out []*image
	byRef := map[string]*image{}
	for _, d := range idx.Manifests {
		name := d.Annotations[images.AnnotationRefName]
		if name == "" {
			continue // unnamed entries cannot be tagged
		}
		repo, tag, err := mapName(name)
		if err != nil {
			return nil, fmt.Errorf("map image name %s: %w", name, err)
		}
		if err := checkRepoTag(name, repo, tag); err != nil {
			return nil, err
		}
		ref := repo + ":" + tag
		if prev := byRef[ref]; prev != nil {
			if prev.top.Digest != d.Digest {
				return nil, fmt.Errorf("images %s and %s both map to %s with different digests", prev.name, name, ref)
			}
			continue
		}
		img := &image{name: name, repo: repo, tag: tag, top: d}
		if err := img.walk(d, read, map[v1.Hash]bool{}, 0); err != nil {
			return nil, fmt.Errorf("image %s: %w", name, err)
		}
		byRef[ref] = img
		out = append(out, img)
	}
	return out, nil
}

func (img *image) walk(d v1.Descriptor, read func(v1.Descriptor) ([]byte, error), seen map[v1.Hash]bool, depth int) error {
	if seen[d.Digest] {
		return nil
	}
	seen[d.Digest] = true
	if depth > maxDepth {
		return fmt.Errorf("indexes nested deeper than %d", maxDepth)
	}
	if d.Digest.Algorithm != "sha256" {
		return fmt.Errorf("manifest %s: only sha256 digests are supported", d.Digest)
	}
	b, err := read(d)
	if err != nil {
		return fmt.Errorf("read manifest %s: %w", d.Digest, err)
	}
	var m manifestDoc
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	for _, c := range m.Manifests {
		if err := img.walk(c, read, seen, depth+1); err != nil {
			return err
		}
	}
	var blobs []v1.Descriptor
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, b := range append(blobs, m.Layers...) {
		if b.Digest.Algorithm != "sha256" {
			return fmt.Errorf("blob %s of manifest %s: only sha256 digests are supported", b.Digest, d.Digest)
		}
		if !seen[b.Digest] {
			seen[b.Digest] = true
			img.blobs = append(img.blobs, v1.Descriptor{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType})
		}
	}
	img.manifests = append(img.manifests, v1.Descriptor{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType})
	return nil
}

// uniqueBlobs lists every blob of imgs, manifests included, once, sorted by digest.
func uniqueBlobs(imgs []*image) []v1.Descriptor {
	m := map[v1.Hash]v1.Descriptor{}
	for _, img := range imgs {
		for _, d := range append(append([]v1.Descriptor{}, img.blobs...), img.manifests...) {
			m[d.Digest] = d
		}
	}
	out := make([]v1.Descriptor, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest.Hex < out[j].Digest.Hex })
	return out
}
