package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
)

// Options say where to seed and how to name what is seeded.
type Options struct {
	// Root is the registry's filesystem storage root (the filesystem driver's rootdirectory). Required; created
	// when missing.
	Root string
	// MapName maps an image name from the layout or bundle (its org.opencontainers.image.ref.name annotation, e.g.
	// registry.k8s.io/pause:3.10) to the repository and tag to create. Default: DefaultMapName, the shared mapping rule
	// (repository "registry.k8s.io/pause", tag "3.10"). The result must be a valid repository name and tag.
	MapName func(name string) (repo, tag string, err error)
	// Progress, if set, is called with the number of blob bytes just handled: copied, hashed or found present.
	// FromLayout reports every unique blob's size once; FromBundle reports the oci/blobs entries.
	Progress func(n int64)
	// Jobs is how many blobs FromLayout copies or hashes at once. Default: GOMAXPROCS, at most 4.
	Jobs int
	// VerifyExisting re-hashes blob data already in the store instead of trusting it by size, and replaces it when
	// it is wrong. Default: false (see the package doc).
	VerifyExisting bool
}

// Stats count what a seed did. A second identical seed has Blobs == BlobsSkipped and BytesWritten == 0.
type Stats struct {
	Images       int   `json:"images"`       // images whose tag now points at their content
	Blobs        int   `json:"blobs"`        // unique blobs (layers, configs, manifests, indexes) of those images
	BlobsSkipped int   `json:"blobsSkipped"` // of Blobs, already in the store
	BlobsLinked  int   `json:"blobsLinked"`  // of Blobs, added as hard links of the source instead of copies
	BytesWritten int64 `json:"bytesWritten"` // blob bytes added to the store (copied or hard-linked)
	BytesSkipped int64 `json:"bytesSkipped"` // blob bytes already in the store
	Links        int   `json:"links"`        // repository link files written or changed
}

// stats is Stats behind a lock, for parallel blob jobs.
type stats struct {
	mu sync.Mutex
	s  Stats
}

func (st *stats) blob(size int64, skipped, linked bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Blobs++
	switch {
	case skipped:
		st.s.BlobsSkipped++
		st.s.BytesSkipped += size
	default:
		st.s.BytesWritten += size
		if linked {
			st.s.BlobsLinked++
		}
	}
}

func (st *stats) result() *Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.s
	return &s
}

// FromLayout seeds every image named in an OCI layout's index.json (annotation org.opencontainers.image.ref.name).
// It reads and checks every manifest before it writes anything, and checks every blob's digest itself before it
// becomes visible. Links and tags are written only after all blobs of the run are in place.
func FromLayout(ctx context.Context, layoutDir string, opts Options) (*Stats, error) {
	st, err := fromLayout(ctx, layoutDir, opts)
	if err != nil {
		return st, fmt.Errorf("seed %s from %s: %w", opts.Root, layoutDir, err)
	}
	return st, nil
}

func fromLayout(ctx context.Context, layoutDir string, opts Options) (*Stats, error) {
	var st stats
	if _, err := os.Stat(filepath.Join(layoutDir, "oci-layout")); err != nil {
		return st.result(), fmt.Errorf("not an OCI layout: %w", err)
	}
	idx, err := readIndexJSON(filepath.Join(layoutDir, "index.json"))
	if err != nil {
		return st.result(), err
	}
	blobPath := func(d v1.Descriptor) string {
		return filepath.Join(layoutDir, "blobs", d.Digest.Algorithm, d.Digest.Hex)
	}
	imgs, err := planImages(idx, opts.MapName, func(d v1.Descriptor) ([]byte, error) { return readVerified(blobPath(d), d) })
	if err != nil {
		return st.result(), err
	}
	s, err := openStore(opts.Root)
	if err != nil {
		return st.result(), err
	}
	defer s.close()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs(opts.Jobs))
	for _, d := range uniqueBlobs(imgs) {
		g.Go(func() error {
			ok, err := s.has(gctx, d, opts.VerifyExisting)
			if err != nil {
				return err
			}
			if ok {
				report(opts.Progress, d.Size)
				st.blob(d.Size, true, false)
				return nil
			}
			linked, err := s.putFile(gctx, blobPath(d), d, opts.Progress)
			if err != nil {
				return err
			}
			st.blob(d.Size, false, linked)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return st.result(), err
	}
	if err := linkAll(ctx, s, imgs, &st); err != nil {
		return st.result(), err
	}
	return st.result(), nil
}

// FromBundle streams a bundle (bundle.Open with ropts: the signature and every entry are verified by the bundle
// reader) and seeds its oci/ layout without extracting the bundle to disk first. Blob entries go straight into the
// blob store, each renamed into place only after the reader confirmed its sha256 at the entry's end; links and tags
// are written only after the whole bundle verified.
func FromBundle(ctx context.Context, bundlePath string, ropts bundle.ReadOptions, opts Options) (*Stats, error) {
	st, err := fromBundle(ctx, bundlePath, ropts, opts)
	if err != nil {
		return st, fmt.Errorf("seed %s from bundle %s: %w", opts.Root, bundlePath, err)
	}
	return st, nil
}

func fromBundle(ctx context.Context, bundlePath string, ropts bundle.ReadOptions, opts Options) (*Stats, error) {
	var st stats
	r, _, err := bundle.Open(bundlePath, ropts)
	if err != nil {
		return st.result(), err
	}
	defer r.Close()
	s, err := openStore(opts.Root)
	if err != nil {
		return st.result(), err
	}
	defer s.close()

	var idx *v1.IndexManifest
	seen := map[v1.Hash]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return st.result(), err
		}
		e, er, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st.result(), err
		}
		switch {
		case e.Path == "oci/index.json":
			if idx, err = decodeIndexJSON(er, e.Size); err != nil {
				return st.result(), fmt.Errorf("entry %s: %w", e.Path, err)
			}
		case strings.HasPrefix(e.Path, "oci/blobs/"):
			d, err := entryDescriptor(e)
			if err != nil {
				return st.result(), err
			}
			seen[d.Digest] = true
			ok, err := s.has(ctx, d, opts.VerifyExisting)
			if err != nil {
				return st.result(), err
			}
			if ok {
				report(opts.Progress, d.Size)
				st.blob(d.Size, true, false)
				continue // Next drains and verifies it
			}
			if err := s.putStream(ctx, er, d, selfVerified, opts.Progress, "bundle entry "+e.Path); err != nil {
				return st.result(), err
			}
			st.blob(d.Size, false, false)
		}
	}
	if idx == nil {
		return st.result(), fmt.Errorf("the bundle has no oci/index.json")
	}
	imgs, err := planImages(idx, opts.MapName, func(d v1.Descriptor) ([]byte, error) {
		if !seen[d.Digest] {
			return nil, fmt.Errorf("blob %s is not in the bundle's oci/ layout", d.Digest)
		}
		return s.readBlob(d)
	})
	if err != nil {
		return st.result(), err
	}
	for _, img := range imgs {
		for _, d := range img.blobs {
			if !seen[d.Digest] {
				return st.result(), fmt.Errorf("image %s: blob %s is not in the bundle's oci/ layout", img.name, d.Digest)
			}
		}
	}
	if err := linkAll(ctx, s, imgs, &st); err != nil {
		return st.result(), err
	}
	return st.result(), nil
}

