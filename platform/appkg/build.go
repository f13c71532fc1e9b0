package appkg

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/app"
)

// BuildOptions tell Build what to package and where.
type BuildOptions struct {
	// AppFile is the app.yaml to package. Required.
	AppFile string
	// Output is the package file to write. Default: OutDir/<key>-<version>.wtapp.
	Output string
	// OutDir is where the default Output goes. Default: the current directory.
	OutDir string
	// Arches are the package arches. Default: the app's arches when it names any, else DefaultArches (amd64 and
	// arm64). When the app names its arches, each one asked for must be among them.
	Arches []string
	// Sources says where an image comes from, by the image name the app uses. Images not listed here are looked
	// up in Layouts, then pulled from their registry.
	Sources map[string]images.Source
	// Layouts are OCI image layout directories searched, in order, for an index.json entry named like the image
	// (the org.opencontainers.image.ref.name or io.containerd.image.name annotation, exactly or as the same
	// normalized reference, so nginx:1.27 matches docker.io/library/nginx:1.27).
	Layouts []string
	// Key signs the manifest. Nil builds an unsigned package, which readers refuse by default.
	Key ed25519.PrivateKey
	// Force replaces an existing Output. Default: refuse.
	Force bool
	// Created is the time recorded in the manifest and the tar headers. Default: now.
	Created time.Time
	// Progress starts a progress display for one step with a known total (0 if unknown). Nil shows nothing.
	Progress func(title string, total int64) Progress
}

// Build packages the app of opts.AppFile with its images, narrowed to the package arches, into one signed .wtapp.
// Every image is resolved before any layer is copied, so an unreachable source fails fast. The OCI layout is staged
// in a temporary directory next to the output and the package is written to a temporary file renamed into place
// at the end: on any failure nothing is left behind.
func Build(ctx context.Context, opts BuildOptions) (info *Info, err error) {
	if opts.AppFile == "" {
		return nil, errors.New("build app package: no app file given")
	}
	a, err := app.Load(opts.AppFile)
	if err != nil {
		return nil, err
	}
	canonical, err := a.Canonical()
	if err != nil {
		return nil, fmt.Errorf("build app package: %w", err)
	}
	arches, err := archesFor(opts.Arches, a)
	if err != nil {
		return nil, fmt.Errorf("build app package %s: %w", a.Key, err)
	}
	if opts.Progress == nil {
		opts.Progress = func(string, int64) Progress { return noProgress{} }
	}
	if opts.Created.IsZero() {
		opts.Created = time.Now().UTC().Truncate(time.Second)
	}
	output := opts.Output
	if output == "" {
		dir := opts.OutDir
		if dir == "" {
			dir = "."
		}
		output = filepath.Join(dir, a.Key+"-"+a.Version+fileExt)
	}
	if st, serr := os.Stat(output); serr == nil {
		if st.IsDir() {
			return nil, fmt.Errorf("build app package: output %s is a directory; name a file, or use --out-dir", output)
		}
		if !opts.Force {
			return nil, fmt.Errorf("build app package: %s already exists; remove it or pass --force to replace it", output)
		}
	}
	dir := filepath.Dir(output)
	if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
		defer func() {
			if err != nil {
				os.Remove(dir) // only if still empty: a failed build leaves nothing behind
			}
		}()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("build app package: %w", err)
	}
	stage, err := os.MkdirTemp(dir, "."+filepath.Base(output)+".build-")
	if err != nil {
		return nil, fmt.Errorf("build app package: %w", diskFull(dir, err))
	}
	defer os.RemoveAll(stage)

	m := &bundle.Manifest{
		APIVersion: bundle.APIVersion, Kind: bundle.KindApp,
		Name: a.Key, Version: a.Version, Arches: arches, Created: opts.Created,
	}
	want, err := imageArches(a, arches)
	if err != nil {
		return nil, fmt.Errorf("build app package %s: %w", a.Key, err)
	}
	b := &builder{opts: opts, stage: stage, arches: want}
	srcs, err := b.sources(a.Images())
	if err != nil {
		return nil, err
	}
	idxs, err := b.resolve(ctx, a.Images(), srcs)
	if err != nil {
		return nil, err
	}
	layoutDir := filepath.Join(stage, "oci")
	if err := b.stageImages(ctx, layoutDir, m, a.Images(), srcs, idxs); err != nil {
		return nil, diskFull(dir, err)
	}
	items, err := bundle.LayoutItems(layoutDir, OCIPrefix)
	if err != nil {
		return nil, err
	}
	items = append([]bundle.Item{bundle.BytesItem(AppEntry, canonical)}, items...)
	for _, it := range items {
		m.Entries = append(m.Entries, it.Entry)
	}
	if err := checkEntries(m); err != nil {
		return nil, fmt.Errorf("build app package: %w", err)
	}
	if err := checkImages(a, m); err != nil {
		return nil, fmt.Errorf("build app package: %w", err)
	}
	if err := bundle.CheckFreeSpace(dir, m.PayloadSize()); err != nil {
		return nil, fmt.Errorf("build app package: %w", err)
	}
	size, err := b.write(ctx, output, m, items)
	if err != nil {
		return nil, diskFull(dir, err)
	}
	mb, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	inf := newInfo(m, mb, a, canonical)
	inf.Path, inf.Size = output, size
	if opts.Key != nil {
		inf.Signer = bundle.Fingerprint(opts.Key.Public().(ed25519.PublicKey))
	}
	return &inf, nil
}

