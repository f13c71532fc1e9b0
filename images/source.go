package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations on index.json entries that name an image.
const (
	AnnotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
	annotationReferenceType  = "vnd.docker.reference.type"
)

// Source says where one image comes from. Exactly one of Registry,
// OCILayout, DockerArchive and Binaries is set.
type Source struct {
	// Registry is an image reference, pulled with the docker config
	// credentials (authn.DefaultKeychain).
	Registry string `yaml:"registry,omitempty" json:"registry,omitempty"`
	// OCILayout is the path of an OCI image layout directory.
	OCILayout string `yaml:"ociLayout,omitempty" json:"ociLayout,omitempty"`
	// RefName picks the OCILayout index.json entry whose ref.name annotation
	// (or containerd image name) equals it or ends with it after a '/', ':'
	// or '@'. It may be empty when the layout holds exactly one entry.
	RefName string `yaml:"refName,omitempty" json:"refName,omitempty"`
	// DockerArchive is the path of a `docker save` tarball.
	DockerArchive string `yaml:"dockerArchive,omitempty" json:"dockerArchive,omitempty"`
	// Tag picks an image inside DockerArchive; optional when it holds one.
	Tag string `yaml:"tag,omitempty" json:"tag,omitempty"`
	// Binaries builds an image from per-arch Go binaries, the way ko does.
	Binaries *BinariesSource `yaml:"binaries,omitempty" json:"binaries,omitempty"`
}

// String names the source the way error messages show it.
func (s Source) String() string {
	switch {
	case s.Registry != "":
		return s.Registry
	case s.OCILayout != "":
		if s.RefName != "" {
			return "oci:" + s.OCILayout + ":" + s.RefName
		}
		return "oci:" + s.OCILayout
	case s.DockerArchive != "":
		if s.Tag != "" {
			return "docker-archive:" + s.DockerArchive + ":" + s.Tag
		}
		return "docker-archive:" + s.DockerArchive
	case s.Binaries != nil:
		return "binaries:" + s.Binaries.Path
	}
	return "(empty source)"
}

func (s Source) validate() error {
	var set []string
	if s.Registry != "" {
		set = append(set, "registry")
	}
	if s.OCILayout != "" {
		set = append(set, "ociLayout")
	}
	if s.DockerArchive != "" {
		set = append(set, "dockerArchive")
	}
	if s.Binaries != nil {
		set = append(set, "binaries")
	}
	switch {
	case len(set) == 0:
		return fmt.Errorf("empty image source: set one of registry, ociLayout, dockerArchive or binaries")
	case len(set) > 1:
		return fmt.Errorf("image source sets %s: set exactly one", strings.Join(set, " and "))
	case s.RefName != "" && s.OCILayout == "":
		return fmt.Errorf("refName %q is only valid with ociLayout", s.RefName)
	case s.Tag != "" && s.DockerArchive == "":
		return fmt.Errorf("tag %q is only valid with dockerArchive", s.Tag)
	}
	return nil
}

// MissingPlatformError says that a source has no image for a requested arch.
type MissingPlatformError struct {
	Image     string   // the source, as Source.String shows it
	Arch      string   // the requested arch it lacks
	Available []string // the platforms it does have, as os/arch[/variant]
	Err       error    // optional cause, e.g. a missing binary file
}

func (e *MissingPlatformError) Error() string {
	have := "no platform we recognise"
	if len(e.Available) > 0 {
		have = strings.Join(e.Available, ", ")
	}
	msg := fmt.Sprintf("image %s has no linux/%s variant (it has: %s); set `arches:` on this image to the arches it has, or pick another source that provides linux/%s",
		e.Image, e.Arch, have, e.Arch)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *MissingPlatformError) Unwrap() error { return e.Err }

// Resolve opens src and returns an index holding exactly one linux image
// manifest per arch in arches, in that order, each descriptor carrying its
// platform. Manifests picked from a registry or layout keep their digests;
// when nothing is dropped or reordered, the source index is kept byte for
// byte, so its digest survives too. A source lacking an arch yields a
// *MissingPlatformError.
//
// Resolve reads manifests and, where needed, image configs, but no layers:
// those are fetched when the index is written (see Layout.Append). Registry
// sources keep using ctx for those later fetches, so ctx must outlive the
// use of the returned index.
func Resolve(ctx context.Context, src Source, arches []string) (v1.ImageIndex, error) {
	idx, err := resolve(ctx, src, arches)
	if err != nil {
		if _, ok := err.(*MissingPlatformError); ok {
			return nil, err
		}
		return nil, fmt.Errorf("resolve image %s: %w", src, err)
	}
	return idx, nil
}

