package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/wutong-paas/wutong-offline/internal/stream"
)

// DigestError says that a blob's content does not match its descriptor.
type DigestError struct {
	Expected, Actual         v1.Hash
	ExpectedSize, ActualSize int64 // both 0 when unknown
}

func (e *DigestError) Error() string {
	msg := fmt.Sprintf("blob %s is corrupt: expected digest %s, got %s", e.Expected, e.Expected, e.Actual)
	if e.ExpectedSize != e.ActualSize {
		msg += fmt.Sprintf(" (expected %d bytes, got %d)", e.ExpectedSize, e.ActualSize)
	}
	return msg
}

// layerJobs is how many layers Append copies at once.
const layerJobs = 4 // keep the Append doc in step

// linkFile hardlinks blobs from a source layout; tests swap it out.
var linkFile = os.Link

// Append writes idx, with all its manifests, configs and layers, into the
// layout, then points the index.json entry named name (the full image name,
// e.g. registry.k8s.io/pause:3.10) at it, replacing any older entry of that
// name. It returns the descriptor written.
//
// A blob already in the layout is skipped, so layers shared across images
// and arches are stored once. Every blob is verified against its digest
// before it is renamed into place; nothing partial is left behind. Blobs of
// an index resolved from an OCI layout on the same filesystem are
// hardlinked (and still verified). Up to 4 layers are copied at once.
// Appends to one layout may run concurrently within a process.
//
// progress, if not nil, is called with byte counts as blobs are processed,
// skipped ones included, so that on success the counts add up to
// BlobsSize(ctx, idx). Calls are serialised.
func (l Layout) Append(ctx context.Context, name string, idx v1.ImageIndex, progress func(n int64)) (v1.Descriptor, error) {
	d, err := l.append(ctx, name, idx, progress)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("append image %s to %s: %w", name, l, err)
	}
	return d, nil
}

func (l Layout) append(ctx context.Context, name string, idx v1.ImageIndex, progress func(n int64)) (v1.Descriptor, error) {
	if name == "" {
		return v1.Descriptor{}, fmt.Errorf("image has no name")
	}
	p := &plan{seen: map[v1.Hash]bool{}}
	d, err := p.addIndex(ctx, idx)
	if err != nil {
		return v1.Descriptor{}, err
	}
	var mu sync.Mutex
	report := func(n int64) {
		if progress != nil && n != 0 {
			mu.Lock()
			defer mu.Unlock()
			progress(n)
		}
	}
	if err := os.MkdirAll(l.Path("blobs", "sha256"), 0o755); err != nil {
		return v1.Descriptor{}, err
	}
	var linkDir string
	if r, ok := idx.(*resolvedIndex); ok {
		linkDir = r.layoutBlobs
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(layerJobs)
	for _, job := range p.layers {
		g.Go(func() error { return l.writeLayer(gctx, job, linkDir, report) })
	}
	if err := g.Wait(); err != nil {
		return v1.Descriptor{}, err
	}
	// Configs and manifests after layers, children before parents, so the
	// layout never holds a manifest whose blobs are missing.
	for _, b := range p.small {
		if err := l.writeSmall(b, report); err != nil {
			return v1.Descriptor{}, err
		}
	}
	d.Annotations = map[string]string{AnnotationRefName: name}
	if err := l.setRef(d); err != nil {
		return v1.Descriptor{}, fmt.Errorf("update index.json: %w", err)
	}
	return d, nil
}

// BlobsSize is the total size of the distinct blobs of idx: manifests,
// configs and layers, the sum Append reports through progress.
func BlobsSize(ctx context.Context, idx v1.ImageIndex) (int64, error) {
	p := &plan{seen: map[v1.Hash]bool{}}
	if _, err := p.addIndex(ctx, idx); err != nil {
		return 0, fmt.Errorf("size image blobs: %w", err)
	}
	var n int64
	for _, j := range p.layers {
		n += j.desc.Size
	}
	for _, b := range p.small {
		n += int64(len(b.data))
	}
	return n, nil
}

// plan lists what an index consists of: distinct layers, and configs and
// manifests (already read and verified) in the order they must be written.
type plan struct {
	layers []layerJob
	small  []smallBlob
	seen   map[v1.Hash]bool
}

type layerJob struct {
	desc v1.Descriptor
	img  v1.Image
}

type smallBlob struct {
	digest v1.Hash
	data   []byte
}

func (p *plan) addSmall(h v1.Hash, data []byte) {
	if !p.seen[h] {
		p.seen[h] = true
		p.small = append(p.small, smallBlob{h, data})
	}
}

func (p *plan) addIndex(ctx context.Context, idx v1.ImageIndex) (v1.Descriptor, error) {
	raw, err := idx.RawManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read index manifest: %w", err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	d := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: sha256Hash(raw)}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("parse index manifest %s: %w", d.Digest, err)
	}
	for _, cd := range im.Manifests {
		if err := ctx.Err(); err != nil {
			return v1.Descriptor{}, err
		}
		switch {
		case cd.MediaType.IsIndex():
			child, err := idx.ImageIndex(cd.Digest)
			if err != nil {
				return v1.Descriptor{}, fmt.Errorf("open index %s: %w", cd.Digest, err)
			}
			got, err := p.addIndex(ctx, child)
			if err != nil {
				return v1.Descriptor{}, err
			}
			if got.Digest != cd.Digest {
				return v1.Descriptor{}, &DigestError{Expected: cd.Digest, Actual: got.Digest, ExpectedSize: cd.Size, ActualSize: got.Size}
			}
		case cd.MediaType.IsImage():
			img, err := idx.Image(cd.Digest)
			if err != nil {
				return v1.Descriptor{}, fmt.Errorf("open image %s: %w", cd.Digest, err)
			}
			if err := p.addImage(img, cd); err != nil {
				return v1.Descriptor{}, err
			}
		default:
			return v1.Descriptor{}, fmt.Errorf("manifest %s has unsupported media type %s", cd.Digest, cd.MediaType)
		}
	}
	p.addSmall(d.Digest, raw)
	return d, nil
}