type builder struct {
	opts   BuildOptions
	stage  string
	arches map[string][]string // image -> its arches
}

// sources picks each image's source: opts.Sources, then the first layout naming it, then its registry.
func (b *builder) sources(names []string) (map[string]images.Source, error) {
	var layouts []layoutRefs
	for _, dir := range b.opts.Layouts {
		lr, err := readLayoutRefs(dir)
		if err != nil {
			return nil, err
		}
		layouts = append(layouts, lr)
	}
	out := map[string]images.Source{}
	for _, n := range names {
		if src, ok := b.opts.Sources[n]; ok {
			out[n] = src
			continue
		}
		out[n] = images.Source{Registry: n}
		for _, lr := range layouts {
			if ref, ok := lr.find(n); ok {
				out[n] = images.Source{OCILayout: lr.dir, RefName: ref}
				break
			}
		}
	}
	return out, nil
}

// layoutRefs are the image names one OCI layout's index.json holds.
type layoutRefs struct {
	dir  string
	refs []string
}

func readLayoutRefs(dir string) (layoutRefs, error) {
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return layoutRefs{}, fmt.Errorf("read OCI layout %s: %w (is it an OCI image layout directory?)", dir, err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(data))
	if err != nil {
		return layoutRefs{}, fmt.Errorf("read OCI layout %s: index.json: %w", dir, err)
	}
	lr := layoutRefs{dir: dir}
	for _, d := range im.Manifests {
		for _, k := range []string{images.AnnotationRefName, "io.containerd.image.name"} {
			if r := d.Annotations[k]; r != "" && !slices.Contains(lr.refs, r) {
				lr.refs = append(lr.refs, r)
			}
		}
	}
	return lr, nil
}

// find returns the layout's name for image n: the same string, else the same normalized reference.
func (lr layoutRefs) find(n string) (string, bool) {
	if slices.Contains(lr.refs, n) {
		return n, true
	}
	want, err := name.ParseReference(n)
	if err != nil {
		return "", false
	}
	for _, r := range lr.refs {
		if got, err := name.ParseReference(r); err == nil && got.Name() == want.Name() {
			return r, true
		}
	}
	return "", false
}