// selfVerified copies a bundle entry as is: its reader fails at EOF when the content is not what the signed manifest
// says, so no second hash is needed.
func selfVerified(w io.Writer) (hash.Hash, io.Writer) { return nil, w }

// entryDescriptor turns oci/blobs/sha256/<hex> into a descriptor, and checks that the manifest's sha256 for the
// entry is the digest its name claims, so that the reader's check at EOF proves the digest.
func entryDescriptor(e *bundle.Entry) (v1.Descriptor, error) {
	rest := strings.TrimPrefix(e.Path, "oci/blobs/")
	alg, hexs, ok := strings.Cut(rest, "/")
	h, err := v1.NewHash(alg + ":" + hexs)
	if !ok || err != nil || alg != "sha256" {
		return v1.Descriptor{}, fmt.Errorf("entry %s: not a sha256 blob path", e.Path)
	}
	if e.SHA256 != h.Hex {
		return v1.Descriptor{}, fmt.Errorf("entry %s: the bundle manifest gives sha256 %s, not the digest in its name", e.Path, e.SHA256)
	}
	return v1.Descriptor{Digest: h, Size: e.Size}, nil
}

// linkAll syncs the blob data written so far, then links each image: layers and configs, child manifests, the
// index, and the tag last (see the package doc).
func linkAll(ctx context.Context, s *store, imgs []*image, st *stats) error {
	if err := s.sync(); err != nil {
		return err
	}
	log := logctx.From(ctx)
	for _, img := range imgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := linkImage(s, img)
		st.mu.Lock()
		st.s.Links += n
		st.mu.Unlock()
		if err != nil {
			return fmt.Errorf("image %s: %w", img.name, err)
		}
		st.mu.Lock()
		st.s.Images++
		st.mu.Unlock()
		log.Info("seeded image", "image", img.name, "repository", img.repo, "tag", img.tag, "digest", img.top.Digest.String(), "links", n)
	}
	return s.sync()
}

func linkImage(s *store, img *image) (int, error) {
	var paths []string
	var targets []v1.Hash
	add := func(h v1.Hash, elem ...string) {
		paths = append(paths, s.repoPath(img.repo, elem...))
		targets = append(targets, h)
	}
	for _, d := range img.blobs {
		add(d.Digest, "_layers", d.Digest.Algorithm, d.Digest.Hex, "link")
	}
	for _, d := range img.manifests { // children first, the top manifest last
		add(d.Digest, "_manifests", "revisions", d.Digest.Algorithm, d.Digest.Hex, "link")
	}
	top := img.top.Digest
	add(top, "_manifests", "tags", img.tag, "index", top.Algorithm, top.Hex, "link")
	add(top, "_manifests", "tags", img.tag, "current", "link")
	n := 0
	for i, p := range paths {
		wrote, err := s.writeLink(p, targets[i])
		if err != nil {
			return n, err
		}
		if wrote {
			n++
		}
	}
	return n, nil
}

func readIndexJSON(p string) (*v1.IndexManifest, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	idx, err := decodeIndexJSON(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return idx, nil
}

func decodeIndexJSON(r io.Reader, size int64) (*v1.IndexManifest, error) {
	if size > maxIndexJSON {
		return nil, fmt.Errorf("index.json is %d bytes, more than %d", size, maxIndexJSON)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxIndexJSON+1))
	if err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("invalid index.json: %w", err)
	}
	return &idx, nil
}

func jobs(n int) int {
	if n > 0 {
		return n
	}
	return min(runtime.GOMAXPROCS(0), 4)
}

func report(f func(int64), n int64) {
	if f != nil {
		f(n)
	}
}