func (p *plan) addImage(img v1.Image, d v1.Descriptor) error {
	raw, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("read image manifest %s: %w", d.Digest, err)
	}
	if err := verifyBytes(raw, d); err != nil {
		return err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("parse image manifest %s: %w", d.Digest, err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("read config %s: %w", m.Config.Digest, err)
	}
	if err := verifyBytes(cfg, m.Config); err != nil {
		return err
	}
	for _, ld := range m.Layers {
		if !p.seen[ld.Digest] {
			p.seen[ld.Digest] = true
			p.layers = append(p.layers, layerJob{desc: ld, img: img})
		}
	}
	p.addSmall(m.Config.Digest, cfg)
	p.addSmall(d.Digest, raw)
	return nil
}

func verifyBytes(b []byte, d v1.Descriptor) error {
	if got := sha256Hash(b); got != d.Digest || int64(len(b)) != d.Size {
		return &DigestError{Expected: d.Digest, Actual: got, ExpectedSize: d.Size, ActualSize: int64(len(b))}
	}
	return nil
}

func sha256Hash(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// present reports whether the layout already holds blob d.
func (l Layout) present(d v1.Descriptor) bool {
	fi, err := os.Stat(l.BlobPath(d.Digest))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == d.Size
}

func (l Layout) writeSmall(b smallBlob, report func(int64)) error {
	d := v1.Descriptor{Digest: b.digest, Size: int64(len(b.data))}
	if !l.present(d) {
		err := l.writeBlob(d, func(w io.Writer) error {
			_, err := w.Write(b.data)
			return err
		})
		if err != nil {
			return fmt.Errorf("write blob %s: %w", d.Digest, err)
		}
	}
	report(d.Size)
	return nil
}

func (l Layout) writeLayer(ctx context.Context, job layerJob, linkDir string, report func(int64)) error {
	d := job.desc
	if d.Digest.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: unsupported digest algorithm", d.Digest)
	}
	if l.present(d) {
		report(d.Size)
		return nil
	}
	if linkDir != "" {
		linked, err := l.linkBlob(ctx, filepath.Join(linkDir, d.Digest.Algorithm, d.Digest.Hex), d, report)
		if linked || err != nil {
			return err
		}
	}
	layer, err := job.img.LayerByDigest(d.Digest)
	if err != nil {
		return fmt.Errorf("open layer %s: %w", d.Digest, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return fmt.Errorf("open layer %s: %w", d.Digest, err)
	}
	defer rc.Close()
	err = l.writeBlob(d, func(w io.Writer) error {
		_, err := stream.Copy(ctx, w, io.LimitReader(rc, d.Size+1), nil, report)
		return err
	})
	var de *DigestError
	if err != nil && !errors.As(err, &de) {
		return fmt.Errorf("copy layer %s: %w", d.Digest, err)
	}
	return err
}

// writeBlob writes blob d through fill into a temp file next to its final
// place, checks size and digest, and renames it into place.
func (l Layout) writeBlob(d v1.Descriptor, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(l.BlobPath(d.Digest)), ".tmp-"+d.Digest.Hex+"-*")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := fill(cw); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := checkDigest(h, cw.n, d); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), l.BlobPath(d.Digest)); err != nil {
		return err
	}
	renamed = true
	return nil
}

// linkBlob hardlinks src into place after hashing it. It returns false,
// with no error, when src is unusable or cannot be linked, so the caller
// copies instead.
func (l Layout) linkBlob(ctx context.Context, src string, d v1.Descriptor, report func(int64)) (bool, error) {
	if fi, err := os.Lstat(src); err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	// Reserve a unique name, then put the link there.
	f, err := os.CreateTemp(filepath.Dir(l.BlobPath(d.Digest)), ".tmp-"+d.Digest.Hex+"-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	f.Close()
	if err := os.Remove(tmp); err != nil {
		return false, err
	}
	if err := linkFile(src, tmp); err != nil {
		return false, nil
	}
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmp)
		}
	}()
	if f, err = os.Open(tmp); err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := stream.Copy(ctx, h, io.LimitReader(f, d.Size+1), nil, report)
	if err != nil {
		return false, fmt.Errorf("read blob %s: %w", src, err)
	}
	if err := checkDigest(h, n, d); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, l.BlobPath(d.Digest)); err != nil {
		return false, err
	}
	renamed = true
	return true, nil
}

func checkDigest(h hash.Hash, n int64, d v1.Descriptor) error {
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	if got != d.Digest || n != d.Size {
		return &DigestError{Expected: d.Digest, Actual: got, ExpectedSize: d.Size, ActualSize: n}
	}
	return nil
}
