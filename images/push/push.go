package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
)

// FromLayout pushes every image of the OCI image layout in layoutDir (each index.json entry, named by its
// org.opencontainers.image.ref.name annotation) to opts.Target under opts.MapRef(name). All blobs go first, then the
// manifests, children before their index, so that a tag appears only when everything it points to is there.
func FromLayout(ctx context.Context, layoutDir string, opts Options) (*Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	res, err := fromLayout(ctx, layoutDir, opts)
	if err != nil {
		return nil, fmt.Errorf("push %s to %s: %w", layoutDir, opts.Target, authError(err, opts))
	}
	return res, nil
}

func fromLayout(ctx context.Context, layoutDir string, opts Options) (*Result, error) {
	l, err := images.OpenLayout(layoutDir)
	if err != nil {
		return nil, err
	}
	entries, err := l.Images()
	if err != nil {
		return nil, err
	}
	root, err := layout.Path(layoutDir).ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout: %w", err)
	}
	p := &plan{blobSeen: map[string]bool{}}
	for _, e := range entries {
		if err := p.addImage(root, e, opts); err != nil {
			return nil, err
		}
	}
	base, err := opts.baseTransport()
	if err != nil {
		return nil, err
	}
	ct := &countingTransport{inner: base, https: !opts.InsecureHTTP}
	pusher, err := remote.NewPusher(append(opts.remoteOptions(ct), remote.WithContext(ctx))...)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, b := range p.blobs {
		total += b.size
	}
	if opts.Planned != nil {
		opts.Planned(total)
	}
	log := logctx.From(ctx)
	log.Info("pushing", "target", opts.Target, "images", len(p.images), "blobs", len(p.blobs), "bytes", total)
	prog := &progress{fn: opts.Progress}
	sent, err := pushBlobs(ctx, pusher, p.blobs, opts.Concurrency, prog)
	if err != nil {
		return nil, err
	}
	res := &Result{BytesUploaded: sent}
	for _, img := range p.images {
		for _, m := range img.manifests {
			if err := pusher.Put(ctx, m.ref, m.t); err != nil {
				return nil, fmt.Errorf("write manifest %s: %w", m.ref, err)
			}
		}
		log.Info("pushed", "image", img.Name, "target", img.Target, "digest", img.Digest)
		res.Images = append(res.Images, img.PushedImage)
	}
	res.BlobsUploaded, res.BlobsSkipped, res.BlobsMounted = int(ct.uploaded.Load()), int(ct.skipped.Load()), int(ct.mounted.Load())
	return res, nil
}

// Tag points the tag of each image's Target at its Digest. The image must be in the registry already, e.g. from
// FromLayout with Untagged: only its manifest is read and written again under the tag. Targets without a tag are
// skipped.
func Tag(ctx context.Context, imgs []PushedImage, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	ropts, err := opts.Remote()
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	ropts = append(ropts, remote.WithContext(ctx))
	var nopts []name.Option
	if opts.InsecureHTTP {
		nopts = append(nopts, name.Insecure)
	}
	for _, img := range imgs {
		ref, err := name.ParseReference(img.Target, nopts...)
		if err != nil {
			return fmt.Errorf("tag %s: %w", img.Target, err)
		}
		tag, ok := ref.(name.Tag)
		if !ok {
			if t := tagOf(img.Target); t != "" {
				tag, ok = ref.Context().Tag(t), true
			}
		}
		if !ok {
			continue
		}
		desc, err := remote.Get(ref.Context().Digest(img.Digest), ropts...)
		if err != nil {
			return fmt.Errorf("tag %s: read %s: %w", img.Target, img.Digest, authError(err, opts))
		}
		if err := remote.Put(tag, desc, ropts...); err != nil {
			return fmt.Errorf("tag %s: %w", img.Target, authError(err, opts))
		}
	}
	return nil
}

// authError turns a registry's 401 into an *AuthError.
func authError(err error, opts Options) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusUnauthorized {
		return &AuthError{Target: opts.Target, Username: opts.Username, Err: err}
	}
	return err
}

// plan is everything to write: blobs per repository, then each image's manifests in order.
type plan struct {
	blobs    []blob
	blobSeen map[string]bool // repository@digest
	images   []plannedImage
}

