package bundle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/wutong-paas/wutong-offline/bundle/parts"
)

// Source describes where an opened archive's bytes come from.
type Source struct {
	Path  string   // what the caller named
	Parts []string // the part files, when the archive is split
	Size  int64    // compressed size of the whole archive
}

// Open opens an archive for streaming: a single file, or a set of parts named by any part's path or by the archive
// path when only its parts exist. Parts are checked for presence, order and identity before the first byte is
// read, and each part's sha256 is checked as it streams. The returned Reader's Close closes the files.
func Open(p string, opts ReadOptions) (*Reader, *Source, error) {
	rc, src, err := openStream(p)
	if err != nil {
		return nil, nil, err
	}
	r, err := NewReader(rc, opts)
	if err != nil {
		rc.Close()
		return nil, src, err
	}
	r.closer = rc
	return r, src, nil
}

func openStream(p string) (io.ReadCloser, *Source, error) {
	if parts.IsPart(p) {
		return openParts(p)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		if _, perr := os.Stat(parts.PartName(p, 1)); perr == nil {
			return openParts(p)
		}
		return nil, nil, fmt.Errorf("open archive: %s does not exist (nor its parts %s, ...)", p, parts.PartName(p, 1))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open archive: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("open archive: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("open archive: %s is not a regular file", p)
	}
	return f, &Source{Path: p, Size: st.Size()}, nil
}

func openParts(p string) (io.ReadCloser, *Source, error) {
	set, err := parts.Open(p)
	if err != nil {
		return nil, nil, err
	}
	return set.Reader(), &Source{Path: p, Parts: set.Parts(), Size: set.TotalSize()}, nil
}

// OpenParts opens the part set that p names (any part, or the archive name when only its parts exist), checking
// presence, order and identity of every part. For a single archive file it returns nil and no error.
func OpenParts(p string) (*parts.Set, error) {
	if !parts.IsPart(p) {
		if _, err := os.Stat(p); err == nil {
			return nil, nil
		}
		if _, err := os.Stat(parts.PartName(p, 1)); err != nil {
			return nil, nil // Open will name the problem
		}
	}
	return parts.Open(p)
}
