package seed

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
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/internal/stream"
)

// store is a distribution filesystem storage root being seeded, with this run's private temp directory.
type store struct {
	root string // the driver's rootdirectory
	v2   string // root/docker/registry/v2
	tmp  string // root/.wtctl-seed-*, removed by close
}

// linkFile hard-links a layout blob into the store; tests swap it out.
var linkFile = os.Link

func openStore(root string) (*store, error) {
	if root == "" {
		return nil, errors.New("no storage root given")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	v2 := filepath.Join(abs, "docker", "registry", "v2")
	if err := os.MkdirAll(v2, 0o755); err != nil {
		return nil, diskFull(abs, err)
	}
	tmp, err := os.MkdirTemp(abs, ".wtctl-seed-")
	if err != nil {
		return nil, diskFull(abs, err)
	}
	return &store{root: abs, v2: v2, tmp: tmp}, nil
}

func (s *store) close() { os.RemoveAll(s.tmp) }

func (s *store) blobPath(h v1.Hash) string {
	return filepath.Join(s.v2, "blobs", h.Algorithm, h.Hex[:2], h.Hex, "data")
}

func (s *store) repoPath(repo string, elem ...string) string {
	return filepath.Join(append([]string{s.v2, "repositories", filepath.FromSlash(repo)}, elem...)...)
}

// has reports whether the blob's data file exists with the given size. With verify it also hashes it.
func (s *store) has(ctx context.Context, d v1.Descriptor, verify bool) (bool, error) {
	fi, err := os.Stat(s.blobPath(d.Digest))
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != d.Size {
		return false, nil
	}
	if !verify {
		return true, nil
	}
	f, err := os.Open(s.blobPath(d.Digest))
	if err != nil {
		return false, nil
	}
	defer f.Close()
	h := sha256.New()
	n, err := stream.Copy(ctx, h, f, nil, nil)
	if err != nil {
		return false, err
	}
	return checkDigest(h, n, d) == nil, nil
}

// tempFile reserves a unique name in the run's temp directory.
func (s *store) tempFile() (*os.File, error) {
	f, err := os.CreateTemp(s.tmp, "blob-")
	if err != nil {
		return nil, diskFull(s.root, err)
	}
	return f, nil
}

// install renames a complete, verified temp file into the blob store.
func (s *store) install(tmp string, h v1.Hash) error {
	dst := s.blobPath(h)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return diskFull(s.root, err)
	}
	// The registry only reads blobs. A hard-linked blob shares its mode with the source layout's file, so leave a
	// readable one alone rather than change the source's mode behind its back.
	if st, err := os.Stat(tmp); err != nil {
		return err
	} else if st.Mode().Perm()&0o444 != 0o444 {
		if err := os.Chmod(tmp, 0o644); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return diskFull(s.root, err)
	}
	return nil
}

// putFile puts the layout blob src into the store: a hard link when possible, else a copy. Either way the content
// is hashed at its temporary name before it is renamed into place. It reports whether it linked.
func (s *store) putFile(ctx context.Context, src string, d v1.Descriptor, report func(int64)) (linked bool, err error) {
	if d.Digest.Algorithm != "sha256" {
		return false, fmt.Errorf("blob %s: only sha256 digests are supported", d.Digest)
	}
	tmp := filepath.Join(s.tmp, "blob-"+d.Digest.Hex) // one writer per digest within a run
	defer os.Remove(tmp)                              // a no-op after the rename
	if linkFile(src, tmp) == nil {
		if err := verifyFile(ctx, tmp, d, report); err != nil {
			return false, fmt.Errorf("source %s: %w", src, err)
		}
		return true, s.install(tmp, d.Digest)
	}
	in, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer in.Close()
	return false, s.putStream(ctx, in, d, func(w io.Writer) (hash.Hash, io.Writer) {
		h := sha256.New()
		return h, io.MultiWriter(w, h)
	}, report, src)
}

