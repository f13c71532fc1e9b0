package build

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/bundle/parts"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
)

// Progress is one step's byte counter, as shown by the caller.
type Progress interface {
	Add(n int64)
	Done()
}

// Options tell Build what to build and where.
type Options struct {
	// Spec is the parsed bundle.yaml (see LoadSpec).
	Spec *Spec
	// OutDir receives NAME-VERSION.tar.zst (or its parts). Created if missing.
	OutDir string
	// Key signs the manifest. Nil builds an unsigned bundle, which readers refuse by default.
	Key ed25519.PrivateKey
	// SplitSize, when positive, writes parts of at most this many bytes instead of one file.
	SplitSize int64
	// Force replaces an existing archive of the same name. Default: refuse.
	Force bool
	// Created is the time recorded in the manifest and the tar headers. Default: now.
	Created time.Time
	// Progress starts a progress display for one step with a known total (0 if unknown). Nil shows nothing.
	Progress func(title string, total int64) Progress
}

// Result describes the built bundle.
type Result struct {
	Archive        string         `json:"archive"`
	Parts          []string       `json:"parts,omitempty"`
	Size           int64          `json:"size"`
	PayloadSize    int64          `json:"payloadSize"`
	Name           string         `json:"name"`
	Version        string         `json:"version"`
	Arches         []string       `json:"arches"`
	Signer         string         `json:"signer,omitempty"`
	ManifestSHA256 string         `json:"manifestSha256"`
	Images         []bundle.Image `json:"images"`
	Files          []ResultFile   `json:"files"`
}