func resolve(ctx context.Context, src Source, arches []string) (v1.ImageIndex, error) {
	if err := src.validate(); err != nil {
		return nil, err
	}
	if err := checkArches(arches); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case src.Registry != "":
		return resolveRegistry(ctx, src, arches)
	case src.OCILayout != "":
		return resolveLayout(src, arches)
	case src.DockerArchive != "":
		return resolveArchive(src, arches)
	default:
		return resolveBinaries(src, arches)
	}
}

func resolveRegistry(ctx context.Context, src Source, arches []string) (v1.ImageIndex, error) {
	ref, err := name.ParseReference(src.Registry)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(ref,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("wutong-offline"))
	if err != nil {
		return nil, err
	}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		return selectArches(src.String(), idx, arches, "")
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, err
		}
		return wrapImage(src.String(), img, arches, "")
	}
	return nil, fmt.Errorf("unsupported manifest media type %s", desc.MediaType)
}

func resolveLayout(src Source, arches []string) (v1.ImageIndex, error) {
	p, err := layout.FromPath(src.OCILayout)
	if err != nil {
		return nil, err
	}
	root, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := root.IndexManifest()
	if err != nil {
		return nil, err
	}
	d, err := pickRef(im.Manifests, src.RefName)
	if err != nil {
		return nil, err
	}
	blobs := filepath.Join(src.OCILayout, "blobs")
	switch {
	case d.MediaType.IsIndex():
		idx, err := root.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		got, err := idx.Digest()
		if err != nil {
			return nil, err
		}
		if got != d.Digest {
			return nil, &DigestError{Expected: d.Digest, Actual: got}
		}
		return selectArches(src.String(), idx, arches, blobs)
	case d.MediaType.IsImage():
		img, err := root.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		return wrapImage(src.String(), img, arches, blobs)
	}
	return nil, fmt.Errorf("unsupported manifest media type %s", d.MediaType)
}