type blob struct {
	repo  name.Repository
	layer v1.Layer
	hash  v1.Hash
	size  int64
}

type plannedImage struct {
	PushedImage
	manifests []manifest // children first, the tagged one last
}

type manifest struct {
	ref name.Reference
	t   remote.Taggable
}

func (p *plan) addImage(root v1.ImageIndex, e images.LayoutImage, opts Options) error {
	if e.Name == "" {
		return fmt.Errorf("image %s in the layout has no %s annotation", e.Descriptor.Digest, images.AnnotationRefName)
	}
	target, err := opts.MapRef(e.Name)
	if err != nil {
		return err
	}
	var nopts []name.Option
	if opts.InsecureHTTP {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(target, nopts...)
	if err != nil {
		return fmt.Errorf("image %s: target %q: %w", e.Name, target, err)
	}
	repo, d := ref.Context(), e.Descriptor.Digest
	var refs []name.Reference
	switch r := ref.(type) {
	case name.Digest:
		if r.DigestStr() != d.String() {
			return fmt.Errorf("image %s: target %s names digest %s, but the layout holds %s", e.Name, target, r.DigestStr(), d)
		}
		refs = append(refs, repo.Digest(d.String()))
		if tag := tagOf(target); tag != "" && !opts.Untagged {
			refs = append(refs, repo.Tag(tag))
		}
	case name.Tag:
		if opts.Untagged {
			refs = append(refs, repo.Digest(d.String()))
		} else {
			refs = append(refs, ref)
		}
	default:
		refs = append(refs, ref)
	}
	img := plannedImage{PushedImage: PushedImage{Name: e.Name, Target: target, Digest: d.String()}}
	var t remote.Taggable
	switch {
	case e.Descriptor.MediaType.IsIndex():
		idx, err := root.ImageIndex(d)
		if err != nil {
			return fmt.Errorf("image %s: %w", e.Name, err)
		}
		if err := p.addIndex(repo, idx, &img); err != nil {
			return fmt.Errorf("image %s: %w", e.Name, err)
		}
		t = idx
	case e.Descriptor.MediaType.IsImage():
		im, err := root.Image(d)
		if err != nil {
			return fmt.Errorf("image %s: %w", e.Name, err)
		}
		if err := p.addBlobs(repo, im); err != nil {
			return fmt.Errorf("image %s: %w", e.Name, err)
		}
		t = im
	default:
		return fmt.Errorf("image %s: unsupported media type %s", e.Name, e.Descriptor.MediaType)
	}
	for _, r := range refs {
		img.manifests = append(img.manifests, manifest{ref: r, t: t})
	}
	p.images = append(p.images, img)
	return nil
}

// addIndex plans idx's children (recursively) and their blobs; their manifests go by digest.
func (p *plan) addIndex(repo name.Repository, idx v1.ImageIndex, img *plannedImage) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		var t remote.Taggable
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if err := p.addIndex(repo, child, img); err != nil {
				return err
			}
			t = child
		case d.MediaType.IsImage():
			child, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			if err := p.addBlobs(repo, child); err != nil {
				return err
			}
			t = child
		default:
			return fmt.Errorf("manifest %s: unsupported media type %s", d.Digest, d.MediaType)
		}
		img.manifests = append(img.manifests, manifest{ref: repo.Digest(d.Digest.String()), t: t})
	}
	return nil
}

// addBlobs plans the config and the distributable layers of img, each once per repository.
func (p *plan) addBlobs(repo name.Repository, img v1.Image) error {
	cl, err := partial.ConfigLayer(img)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range append([]v1.Layer{cl}, layers...) {
		mt, err := l.MediaType()
		if err != nil {
			return err
		}
		if !mt.IsDistributable() {
			continue
		}
		h, err := l.Digest()
		if err != nil {
			return err
		}
		size, err := l.Size()
		if err != nil {
			return err
		}
		key := repo.String() + "@" + h.String()
		if p.blobSeen[key] {
			continue
		}
		p.blobSeen[key] = true
		p.blobs = append(p.blobs, blob{repo: repo, layer: l, hash: h, size: size})
	}
	return nil
}