// ResultFile is one carried file, with its digest.
type ResultFile struct {
	Path   string `json:"path"`
	Arch   string `json:"arch,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type noProgress struct{}

func (noProgress) Add(int64) {}
func (noProgress) Done()     {}

// Build resolves every source of the spec, stages one OCI layout with deduplicated blobs, and writes the signed
// archive into OutDir. Everything is staged in a temporary directory inside OutDir; on failure it is removed and no
// archive or part is left behind.
func Build(ctx context.Context, opts Options) (res *Result, err error) {
	s := opts.Spec
	if opts.Progress == nil {
		opts.Progress = func(string, int64) Progress { return noProgress{} }
	}
	if opts.Created.IsZero() {
		opts.Created = time.Now().UTC().Truncate(time.Second)
	}
	if _, serr := os.Stat(opts.OutDir); errors.Is(serr, fs.ErrNotExist) {
		defer func() {
			if err != nil {
				os.Remove(opts.OutDir) // only if still empty: a failed build leaves nothing behind
			}
		}()
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("build bundle: %w", err)
	}
	archive := filepath.Join(opts.OutDir, s.Name+"-"+s.Version+".tar.zst")
	old := existingOutputs(archive)
	if len(old) > 0 && !opts.Force {
		return nil, fmt.Errorf("build bundle: %s already exists; remove it or pass --force to replace it", old[0])
	}
	stage, err := os.MkdirTemp(opts.OutDir, "."+s.Name+"-"+s.Version+".build-")
	if err != nil {
		return nil, fmt.Errorf("build bundle: %w", diskFull(opts.OutDir, err))
	}
	defer os.RemoveAll(stage)

	b := &builder{spec: s, opts: opts, stage: stage}
	m := &bundle.Manifest{
		APIVersion: bundle.APIVersion, Kind: bundle.KindBundle,
		Name: s.Name, Version: s.Version, Arches: s.Arches, KubernetesVersion: s.KubernetesVersion,
		Created: opts.Created,
	}
	if err := b.checkLocal(); err != nil {
		return nil, err
	}
	idxs, err := b.resolveImages(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.stageImages(ctx, m, idxs); err != nil {
		return nil, diskFull(opts.OutDir, err)
	}
	ociItems, err := b.layoutItems()
	if err != nil {
		return nil, err
	}
	fileItems, err := b.stageFiles(ctx, m)
	if err != nil {
		return nil, diskFull(opts.OutDir, err)
	}
	extra, err := b.localItems()
	if err != nil {
		return nil, err
	}
	items := append(append(ociItems, fileItems...), extra...)
	sbom, err := b.sbom(m, items)
	if err != nil {
		return nil, err
	}
	items = append(items, sbom)

	var payload int64
	for _, it := range items {
		payload += it.Size
	}
	if err := bundle.CheckFreeSpace(opts.OutDir, payload); err != nil {
		return nil, fmt.Errorf("build bundle: %w", err)
	}
	size, partPaths, err := b.writeArchive(ctx, archive, m, items, payload, old)
	if err != nil {
		return nil, diskFull(opts.OutDir, err)
	}
	mb, _ := m.Marshal()
	sum := sha256.Sum256(mb)
	res = &Result{
		Archive: archive, Parts: partPaths, Size: size, PayloadSize: payload,
		Name: s.Name, Version: s.Version, Arches: s.Arches, Images: m.Images,
		ManifestSHA256: hex.EncodeToString(sum[:]),
	}
	if opts.Key != nil {
		res.Signer = bundle.Fingerprint(opts.Key.Public().(ed25519.PublicKey))
	}
	for _, it := range fileItems {
		res.Files = append(res.Files, ResultFile{Path: it.Path, Arch: archOfPath(it.Path), Size: it.Size, SHA256: it.SHA256})
	}
	return res, nil
}

type builder struct {
	spec  *Spec
	opts  Options
	stage string
}

// checkLocal fails fast, before anything is downloaded, when a local file named by the spec is missing.
func (b *builder) checkLocal() error {
	check := func(where, p string) error {
		st, err := os.Stat(b.spec.local(p))
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s: %s is not a regular file", where, b.spec.local(p))
		}
		return nil
	}
	for i, f := range b.spec.Files {
		if f.Path != "" {
			if err := check(fmt.Sprintf("files[%d]", i), f.Path); err != nil {
				return err
			}
		}
	}
	for i, p := range b.spec.Manifests {
		if err := check(fmt.Sprintf("manifests[%d]", i), p.Path); err != nil {
			return err
		}
	}
	for i, p := range b.spec.Apps {
		if err := check(fmt.Sprintf("apps[%d]", i), p.Path); err != nil {
			return err
		}
	}
	return nil
}

// resolveImages resolves every image source (manifests only, no layers), so that an unreachable source or a missing
// platform fails the build before any large download.
func (b *builder) resolveImages(ctx context.Context) ([]v1.ImageIndex, error) {
	log := logctx.From(ctx)
	idxs := make([]v1.ImageIndex, len(b.spec.Images))
	for i := range b.spec.Images {
		im := &b.spec.Images[i]
		src := b.imageSource(im)
		log.Info("resolve image", "image", im.Name, "source", src.String())
		idx, err := images.Resolve(ctx, src, b.spec.archesOf(im))
		if err != nil {
			return nil, fmt.Errorf("images[%d] %s: %w", i, im.Name, err)
		}
		idxs[i] = idx
	}
	return idxs, nil
}

// stageImages writes every resolved image into one OCI layout, deduplicating blobs, and records them in m.
func (b *builder) stageImages(ctx context.Context, m *bundle.Manifest, idxs []v1.ImageIndex) error {
	if len(idxs) == 0 {
		return nil
	}
	layout, err := images.CreateLayout(filepath.Join(b.stage, "oci"))
	if err != nil {
		return fmt.Errorf("build bundle: %w", err)
	}
	for i, idx := range idxs {
		im := &b.spec.Images[i]
		total, err := images.BlobsSize(ctx, idx)
		if err != nil {
			return fmt.Errorf("images[%d] %s: %w", i, im.Name, err)
		}
		p := b.opts.Progress("image "+im.Name, total)
		desc, err := layout.Append(ctx, im.Name, idx, p.Add)
		p.Done()
		if err != nil {
			return fmt.Errorf("images[%d] %s: %w", i, im.Name, err)
		}
		arches, err := images.ArchDigests(idx)
		if err != nil {
			return fmt.Errorf("images[%d] %s: %w", i, im.Name, err)
		}
		info := bundle.Image{Name: im.Name, Digest: desc.Digest.String(), Arches: map[string]string{}, Source: b.imageSource(im).String(), Size: total}
		for a, h := range arches {
			info.Arches[a] = h.String()
		}
		m.Images = append(m.Images, info)
	}
	return nil
}

func (b *builder) imageSource(im *ImageSpec) images.Source {
	src := images.Source{Registry: im.Ref, RefName: im.RefName, Tag: im.Tag}
	if im.OCILayout != "" {
		src.OCILayout = b.spec.local(im.OCILayout)
	}
	if im.DockerArchive != "" {
		src.DockerArchive = b.spec.local(im.DockerArchive)
	}
	if im.Binaries != nil {
		src.Binaries = &images.BinariesSource{
			Path: b.spec.local(im.Binaries.Path), Target: im.Binaries.Target,
			Entrypoint: im.Binaries.Entrypoint, Env: im.Binaries.Env, Created: b.opts.Created,
		}
		for _, l := range im.Binaries.Layers {
			src.Binaries.Layers = append(src.Binaries.Layers, b.spec.local(l))
		}
	}
	return src
}

// layoutItems lists the staged OCI layout as archive items under oci/; none when no image was staged.
func (b *builder) layoutItems() ([]bundle.Item, error) {
	dir := filepath.Join(b.stage, "oci")
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return bundle.LayoutItems(dir, "oci/")
}

// localItems lists manifests and apps.
func (b *builder) localItems() ([]bundle.Item, error) {
	var items []bundle.Item
	for _, g := range []struct {
		dir   string
		paths []PathSpec
	}{{"manifests", b.spec.Manifests}, {"apps", b.spec.Apps}} {
		for i, p := range g.paths {
			it, err := fileItem(b.spec.local(p.Path), g.dir+"/"+filepath.Base(p.Path), 0o644, "")
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", g.dir, i, err)
			}
			items = append(items, it)
		}
	}
	return items, nil
}

// fileItem hashes a local regular file and returns it as an item. mode 0 keeps the file's own mode.
func fileItem(src, entry string, mode uint32, wantSHA string) (bundle.Item, error) {
	f, err := os.Open(src)
	if err != nil {
		return bundle.Item{}, fmt.Errorf("read %s: %w", src, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return bundle.Item{}, fmt.Errorf("read %s: %w", src, err)
	}
	if !st.Mode().IsRegular() {
		return bundle.Item{}, fmt.Errorf("read %s: not a regular file", src)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	if err != nil {
		return bundle.Item{}, fmt.Errorf("read %s: %w", src, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if wantSHA != "" && sum != wantSHA {
		return bundle.Item{}, fmt.Errorf("%s: sha256 mismatch: expected %s, actual %s", src, wantSHA, sum)
	}
	if mode == 0 {
		mode = uint32(st.Mode().Perm())
	}
	return bundle.Item{
		Entry: bundle.Entry{Path: entry, Size: n, SHA256: sum, Mode: mode},
		Open:  func() (io.ReadCloser, error) { return os.Open(src) },
	}, nil
}

func (b *builder) writeArchive(ctx context.Context, archive string, m *bundle.Manifest, items []bundle.Item, payload int64, old []string) (int64, []string, error) {
	p := b.opts.Progress("write "+filepath.Base(archive), payload)
	defer p.Done()
	wopts := bundle.WriteOptions{Key: b.opts.Key, Progress: p.Add}
	if b.opts.SplitSize > 0 {
		pw, err := parts.NewWriter(archive, b.opts.SplitSize)
		if err != nil {
			return 0, nil, fmt.Errorf("write bundle: %w", err)
		}
		cw := &countingWriter{w: pw}
		if err := bundle.Write(ctx, cw, m, items, wopts); err != nil {
			pw.Abort()
			return 0, nil, fmt.Errorf("write bundle: %w", err)
		}
		removeAll(old)
		if err := pw.Close(); err != nil {
			pw.Abort()
			return 0, nil, fmt.Errorf("write bundle: %w", err)
		}
		return cw.n, pw.Parts(), nil
	}
	tmp := archive + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, nil, fmt.Errorf("write bundle: %w", err)
	}
	cw := &countingWriter{w: f}
	err = bundle.Write(ctx, cw, m, items, wopts)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		removeAll(old)
		err = os.Rename(tmp, archive)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, nil, fmt.Errorf("write bundle %s: %w", archive, err)
	}
	return cw.n, nil, nil
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

// existingOutputs lists an archive and its parts that already exist.
func existingOutputs(archive string) []string {
	var out []string
	if _, err := os.Lstat(archive); err == nil {
		out = append(out, archive)
	}
	ps, _ := filepath.Glob(archive + ".part*")
	sort.Strings(ps)
	return append(out, ps...)
}

func removeAll(ps []string) {
	for _, p := range ps {
		os.Remove(p)
	}
}

// diskFull rewrites an out-of-space error so that it names the directory and what to do.
func diskFull(dir string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		var df *bundle.DiskFullError
		if errors.As(err, &df) {
			return err
		}
		return fmt.Errorf("build bundle: disk full while writing into %s; free some space or choose another -o directory (nothing was kept): %w", dir, err)
	}
	return err
}

func archOfPath(p string) string {
	if parts := strings.Split(p, "/"); len(parts) == 3 && parts[0] == "files" {
		return parts[1]
	}
	return ""
}

// sbom builds the content listing: every image with its per-arch layers, every file and where it came from.
func (b *builder) sbom(m *bundle.Manifest, items []bundle.Item) (bundle.Item, error) {
	type entry struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	doc := struct {
		Name    string         `json:"name"`
		Version string         `json:"version"`
		Created time.Time      `json:"created"`
		Images  []bundle.Image `json:"images"`
		Files   []bundle.File  `json:"files"`
		Entries []entry        `json:"entries"`
	}{Name: m.Name, Version: m.Version, Created: m.Created, Images: m.Images, Files: m.Files}
	for _, it := range items {
		if !strings.HasPrefix(it.Path, "oci/blobs/") {
			doc.Entries = append(doc.Entries, entry{it.Path, it.Size, it.SHA256})
		}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return bundle.Item{}, fmt.Errorf("encode sbom: %w", err)
	}
	p := filepath.Join(b.stage, "sbom.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return bundle.Item{}, fmt.Errorf("write sbom: %w", err)
	}
	return fileItem(p, "sbom.json", 0o644, "")
}
