package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
)

// httpClient fetches url sources. It has no overall timeout (files can be large) but bounds the waits that hang.
var httpClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	TLSHandshakeTimeout:   30 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	IdleConnTimeout:       90 * time.Second,
}}

// stageFiles resolves every file source into an item: local files are read in place, downloads are staged.
func (b *builder) stageFiles(ctx context.Context, m *bundle.Manifest) ([]bundle.Item, error) {
	var items []bundle.Item
	for i := range b.spec.Files {
		f := &b.spec.Files[i]
		entry := "files/" + f.Arch + "/" + f.Name
		var mode uint32
		if f.Mode != "" {
			v, _ := strconv.ParseUint(f.Mode, 8, 32)
			mode = uint32(v)
		}
		var (
			it     bundle.Item
			err    error
			source string
		)
		switch {
		case f.Path != "":
			source = f.Path
			it, err = fileItem(b.spec.local(f.Path), entry, mode, "")
		case f.URL != "":
			source = f.URL
			it, err = b.download(ctx, f.URL, f.SHA256, entry, mode)
		case f.OCI != "":
			source = "oci://" + f.OCI
			it, err = b.pullArtifact(ctx, f.OCI, f.Name, entry, mode)
		}
		if err != nil {
			return nil, fmt.Errorf("files[%d] %s: %w", i, entry, err)
		}
		logctx.From(ctx).Info("file", "path", entry, "sha256", it.SHA256, "source", source)
		m.Files = append(m.Files, bundle.File{Name: f.Name, Arch: f.Arch, Path: entry, Source: source})
		items = append(items, it)
	}
	return items, nil
}

func (b *builder) stagePath() (*os.File, error) {
	dir := filepath.Join(b.stage, "downloads")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return os.CreateTemp(dir, "file-")
}

// download fetches url into the stage and checks its sha256 before it is used.
func (b *builder) download(ctx context.Context, url, want, entry string, mode uint32) (bundle.Item, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return bundle.Item{}, fmt.Errorf("download %s: %w", url, err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return bundle.Item{}, fmt.Errorf("download %s: unreachable: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return bundle.Item{}, fmt.Errorf("download %s: server answered %s", url, resp.Status)
	}
	p := b.opts.Progress("download "+filepath.Base(url), resp.ContentLength)
	defer p.Done()
	return b.saveVerified(resp.Body, want, entry, mode, "download "+url, p.Add)
}

// saveVerified writes r into the stage, checks its sha256 and returns it as an item.
func (b *builder) saveVerified(r io.Reader, want, entry string, mode uint32, what string, progress func(int64)) (bundle.Item, error) {
	f, err := b.stagePath()
	if err != nil {
		return bundle.Item{}, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h, progressWriter(progress)), r, make([]byte, 1<<20))
	if err != nil {
		return bundle.Item{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := f.Close(); err != nil {
		return bundle.Item{}, fmt.Errorf("%s: %w", what, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		return bundle.Item{}, fmt.Errorf("%s: sha256 mismatch: expected %s, actual %s; check the sha256 in bundle.yaml or the source", what, want, got)
	}
	if mode == 0 {
		mode = 0o644
	}
	path := f.Name()
	return bundle.Item{
		Entry: bundle.Entry{Path: entry, Size: n, SHA256: got, Mode: mode},
		Open:  func() (io.ReadCloser, error) { return os.Open(path) },
	}, nil
}

type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	if p != nil {
		p(int64(len(b)))
	}
	return len(b), nil
}

// pullArtifact fetches an OCI artifact and keeps its one layer, or the layer titled title.
func (b *builder) pullArtifact(ctx context.Context, ref, title, entry string, mode uint32) (bundle.Item, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return bundle.Item{}, fmt.Errorf("parse %s: %w", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return bundle.Item{}, fmt.Errorf("pull artifact %s: %w", ref, err)
	}
	mf, err := img.Manifest()
	if err != nil {
		return bundle.Item{}, fmt.Errorf("pull artifact %s: %w", ref, err)
	}
	var pick *v1.Descriptor
	for i := range mf.Layers {
		if mf.Layers[i].Annotations["org.opencontainers.image.title"] == title {
			pick = &mf.Layers[i]
		}
	}
	if pick == nil && len(mf.Layers) == 1 {
		pick = &mf.Layers[0]
	}
	if pick == nil {
		return bundle.Item{}, fmt.Errorf("pull artifact %s: it has %d layers and none is titled %q; name the file after the layer's org.opencontainers.image.title", ref, len(mf.Layers), title)
	}
	l, err := img.LayerByDigest(pick.Digest)
	if err != nil {
		return bundle.Item{}, fmt.Errorf("pull artifact %s: %w", ref, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return bundle.Item{}, fmt.Errorf("pull artifact %s: %w", ref, err)
	}
	defer rc.Close()
	p := b.opts.Progress("artifact "+ref, pick.Size)
	defer p.Done()
	return b.saveVerified(rc, pick.Digest.Hex, entry, mode, "pull artifact "+ref, p.Add)
}