// tagOf is the tag written in a NAME:TAG@DIGEST reference, if any.
func tagOf(s string) string {
	base, _, _ := strings.Cut(s, "@")
	if i := strings.LastIndexByte(base, ':'); i > strings.LastIndexByte(base, '/') {
		return base[i+1:]
	}
	return ""
}

// pushBlobs uploads blobs with n at a time. The first upload of a digest owns it; a later one for another
// repository waits for it and then mounts the blob from there (falling back to an upload if the registry
// declines). A waiter only ever waits on an upload that is already running, so this cannot deadlock.
func pushBlobs(ctx context.Context, pusher *remote.Pusher, blobs []blob, n int, prog *progress) (int64, error) {
	type owner struct {
		repo name.Repository
		done chan struct{}
		ok   bool
	}
	var (
		mu     sync.Mutex
		owners = map[v1.Hash]*owner{}
		sent   atomic.Int64
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, b := range blobs {
		g.Go(func() error {
			mu.Lock()
			o, mine := owners[b.hash], false
			if o == nil {
				o, mine = &owner{repo: b.repo, done: make(chan struct{})}, true
				owners[b.hash] = o
			}
			mu.Unlock()
			cl := &countedLayer{Layer: b.layer, size: b.size, prog: prog, sent: &sent}
			var l v1.Layer = cl
			if !mine {
				select {
				case <-o.done:
				case <-gctx.Done():
					return gctx.Err()
				}
				if o.ok {
					l = &remote.MountableLayer{Layer: cl, Reference: o.repo.Digest(b.hash.String())}
				}
			}
			err := pusher.Upload(gctx, b.repo, l)
			if mine {
				o.ok = err == nil
				close(o.done)
			}
			if err != nil {
				return fmt.Errorf("upload blob %s to %s: %w", b.hash, b.repo, err)
			}
			cl.finish()
			return nil
		})
	}
	err := g.Wait()
	return sent.Load(), err
}

// progress serializes calls to the caller's Progress.
type progress struct {
	mu sync.Mutex
	fn func(int64)
}

func (p *progress) add(n int64) {
	if p.fn == nil || n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn(n)
}

// countedLayer counts the bytes read from its blob as sent, and reports progress up to its size exactly once,
// however often a retry re-reads it.
type countedLayer struct {
	v1.Layer
	size     int64
	prog     *progress
	sent     *atomic.Int64
	reported atomic.Int64
}

func (c *countedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := c.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: rc, c: c}, nil
}

func (c *countedLayer) report(n int64) {
	for {
		r := c.reported.Load()
		add := min(n, c.size-r)
		if add <= 0 {
			return
		}
		if c.reported.CompareAndSwap(r, r+add) {
			c.prog.add(add)
			return
		}
	}
}

// finish reports what is left of the blob: all of it when it was already there or mounted.
func (c *countedLayer) finish() { c.report(c.size) }

type countingReader struct {
	io.ReadCloser
	c *countedLayer
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.c.sent.Add(int64(n))
		r.c.report(int64(n))
	}
	return n, err
}

// countingTransport makes every request HTTPS unless plain HTTP was asked for, and counts the blob requests'
// outcomes as the registry reports them: HEAD 200 (already there), POST ?mount= 201 (mounted), PUT 201 (uploaded).
type countingTransport struct {
	inner                      http.RoundTripper
	https                      bool
	uploaded, skipped, mounted atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.https && req.URL.Scheme == "http" {
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	}
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	p := req.URL.Path
	switch {
	case req.Method == http.MethodHead && strings.Contains(p, "/blobs/sha256:") && resp.StatusCode == http.StatusOK:
		t.skipped.Add(1)
	case req.Method == http.MethodPost && strings.HasSuffix(p, "/blobs/uploads/") && req.URL.Query().Get("mount") != "" &&
		req.URL.Query().Get("from") != "" && resp.StatusCode == http.StatusCreated:
		t.mounted.Add(1)
	case req.Method == http.MethodPut && strings.Contains(p, "/blobs/uploads/") && resp.StatusCode == http.StatusCreated:
		t.uploaded.Add(1)
	}
	return resp, nil
}