// putStream writes r into a temp file and renames it into place once it is complete and verified. wrap returns
// the hash to check (nil: the source verifies itself, as the bundle reader does by failing at EOF) and the writer
// to copy into.
func (s *store) putStream(ctx context.Context, r io.Reader, d v1.Descriptor, wrap func(io.Writer) (hash.Hash, io.Writer), report func(int64), what string) error {
	f, err := s.tempFile()
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	h, w := wrap(f)
	n, err := stream.Copy(ctx, w, io.LimitReader(r, d.Size+1), nil, report)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write blob %s from %s: %w", d.Digest, what, diskFull(s.root, err))
	}
	if h != nil {
		if err := checkDigest(h, n, d); err != nil {
			return fmt.Errorf("source %s: %w", what, err)
		}
	} else if n != d.Size {
		return fmt.Errorf("source %s: %w", what, &images.DigestError{Expected: d.Digest, Actual: d.Digest, ExpectedSize: d.Size, ActualSize: n})
	}
	return s.install(tmp, d.Digest)
}

// writeLink makes path hold "sha256:<hex>", atomically, unless it already does. It reports whether it wrote.
func (s *store) writeLink(path string, h v1.Hash) (bool, error) {
	want := []byte(h.String())
	if got, err := os.ReadFile(path); err == nil && bytes.Equal(got, want) {
		return false, nil
	}
	f, err := os.CreateTemp(s.tmp, "link-")
	if err != nil {
		return false, diskFull(s.root, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(want)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o755)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return false, fmt.Errorf("write link %s: %w", path, diskFull(s.root, err))
	}
	return true, nil
}

// sync flushes the store's filesystem, so that links written afterwards never point at lost data.
func (s *store) sync() error {
	f, err := os.Open(s.root)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", s.root, diskFull(s.root, err))
	}
	return nil
}

// readBlob reads a small blob (a manifest or index) back from the store, bounded by its descriptor's size.
func (s *store) readBlob(d v1.Descriptor) ([]byte, error) {
	return readVerified(s.blobPath(d.Digest), d)
}

func verifyFile(ctx context.Context, p string, d v1.Descriptor, report func(int64)) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := stream.Copy(ctx, h, io.LimitReader(f, d.Size+1), nil, report)
	if err != nil {
		return err
	}
	return checkDigest(h, n, d)
}

// readVerified reads a file of at most maxManifest bytes and checks it against d.
func readVerified(p string, d v1.Descriptor) ([]byte, error) {
	if d.Size > maxManifest || d.Size < 0 {
		return nil, fmt.Errorf("manifest %s: size %d is outside 0..%d", d.Digest, d.Size, maxManifest)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, d.Size+1))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if err := checkSum(sum[:], int64(len(b)), d); err != nil {
		return nil, err
	}
	return b, nil
}

func checkDigest(h hash.Hash, n int64, d v1.Descriptor) error { return checkSum(h.Sum(nil), n, d) }

func checkSum(sum []byte, n int64, d v1.Descriptor) error {
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum)}
	if got != d.Digest || n != d.Size {
		return &images.DigestError{Expected: d.Digest, Actual: got, ExpectedSize: d.Size, ActualSize: n}
	}
	return nil
}

// DiskFullError says that the storage root ran out of space (ENOSPC stays in the chain). Nothing half-written was
// made visible.
type DiskFullError struct {
	Root string
	Err  error
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("disk full in registry storage %s; free some space and seed again (no partial image was made visible): %v", e.Root, e.Err)
}

func (e *DiskFullError) Unwrap() error { return e.Err }

// diskFull turns an out-of-space error into a *DiskFullError, once.
func diskFull(root string, err error) error {
	var df *DiskFullError
	if errors.Is(err, syscall.ENOSPC) && !errors.As(err, &df) {
		return &DiskFullError{Root: root, Err: err}
	}
	return err
}
