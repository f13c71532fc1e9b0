package appkg

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/platform/app"
)

// ExportImage is one image of an imported version: its name in the package (as the app names it) and where the
// registry holds it, by digest (e.g. 10.99.0.10:5000/apps/shop/docker.io/library/nginx@sha256:…).
type ExportImage struct {
	Name string
	Ref  string
}

// ExportOptions tune Export.
type ExportOptions struct {
	// Arches are the package arches. Default: every arch (in the order amd64, arm64, loong64) that the app allows,
	// some image holds, and every image that needs it holds, so that exporting an imported package keeps its
	// arches and so its index digests.
	Arches []string
	// Key signs the manifest. Nil writes an unsigned package, which readers refuse by default.
	Key ed25519.PrivateKey
	// Remote are the go-containerregistry options for every registry request: auth, transport, retries.
	Remote []remote.Option
	// Created is the time recorded in the manifest. Default: now.
	Created time.Time
}

// Export streams an app package for an imported version to w, straight from a registry and without staging to
// disk: app.json from canonical, then the OCI layout with each image's index, manifests, configs and layers fetched
// by digest. Indexes and manifests are read first (they are small), so every size and digest is known and the
// manifest can lead the archive; layers then stream one at a time through a fixed buffer. An index holding more
// than the package arches is narrowed (keeping its order), which changes its digest; otherwise every digest is the
// registry's. Info.Path is empty and Info.Size counts the bytes written to w.
func Export(ctx context.Context, w io.Writer, canonical []byte, imgs []ExportImage, opts ExportOptions) (*Info, error) {
	a, err := app.Decode(canonical)
	if err != nil {
		return nil, fmt.Errorf("export app package: %w", err)
	}
	if c, err := a.Canonical(); err != nil || !bytes.Equal(c, canonical) {
		return nil, errors.New("export app package: the app model given is not in canonical form; pass the stored canonical JSON unchanged")
	}
	refs, err := exportRefs(a.Images(), imgs)
	if err != nil {
		return nil, fmt.Errorf("export app package %s %s: %w", a.Key, a.Version, err)
	}
	if opts.Created.IsZero() {
		opts.Created = time.Now().UTC().Truncate(time.Second)
	}
	puller, err := remote.NewPuller(opts.Remote...)
	if err != nil {
		return nil, fmt.Errorf("export app package: %w", err)
	}
	x := &exporter{puller: puller, blobs: map[string]*exportBlob{}}
	srcs := make([]*exportSource, len(refs))
	for i, r := range refs {
		if srcs[i], err = x.index(ctx, r); err != nil {
			return nil, fmt.Errorf("export app package %s %s: image %s: %w", a.Key, a.Version, r.Name, err)
		}
	}
	arches, want, err := exportArches(opts.Arches, a, srcs)
	if err != nil {
		return nil, fmt.Errorf("export app package %s %s: %w", a.Key, a.Version, err)
	}
	m := &bundle.Manifest{
		APIVersion: bundle.APIVersion, Kind: bundle.KindApp,
		Name: a.Key, Version: a.Version, Arches: arches, Created: opts.Created,
	}
	index := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, s := range srcs {
		im, d, err := x.image(ctx, s, want[s.name])
		if err != nil {
			return nil, fmt.Errorf("export app package %s %s: image %s: %w", a.Key, a.Version, s.name, err)
		}
		m.Images = append(m.Images, im)
		index.Manifests = append(index.Manifests, d)
	}
	indexJSON, err := json.MarshalIndent(index, "", "  ") // as images.Layout writes it, so a layout pushed and
	if err != nil {                                       // exported again has the same index.json
		return nil, fmt.Errorf("export app package: %w", err)
	}
	items := []bundle.Item{bundle.BytesItem(AppEntry, canonical), bundle.BytesItem(ociLayoutEntry, []byte(ociLayoutFile)), bundle.BytesItem(ociIndexEntry, append(indexJSON, '\n'))}
	items = append(items, x.items(ctx)...)
	for _, it := range items {
		m.Entries = append(m.Entries, it.Entry)
	}
	if err := checkEntries(m); err != nil {
		return nil, fmt.Errorf("export app package: %w", err)
	}
	if err := checkImages(a, m); err != nil {
		return nil, fmt.Errorf("export app package: %w", err)
	}
	cw := &countingWriter{w: w}
	if err := bundle.Write(ctx, cw, m, items, bundle.WriteOptions{Key: opts.Key}); err != nil {
		return nil, fmt.Errorf("export app package %s %s: %w", a.Key, a.Version, err)
	}
	mb, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	info := newInfo(m, mb, a, canonical)
	info.Size = cw.n
	if opts.Key != nil {
		info.Signer = bundle.Fingerprint(opts.Key.Public().(ed25519.PublicKey))
	}
	return &info, nil
}