// pickRef finds the index.json entry named refName: an exact match of its
// ref name (or containerd image name) wins over a suffix match.
func pickRef(ds []v1.Descriptor, refName string) (v1.Descriptor, error) {
	var names []string
	for _, d := range ds {
		names = append(names, refNames(d)...)
	}
	if refName == "" {
		if len(ds) == 1 {
			return ds[0], nil
		}
		return v1.Descriptor{}, fmt.Errorf("layout holds %d images, set refName to one of: %s", len(ds), strings.Join(names, ", "))
	}
	for _, match := range []func(string) bool{
		func(n string) bool { return n == refName },
		func(n string) bool { return hasRefSuffix(n, refName) },
	} {
		var found []v1.Descriptor
		for _, d := range ds {
			if slices.ContainsFunc(refNames(d), match) {
				found = append(found, d)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return v1.Descriptor{}, fmt.Errorf("refName %q matches %d images in the layout, be more specific (have: %s)", refName, len(found), strings.Join(names, ", "))
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no image named %q in the layout (have: %s)", refName, strings.Join(names, ", "))
}

func refNames(d v1.Descriptor) []string {
	var ns []string
	for _, k := range []string{AnnotationRefName, annotationContainerdName} {
		if n := d.Annotations[k]; n != "" && !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	if len(ns) == 0 {
		ns = append(ns, "(unnamed "+d.Digest.String()+")")
	}
	return ns
}

// hasRefSuffix reports whether ref ends with suffix at a name boundary, so
// "pause:3.10" matches "registry.k8s.io/pause:3.10" but not "xpause:3.10".
func hasRefSuffix(ref, suffix string) bool {
	n := len(ref) - len(suffix)
	return n > 0 && strings.HasSuffix(ref, suffix) && strings.ContainsRune("/:@", rune(ref[n-1]))
}

func resolveArchive(src Source, arches []string) (v1.ImageIndex, error) {
	var tag *name.Tag
	if src.Tag != "" {
		t, err := name.NewTag(src.Tag)
		if err != nil {
			return nil, err
		}
		tag = &t
	}
	// Check the choice first, to list what the archive holds.
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(src.DockerArchive) })
	if err != nil {
		return nil, err
	}
	var tags []string
	found := false
	for _, d := range m {
		tags = append(tags, d.RepoTags...)
		found = found || tag != nil && slices.ContainsFunc(d.RepoTags, func(t string) bool {
			rt, err := name.NewTag(t)
			return err == nil && rt.Name() == tag.Name()
		})
	}
	switch {
	case tag == nil && len(m) > 1:
		return nil, fmt.Errorf("archive holds %d images, set tag to one of: %s", len(m), strings.Join(tags, ", "))
	case tag != nil && !found:
		return nil, fmt.Errorf("archive has no image tagged %s (have: %s)", tag, strings.Join(tags, ", "))
	}
	img, err := tarball.ImageFromPath(src.DockerArchive, tag)
	if err != nil {
		return nil, err
	}
	return wrapImage(src.String(), img, arches, "")
}

// candidate is an image manifest of a source index and the index holding it.
type candidate struct {
	desc v1.Descriptor
	from v1.ImageIndex
}

// selectArches narrows a multi-arch index down to arches, flattening one
// level of nested indexes and dropping attestations and unknown platforms.
func selectArches(image string, idx v1.ImageIndex, arches []string, layoutBlobs string) (v1.ImageIndex, error) {
	mt, err := idx.MediaType()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var cands []candidate
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			nested, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			nm, err := nested.IndexManifest()
			if err != nil {
				return nil, err
			}
			for _, nd := range nm.Manifests {
				if nd.MediaType.IsIndex() {
					return nil, fmt.Errorf("index %s nests index %s: only one level of nesting is supported", d.Digest, nd.Digest)
				}
				if c, ok, err := imageCandidate(nd, nested); err != nil {
					return nil, err
				} else if ok {
					cands = append(cands, c)
				}
			}
		case d.MediaType.IsImage():
			if c, ok, err := imageCandidate(d, idx); err != nil {
				return nil, err
			} else if ok {
				cands = append(cands, c)
			}
		}
	}

	var available []string
	for _, c := range cands {
		if p := platformString(c.desc.Platform); !slices.Contains(available, p) {
			available = append(available, p)
		}
	}
	out := &resolvedIndex{mediaType: mt, annotations: im.Annotations, layoutBlobs: layoutBlobs}
	for _, arch := range arches {
		i := slices.IndexFunc(cands, func(c candidate) bool {
			return c.desc.Platform.OS == "linux" && c.desc.Platform.Architecture == arch
		})
		if i < 0 {
			return nil, &MissingPlatformError{Image: image, Arch: arch, Available: available}
		}
		out.entries = append(out.entries, entry{desc: cands[i].desc, from: cands[i].from})
	}

	// Nothing dropped or reordered: keep the source manifest byte for byte,
	// so references pinned to the index digest still work.
	same := len(out.entries) == len(im.Manifests)
	for i := 0; same && i < len(out.entries); i++ {
		same = out.entries[i].from == idx && reflect.DeepEqual(out.entries[i].desc, im.Manifests[i])
	}
	if same {
		if out.srcRaw, err = idx.RawManifest(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// imageCandidate returns d with its platform, reading the image config when
// the index does not say. Attestations and unknown platforms are dropped.
func imageCandidate(d v1.Descriptor, from v1.ImageIndex) (candidate, bool, error) {
	if d.Annotations[annotationReferenceType] != "" {
		return candidate{}, false, nil
	}
	if d.Platform == nil {
		img, err := from.Image(d.Digest)
		if err != nil {
			return candidate{}, false, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return candidate{}, false, fmt.Errorf("read config of %s: %w", d.Digest, err)
		}
		d.Platform = cf.Platform()
	}
	if d.Platform == nil || d.Platform.OS == "" || d.Platform.OS == "unknown" {
		return candidate{}, false, nil
	}
	return candidate{desc: d, from: from}, true, nil
}

// wrapImage turns a single-image source into a one-entry index, provided its
// config's platform is the one (and only) arch asked for.
func wrapImage(image string, img v1.Image, arches []string, layoutBlobs string) (v1.ImageIndex, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	p := cf.Platform()
	var available []string
	if p != nil {
		available = []string{platformString(p)}
	}
	for _, arch := range arches {
		if p == nil || p.OS != "linux" || p.Architecture != arch {
			return nil, &MissingPlatformError{Image: image, Arch: arch, Available: available}
		}
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	imt := types.OCIImageIndex
	if mt == types.DockerManifestSchema2 {
		imt = types.DockerManifestList
	}
	return &resolvedIndex{
		mediaType:   imt,
		entries:     []entry{{desc: v1.Descriptor{Platform: p}, img: img}},
		layoutBlobs: layoutBlobs,
	}, nil
}