// resolve reads every image's manifests (no layers), so that an unreachable source or a missing platform fails
// the build before any large download.
func (b *builder) resolve(ctx context.Context, names []string, srcs map[string]images.Source) ([]v1.ImageIndex, error) {
	log := logctx.From(ctx)
	idxs := make([]v1.ImageIndex, len(names))
	for i, n := range names {
		src := srcs[n]
		log.Info("resolve image", "image", n, "source", src.String())
		idx, err := images.Resolve(ctx, src, b.arches[n])
		var mp *images.MissingPlatformError
		if errors.As(err, &mp) {
			return nil, fmt.Errorf("image %s: %w; for an app package, pass --arch with the arches the image has, or list the arches on the components that use it", n, err)
		}
		if err != nil {
			if src.Registry == n && len(b.opts.Layouts) > 0 {
				return nil, fmt.Errorf("image %s is in none of the OCI layouts given and its registry failed: %w", n, err)
			}
			if src.Registry == n {
				return nil, fmt.Errorf("image %s: %w (make its registry reachable, or pass --oci-layout DIR with the image)", n, err)
			}
			return nil, fmt.Errorf("image %s: %w", n, err)
		}
		idxs[i] = idx
	}
	return idxs, nil
}

// stageImages writes every resolved image into one OCI layout, sharing blobs, and lists them in m.
func (b *builder) stageImages(ctx context.Context, dir string, m *bundle.Manifest, names []string, srcs map[string]images.Source, idxs []v1.ImageIndex) error {
	layout, err := images.CreateLayout(dir)
	if err != nil {
		return fmt.Errorf("build app package: %w", err)
	}
	for i, idx := range idxs {
		n := names[i]
		total, err := images.BlobsSize(ctx, idx)
		if err != nil {
			return fmt.Errorf("image %s: %w", n, err)
		}
		p := b.opts.Progress("image "+n, total)
		desc, err := layout.Append(ctx, n, idx, p.Add)
		p.Done()
		if err != nil {
			return fmt.Errorf("image %s: %w", n, err)
		}
		arches, err := images.ArchDigests(idx)
		if err != nil {
			return fmt.Errorf("image %s: %w", n, err)
		}
		im := bundle.Image{Name: n, Digest: desc.Digest.String(), Arches: map[string]string{}, Source: srcs[n].String(), Size: total}
		for a, h := range arches {
			im.Arches[a] = h.String()
		}
		m.Images = append(m.Images, im)
	}
	// The layout is the package's truth: it must name exactly the images the manifest lists.
	got, err := layout.Images()
	if err != nil {
		return err
	}
	if len(got) != len(names) {
		return fmt.Errorf("build app package: the staged layout holds %d images, want %d", len(got), len(names))
	}
	for _, li := range got {
		if !slices.Contains(names, li.Name) {
			return fmt.Errorf("build app package: the staged layout holds %q, which the app does not use", li.Name)
		}
	}
	return nil
}

// write streams the archive into a temporary file next to output and renames it into place.
func (b *builder) write(ctx context.Context, output string, m *bundle.Manifest, items []bundle.Item) (int64, error) {
	p := b.opts.Progress("write "+filepath.Base(output), m.PayloadSize())
	defer p.Done()
	f, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".tmp-")
	if err != nil {
		return 0, fmt.Errorf("write app package: %w", err)
	}
	tmp := f.Name()
	cw := &countingWriter{w: f}
	err = bundle.Write(ctx, cw, m, items, bundle.WriteOptions{Key: b.opts.Key, Progress: p.Add})
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, output)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("write app package %s: %w", output, err)
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// diskFull rewrites an out-of-space error so that it names the directory and what to do.
func diskFull(dir string, err error) error {
	var df *bundle.DiskFullError
	if errors.Is(err, syscall.ENOSPC) && !errors.As(err, &df) {
		return fmt.Errorf("build app package: disk full while writing into %s; free some space or choose another output directory (nothing was kept): %w", dir, err)
	}
	return err
}
