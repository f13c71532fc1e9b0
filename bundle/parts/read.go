package parts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
	"github.com/wutong-paas/wutong-offline/internal/stream"
)

var errReaderClosed = errors.New("read parts: reader is closed")

// Reader returns the archive: the payloads of all parts in order. It hashes
// each part as it streams and, at the end of a part whose sha256 differs from
// its header, returns a *PartError (Kind ErrChecksum) before any byte of a later
// part. Bytes of the corrupt part itself may already have been returned, so
// callers write to a temporary place and keep it only on io.EOF.
// A part that changed since Open (header or size) is reported the same way.
func (s *Set) Reader() io.ReadCloser {
	return &setReader{s: s, hash: sha256.New()}
}

type setReader struct {
	s         *Set
	next      int      // index into s.parts of the next part to open
	f         *os.File // current part, nil between parts
	cur       *partFile
	remaining int64
	hash      hash.Hash
	err       error // sticky
}

func (r *setReader) Read(p []byte) (int, error) {
	for r.err == nil && (r.f == nil || r.remaining == 0) {
		switch {
		case r.f != nil:
			r.err = r.finishPart()
		case r.next >= len(r.s.parts):
			r.err = io.EOF
		default:
			r.err = r.openPart()
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.f.Read(p)
	r.hash.Write(p[:n])
	r.remaining -= int64(n)
	switch {
	case errors.Is(err, io.EOF) && r.remaining > 0:
		r.err = r.partErr(ErrSize, "file ended early (truncated since it was checked)", nil)
	case err != nil && !errors.Is(err, io.EOF):
		r.err = r.partErr(nil, "read failed", causeOf(err))
	case r.remaining == 0:
		r.err = r.finishPart()
	}
	if r.err != nil {
		return n, r.err
	}
	return n, nil
}

func (r *setReader) partErr(kind error, reason string, cause error) *PartError {
	return &PartError{Part: r.cur.path, Index: r.cur.hdr.Index, Count: r.cur.hdr.Count,
		Kind: kind, Reason: reason, Err: cause, Hint: hintRecopy}
}

// openPart opens the next part and checks its header is still the one Open saw.
func (r *setReader) openPart() error {
	r.cur = &r.s.parts[r.next]
	r.next++
	f, err := os.Open(r.cur.path)
	if err != nil {
		return r.partErr(nil, "open failed", causeOf(err))
	}
	h, err := ReadHeader(f)
	if err == nil && *h != r.cur.hdr {
		err = errors.New("header changed since the set was opened")
	}
	if err != nil {
		f.Close()
		return r.partErr(ErrBadHeader, "unreadable header", err)
	}
	r.f = f
	r.remaining = h.Size
	r.hash.Reset()
	return nil
}

// finishPart closes the current part and compares its digest with the header.
func (r *setReader) finishPart() error {
	_ = r.f.Close()
	r.f = nil
	got := hex.EncodeToString(r.hash.Sum(nil))
	if got != r.cur.hdr.SHA256 {
		e := r.partErr(ErrChecksum, "sha256 mismatch", nil)
		e.Expected, e.Actual = r.cur.hdr.SHA256, got
		e.Hint = "the part is corrupt: copy it again from the USB stick"
		return e
	}
	return nil
}

// Close releases the open part file. Reads after Close fail.
func (r *setReader) Close() error {
	if r.f != nil {
		_ = r.f.Close()
		r.f = nil
	}
	if r.err == nil || errors.Is(r.err, io.EOF) {
		r.err = errReaderClosed
	}
	return nil
}

// Verify hashes every part fully and returns the first bad one as a
// *PartError. progress, if not nil, is called with the number of payload bytes
// hashed since the last call (they add up to TotalSize).
func (s *Set) Verify(ctx context.Context, progress func(n int64)) error {
	r := s.Reader()
	defer r.Close()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("verify parts of %s: %w", s.archive, err)
		}
		n, err := r.Read(buf)
		if n > 0 && progress != nil {
			progress(int64(n))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Join checks and joins the parts of the set anyPart belongs to (see Open)
// into out and returns the path written. out defaults to the archive name next
// to the parts; an existing directory gets the archive name inside it; out
// must not be a part file. The archive is streamed into a temporary file in
// out's directory while every part is hashed, and renamed to out only when all
// parts matched, so a bad part leaves nothing behind and a good join replaces
// out atomically.
func Join(ctx context.Context, anyPart string, out string) (string, error) {
	s, err := Open(anyPart)
	if err != nil {
		return "", err
	}
	if out, err = s.joinTarget(out); err != nil {
		return "", fmt.Errorf("join parts of %s: %w", s.archive, err)
	}
	if err := s.join(ctx, out); err != nil {
		return "", fmt.Errorf("join parts into %s: %w", out, err)
	}
	return out, nil
}

func (s *Set) joinTarget(out string) (string, error) {
	if out == "" {
		out = filepath.Join(s.dir, s.archive)
	} else if st, err := os.Stat(out); err == nil && st.IsDir() {
		out = filepath.Join(out, s.archive)
	}
	outAbs, err := filepath.Abs(out)
	if err != nil {
		return "", err
	}
	st, statErr := os.Stat(out)
	for _, p := range s.parts {
		pAbs, err := filepath.Abs(p.path)
		if err != nil {
			return "", err
		}
		same := pAbs == outAbs
		if !same && statErr == nil {
			if pst, err := os.Stat(p.path); err == nil && os.SameFile(st, pst) {
				same = true
			}
		}
		if same {
			return "", fmt.Errorf("output %s is one of the part files; choose another output path", out)
		}
	}
	if IsPart(out) {
		return "", fmt.Errorf("output %s looks like a part file; choose another output path", out)
	}
	return out, nil
}

func (s *Set) join(ctx context.Context, out string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return causeOf(err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	r := s.Reader()
	defer r.Close()
	n, err := stream.Copy(ctx, tmp, r, nil, nil)
	if err != nil {
		return err
	}
	if n != s.TotalSize() {
		return fmt.Errorf("wrote %d bytes, expected %d", n, s.TotalSize())
	}
	if err = tmp.Chmod(0o644); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), out)
	}
	if err != nil {
		return err
	}
	atomicfile.SyncDir(filepath.Dir(out))
	return nil
}
