package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
	"github.com/wutong-paas/wutong-offline/internal/progress"
	"github.com/wutong-paas/wutong-offline/internal/stream"
)

// ExtractResult tells what Extract did.
type ExtractResult struct {
	Dir         string // the final directory
	Entries     int    // payload entries written
	Bytes       int64  // payload bytes written
	AlreadyDone bool   // Dir already held this exact archive; nothing was written
}

// DiskFullError says that a target file system has too little space. It names the directory and both sizes.
type DiskFullError struct {
	Dir  string
	Need int64
	Free int64
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("not enough space in %s: need %s, %s free; free some space or choose another directory", e.Dir, progress.Bytes(e.Need), progress.Bytes(e.Free))
}

// Extract writes every entry of r into dest while verifying it. Everything is written into a temporary sibling
// directory, which is renamed to dest only after the whole archive has been verified; on any error the temporary
// directory is removed and dest is untouched. dest must not exist, or be empty. If dest already holds an extraction
// of this exact manifest, Extract does nothing. A temporary directory left by an interrupted run is removed first.
// The manifest and signature are written into dest too, so the extracted tree can be checked later.
func Extract(ctx context.Context, r *Reader, dest string) (*ExtractResult, error) {
	dest, err := filepath.Abs(dest)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	res := &ExtractResult{Dir: dest}
	if done, err := alreadyExtracted(dest, r.ManifestBytes); err != nil {
		return nil, err
	} else if done {
		res.AlreadyDone = true
		return res, nil
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	if err := CheckFreeSpace(parent, r.Manifest.PayloadSize()+int64(len(r.ManifestBytes))); err != nil {
		return nil, err
	}
	tmp := filepath.Join(parent, "."+filepath.Base(dest)+".wtctl-extract")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("extract: remove leftover %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	if err := extractInto(ctx, r, tmp, res); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := os.Remove(dest); err != nil && !errors.Is(err, fs.ErrNotExist) {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("extract: %w", err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("extract: move into place: %w", err)
	}
	atomicfile.SyncDir(parent)
	return res, nil
}

// alreadyExtracted reports whether dest holds an extraction of manifest, and refuses a dest that holds something else.
func alreadyExtracted(dest string, manifest []byte) (bool, error) {
	ents, err := os.ReadDir(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("extract: %w", err)
	}
	if len(ents) == 0 {
		return false, nil
	}
	if have, err := os.ReadFile(filepath.Join(dest, ManifestName)); err == nil && bytes.Equal(have, manifest) {
		return true, nil
	}
	return false, fmt.Errorf("extract: %s exists and is not empty; choose a new directory, or remove it first", dest)
}

func extractInto(ctx context.Context, r *Reader, dir string, res *ExtractResult) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer root.Close()
	if err := root.WriteFile(ManifestName, r.ManifestBytes, 0o644); err != nil {
		return writeError(dir, ManifestName, err)
	}
	if err := root.WriteFile(SignatureName, r.SignatureBytes, 0o644); err != nil {
		return writeError(dir, SignatureName, err)
	}
	buf := make([]byte, copyBufSize)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		e, rd, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if d := path.Dir(e.Path); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return writeError(dir, e.Path, err)
			}
		}
		if e.IsSymlink() {
			if err := root.Symlink(e.Target, e.Path); err != nil {
				return writeError(dir, e.Path, err)
			}
			res.Entries++
			continue
		}
		f, err := root.OpenFile(e.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fs.FileMode(e.Mode))
		if err != nil {
			return writeError(dir, e.Path, err)
		}
		n, err := stream.Copy(ctx, f, rd, buf, nil)
		res.Bytes += n
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			var ie *IntegrityError
			if errors.As(err, &ie) || errors.Is(err, context.Canceled) {
				return err
			}
			return writeError(dir, e.Path, err)
		}
		if err := root.Chmod(e.Path, fs.FileMode(e.Mode)); err != nil {
			return writeError(dir, e.Path, err)
		}
		res.Entries++
	}
}

func writeError(dir, entry string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		free, _ := freeSpace(dir)
		return fmt.Errorf("extract %s: disk full in %s (%s free): %w", entry, dir, progress.Bytes(free), err)
	}
	return fmt.Errorf("extract %s: %w", entry, err)
}

// CheckFreeSpace fails with a *DiskFullError when dir's file system has fewer than need bytes available.
func CheckFreeSpace(dir string, need int64) error {
	free, err := freeSpace(dir)
	if err != nil {
		return nil // unknown: the write itself will tell
	}
	if free < need {
		return &DiskFullError{Dir: dir, Need: need, Free: free}
	}
	return nil
}

func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