// exportRefs pairs each image the app names with its registry reference, refusing a missing, extra or repeated one.
func exportRefs(names []string, imgs []ExportImage) ([]ExportImage, error) {
	by := map[string]ExportImage{}
	for _, im := range imgs {
		if _, dup := by[im.Name]; dup {
			return nil, fmt.Errorf("image %s is given twice", im.Name)
		}
		if !slices.Contains(names, im.Name) {
			return nil, fmt.Errorf("image %s is not used by the app (it uses: %s)", im.Name, strings.Join(names, ", "))
		}
		by[im.Name] = im
	}
	out := make([]ExportImage, 0, len(names))
	for _, n := range names {
		im, ok := by[n]
		if !ok {
			return nil, fmt.Errorf("image %s, which the app uses, has no registry reference; give every image of the version", n)
		}
		out = append(out, im)
	}
	return out, nil
}

// exporter fetches manifests and lists the blobs of the package.
type exporter struct {
	puller *remote.Puller
	blobs  map[string]*exportBlob // hex -> blob
}

// exportBlob is one blob of the package: held in memory (indexes, manifests) or fetched from repo when written.
type exportBlob struct {
	size int64
	data []byte
	repo name.Repository
}

// exportSource is one image's registry index.
type exportSource struct {
	name   string
	repo   name.Repository
	mt     types.MediaType
	raw    []byte
	idx    *v1.IndexManifest
	arches map[string]v1.Descriptor // arch -> its linux image manifest, with platform set
}

// index fetches an image's index by digest and finds its linux image manifests.
func (x *exporter) index(ctx context.Context, r ExportImage) (*exportSource, error) {
	ref, err := name.NewDigest(r.Ref)
	if err != nil {
		return nil, fmt.Errorf("reference %q must name the image by digest (REPO@sha256:…): %w", r.Ref, err)
	}
	desc, err := x.puller.Get(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("fetch index %s: %w", r.Ref, err)
	}
	if desc.Digest.String() != ref.DigestStr() || sha(desc.Manifest) != desc.Digest.Hex {
		return nil, fmt.Errorf("fetch index %s: the registry returned content of digest sha256:%s", r.Ref, sha(desc.Manifest))
	}
	if !desc.MediaType.IsIndex() {
		return nil, fmt.Errorf("%s is a single image manifest (%s); an imported version holds multi-arch indexes, import the package again", r.Ref, desc.MediaType)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("parse index %s: %w", r.Ref, err)
	}
	s := &exportSource{name: r.Name, repo: ref.Repository, mt: desc.MediaType, raw: desc.Manifest, idx: idx, arches: map[string]v1.Descriptor{}}
	for _, d := range idx.Manifests {
		if d.MediaType.IsIndex() {
			return nil, fmt.Errorf("index %s nests index %s, which app packages do not support", desc.Digest, d.Digest)
		}
		if !d.MediaType.IsImage() || d.Annotations["vnd.docker.reference.type"] != "" {
			continue
		}
		if d.Platform == nil {
			if d.Platform, err = x.platform(ctx, s.repo, d); err != nil {
				return nil, err
			}
		}
		if d.Platform.OS != "linux" || !images.ValidArch(d.Platform.Architecture) {
			continue
		}
		if _, dup := s.arches[d.Platform.Architecture]; dup {
			return nil, fmt.Errorf("index %s holds two images for linux/%s", desc.Digest, d.Platform.Architecture)
		}
		s.arches[d.Platform.Architecture] = d
	}
	return s, nil
}

