package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/internal/stream"
)

// ociPrefix is where a bundle keeps its OCI image layout.
const ociPrefix = "oci/"

// FromBundle pushes the images of a signed bundle (a file, or any of its parts). It streams the whole bundle once,
// checking the signature and every entry, and writes only the oci/ entries into a temporary directory under
// opts.TempDir; nothing is pushed unless the whole bundle checked out. The directory is removed at the end.
// Memory use is bounded by the copy buffers; disk use by the layout's size, checked before anything is written.
func FromBundle(ctx context.Context, bundlePath string, ropts bundle.ReadOptions, opts Options) (*Result, error) {
	if _, err := opts.withDefaults(); err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	r, _, err := bundle.Open(bundlePath, ropts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	tmp, err := os.MkdirTemp(opts.TempDir, "wtctl-push-")
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", bundlePath, err)
	}
	defer os.RemoveAll(tmp)
	if err := unpackLayout(ctx, r, tmp); err != nil {
		return nil, fmt.Errorf("push %s: %w", bundlePath, err)
	}
	return FromLayout(ctx, tmp, opts)
}

// unpackLayout writes r's oci/ entries under dir, reading (and so verifying) every other entry too.
func unpackLayout(ctx context.Context, r *bundle.Reader, dir string) error {
	var need int64
	for _, e := range r.Manifest.Entries {
		if strings.HasPrefix(e.Path, ociPrefix) {
			need += e.Size
		}
	}
	if need == 0 {
		return errors.New("the bundle carries no OCI image layout (no oci/ entries)")
	}
	if err := bundle.CheckFreeSpace(dir, need); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, content, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, ok := strings.CutPrefix(e.Path, ociPrefix)
		if !ok || rel == "" {
			continue // read and checked by the next Next
		}
		if e.IsSymlink() {
			return fmt.Errorf("entry %s: the OCI layout holds a symlink", e.Path)
		}
		if err := root.MkdirAll(path.Dir(rel), 0o755); err != nil {
			return err
		}
		f, err := root.Create(rel)
		if err != nil {
			return err
		}
		_, err = stream.Copy(ctx, f, content, buf, nil)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("entry %s: %w", e.Path, err)
		}
	}
}