// platform reads an image's platform from its config, for an index entry that does not say.
func (x *exporter) platform(ctx context.Context, repo name.Repository, d v1.Descriptor) (*v1.Platform, error) {
	raw, err := x.manifest(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", d.Digest, err)
	}
	l, err := x.puller.Layer(ctx, repo.Digest(m.Config.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("fetch config %s: %w", m.Config.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetch config %s: %w", m.Config.Digest, err)
	}
	defer rc.Close()
	cf, err := v1.ParseConfigFile(io.LimitReader(rc, maxManifestBlob))
	if err != nil {
		return nil, fmt.Errorf("parse config %s: %w", m.Config.Digest, err)
	}
	p := cf.Platform()
	if p == nil {
		p = &v1.Platform{}
	}
	return p, nil
}

// manifest fetches an image manifest by digest and checks it.
func (x *exporter) manifest(ctx context.Context, repo name.Repository, d v1.Descriptor) ([]byte, error) {
	desc, err := x.puller.Get(ctx, repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s: %w", d.Digest, err)
	}
	if sha(desc.Manifest) != d.Digest.Hex || int64(len(desc.Manifest)) != d.Size {
		return nil, &images.DigestError{Expected: d.Digest, Actual: v1.Hash{Algorithm: "sha256", Hex: sha(desc.Manifest)}, ExpectedSize: d.Size, ActualSize: int64(len(desc.Manifest))}
	}
	return desc.Manifest, nil
}

// exportArches picks the package arches and each image's arches (see imageArches): asked, or by default every arch
// (in images.Arches order) that the app allows, some image holds, and every image that needs it holds.
func exportArches(asked []string, a *app.App, srcs []*exportSource) ([]string, map[string][]string, error) {
	if len(asked) == 0 && len(srcs) > 0 {
		for _, x := range images.Arches {
			if len(a.Arches) > 0 && !slices.Contains(a.Arches, x) {
				continue
			}
			need, err := imageArches(a, []string{x})
			held, missing := false, false
			for _, s := range srcs {
				_, has := s.arches[x]
				held = held || has
				missing = missing || err == nil && len(need[s.name]) > 0 && !has
			}
			if held && !missing {
				asked = append(asked, x)
			}
		}
		if len(asked) == 0 {
			return nil, nil, errors.New("no arch is held by every image that needs it; pass the arches to export")
		}
	}
	arches, err := archesFor(asked, a)
	if err != nil {
		return nil, nil, err
	}
	want, err := imageArches(a, arches)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range srcs {
		for _, arch := range want[s.name] {
			if _, ok := s.arches[arch]; !ok {
				return nil, nil, &images.MissingPlatformError{Image: s.name, Arch: arch, Available: slices.Sorted(maps.Keys(s.arches))}
			}
		}
	}
	return arches, want, nil
}

// image narrows s to arches, lists its blobs, and returns its manifest entry and its index.json descriptor.
func (x *exporter) image(ctx context.Context, s *exportSource, arches []string) (bundle.Image, v1.Descriptor, error) {
	var keep []v1.Descriptor
	for _, d := range s.idx.Manifests {
		if slices.ContainsFunc(arches, func(a string) bool { return s.arches[a].Digest == d.Digest }) {
			keep = append(keep, d)
		}
	}
	raw := s.raw
	if len(keep) != len(s.idx.Manifests) {
		nm := &v1.IndexManifest{SchemaVersion: 2, MediaType: s.idx.MediaType, Annotations: s.idx.Annotations, Manifests: keep}
		var err error
		if raw, err = json.Marshal(nm); err != nil {
			return bundle.Image{}, v1.Descriptor{}, err
		}
	}
	idxHex := sha(raw)
	im := bundle.Image{Name: s.name, Digest: "sha256:" + idxHex, Arches: map[string]string{}}
	seen := map[string]bool{}
	add := func(h string, size int64, data []byte) {
		if !seen[h] {
			seen[h] = true
			im.Size += size
		}
		if x.blobs[h] == nil {
			x.blobs[h] = &exportBlob{size: size, data: data, repo: s.repo}
		}
	}
	add(idxHex, int64(len(raw)), raw)
	for _, arch := range arches {
		d := s.arches[arch]
		mraw, err := x.manifest(ctx, s.repo, d)
		if err != nil {
			return bundle.Image{}, v1.Descriptor{}, err
		}
		m, err := v1.ParseManifest(bytes.NewReader(mraw))
		if err != nil {
			return bundle.Image{}, v1.Descriptor{}, fmt.Errorf("parse manifest %s: %w", d.Digest, err)
		}
		im.Arches[arch] = d.Digest.String()
		add(d.Digest.Hex, d.Size, mraw)
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if b.Digest.Algorithm != "sha256" {
				return bundle.Image{}, v1.Descriptor{}, fmt.Errorf("manifest %s refers to %s: only sha256 blobs are supported", d.Digest, b.Digest)
			}
			add(b.Digest.Hex, b.Size, nil)
		}
	}
	d := v1.Descriptor{MediaType: s.mt, Size: int64(len(raw)), Digest: v1.Hash{Algorithm: "sha256", Hex: idxHex},
		Annotations: map[string]string{images.AnnotationRefName: s.name}}
	return im, d, nil
}

// items lists the blobs by digest, as Build does; configs and layers stream from the registry when written.
func (x *exporter) items(ctx context.Context) []bundle.Item {
	hexes := make([]string, 0, len(x.blobs))
	for h := range x.blobs {
		hexes = append(hexes, h)
	}
	sort.Strings(hexes)
	items := make([]bundle.Item, 0, len(hexes))
	for _, h := range hexes {
		b := x.blobs[h]
		e := bundle.Entry{Path: ociBlobPrefix + h, Size: b.size, SHA256: h, Mode: 0o644}
		if b.data != nil {
			items = append(items, bundle.Item{Entry: e, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.data)), nil }})
			continue
		}
		items = append(items, bundle.Item{Entry: e, Open: func() (io.ReadCloser, error) {
			l, err := x.puller.Layer(ctx, b.repo.Digest("sha256:"+h))
			if err != nil {
				return nil, fmt.Errorf("fetch blob sha256:%s from %s: %w", h, b.repo, err)
			}
			rc, err := l.Compressed()
			if err != nil {
				return nil, fmt.Errorf("fetch blob sha256:%s from %s: %w", h, b.repo, err)
			}
			return rc, nil
		}})
	}
	return items
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
