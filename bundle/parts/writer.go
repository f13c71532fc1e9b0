package parts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
	"github.com/wutong-paas/wutong-offline/internal/stream"
)

var errAborted = errors.New("part writer aborted")

// Writer is an io.WriteCloser that streams an archive into parts of at most
// partSize bytes each (header included), hashing as it goes. Parts are written
// as <archive>.partNNN.tmp; Close writes the final headers (the count is only
// known at the end) and only then renames them to their final names. Abort
// removes everything the Writer wrote. A Writer is not safe for concurrent use.
//
// An empty archive gives one part with an empty payload; an archive whose size
// is an exact multiple of the payload size gives no trailing empty part.
type Writer struct {
	archive    string // archive path; part names derive from it
	payloadMax int64
	maxParts   int // MaxParts; lowered by tests
	setID      string

	parts []*writtenPart
	f     *os.File // current part, nil between parts
	hash  hash.Hash
	total int64

	err      error // sticky write error
	closed   bool
	closeErr error
	final    []string
}

type writtenPart struct {
	tmp, final   string
	offset, size int64
	sum          string
	renamed      bool
}

// NewWriter starts writing the parts of archivePath (the parts go next to it;
// archivePath itself is not created). partSize is the largest part file,
// header included: HeaderSize < partSize <= MaxPartSize.
func NewWriter(archivePath string, partSize int64) (*Writer, error) {
	if partSize <= HeaderSize || partSize > MaxPartSize {
		return nil, fmt.Errorf("create part writer: part size %d is not in %d..%d bytes", partSize, HeaderSize+1, MaxPartSize)
	}
	base := filepath.Base(archivePath)
	if !utf8.ValidString(base) {
		return nil, fmt.Errorf("create part writer: archive name %q is not valid UTF-8", base)
	}
	// The longest header this writer could produce must fit.
	worst := Header{SetID: zeros(32), Archive: base, Index: MaxParts, Count: MaxParts,
		Offset: MaxParts * MaxPartSize, Size: MaxPartSize - HeaderSize,
		SHA256: zeros(64), TotalSize: (MaxParts + 1) * MaxPartSize}
	if _, err := worst.Encode(); err != nil {
		return nil, fmt.Errorf("create part writer: %w", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("create part writer: generate set id: %w", err)
	}
	w := &Writer{
		archive:    archivePath,
		payloadMax: partSize - HeaderSize,
		maxParts:   MaxParts,
		setID:      hex.EncodeToString(id),
		hash:       sha256.New(),
	}
	if err := w.openPart(); err != nil {
		w.abort()
		return nil, err
	}
	return w, nil
}

func zeros(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0'
	}
	return string(b)
}

// openPart creates the next .tmp part with a placeholder header that no
// reader accepts (it has no JSON).
func (w *Writer) openPart() error {
	if len(w.parts) >= w.maxParts {
		return fmt.Errorf("write parts of %s: more than %d parts of %d bytes needed; use a larger part size",
			filepath.Base(w.archive), w.maxParts, w.payloadMax+HeaderSize)
	}
	final := PartName(w.archive, len(w.parts)+1)
	p := &writtenPart{tmp: final + ".tmp", final: final, offset: w.total}
	f, err := os.OpenFile(p.tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create part file %s: %w", p.tmp, causeOf(err))
	}
	w.parts = append(w.parts, p)
	w.f = f
	w.hash.Reset()
	placeholder := make([]byte, HeaderSize)
	copy(placeholder, Magic)
	for i := len(Magic); i < HeaderSize; i++ {
		placeholder[i] = '\n'
	}
	if _, err := f.Write(placeholder); err != nil {
		return fmt.Errorf("write part file %s: %w", p.tmp, causeOf(err))
	}
	return nil
}

// finishPart records the current part's digest and closes it.
func (w *Writer) finishPart() error {
	p := w.parts[len(w.parts)-1]
	p.sum = hex.EncodeToString(w.hash.Sum(nil))
	f := w.f
	w.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close part file %s: %w", p.tmp, causeOf(err))
	}
	return nil
}

// Write appends p to the archive, starting new parts as needed. An error
// (e.g. ENOSPC) names the part file and is returned again by later calls.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, fmt.Errorf("write parts of %s: writer is closed", filepath.Base(w.archive))
	}
	n := 0
	for len(p) > 0 {
		cur := w.parts[len(w.parts)-1]
		if cur.size == w.payloadMax {
			if err := w.finishPart(); err != nil {
				w.err = err
				return n, err
			}
			if err := w.openPart(); err != nil {
				w.err = err
				return n, err
			}
			cur = w.parts[len(w.parts)-1]
		}
		chunk := p[:min(int64(len(p)), w.payloadMax-cur.size)]
		m, err := w.f.Write(chunk)
		w.hash.Write(chunk[:m])
		cur.size += int64(m)
		w.total += int64(m)
		n += m
		if err != nil {
			w.err = fmt.Errorf("write part file %s: %w", cur.tmp, causeOf(err))
			return n, w.err
		}
		p = p[m:]
	}
	return n, nil
}

// Close finalizes every header, syncs the parts and renames them to their
// final names. Stale parts of the same archive name with a higher number (left
// by an earlier, longer split) are removed. If anything fails, everything the
// Writer wrote is removed and the error returned.
func (w *Writer) Close() error {
	if w.closed {
		return w.closeErr
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.finish()
	}
	if err != nil {
		w.abort()
		w.closeErr = err
		return err
	}
	for _, p := range w.parts {
		w.final = append(w.final, p.final)
	}
	return nil
}

func (w *Writer) finish() error {
	if err := w.finishPart(); err != nil {
		return err
	}
	for i, p := range w.parts {
		h := Header{SetID: w.setID, Archive: filepath.Base(w.archive), Index: i + 1, Count: len(w.parts),
			Offset: p.offset, Size: p.size, SHA256: p.sum, TotalSize: w.total}
		b, err := h.Encode()
		if err != nil {
			return fmt.Errorf("finish part file %s: %w", p.tmp, err)
		}
		if err := writeHeader(p.tmp, b); err != nil {
			return err
		}
	}
	for _, p := range w.parts {
		if err := os.Rename(p.tmp, p.final); err != nil {
			return fmt.Errorf("rename part file %s: %w", p.tmp, causeOf(err))
		}
		p.renamed = true
	}
	w.removeStale()
	atomicfile.SyncDir(filepath.Dir(w.archive))
	return nil
}

func writeHeader(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("reopen part file %s: %w", path, causeOf(err))
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write header of part file %s: %w", path, causeOf(err))
	}
	return nil
}

// removeStale deletes <archive>.partNNN files beyond the new count that really
// are part files (start with the magic); anything else is left alone.
func (w *Writer) removeStale() {
	dir, base := filepath.Dir(w.archive), filepath.Base(w.archive)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		a, idx, ok := parsePartName(e.Name())
		if !ok || a != base || idx <= len(w.parts) || !e.Type().IsRegular() {
			continue
		}
		if path := filepath.Join(dir, e.Name()); hasMagic(path) {
			_ = os.Remove(path)
		}
	}
}

// Abort stops writing and removes every file the Writer created. After a
// successful Close it does nothing, so `defer w.Abort()` is the usual idiom.
func (w *Writer) Abort() {
	if w.closed && w.closeErr == nil {
		return
	}
	w.abort()
	w.closed = true
	if w.closeErr == nil {
		w.closeErr = errAborted
	}
	if w.err == nil {
		w.err = errAborted
	}
}

func (w *Writer) abort() {
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
	for _, p := range w.parts {
		_ = os.Remove(p.tmp)
		if p.renamed {
			_ = os.Remove(p.final)
		}
	}
	w.parts = nil
}

// Parts returns the final part paths in order; nil until Close succeeded.
func (w *Writer) Parts() []string {
	if !w.closed || w.closeErr != nil {
		return nil
	}
	return append([]string(nil), w.final...)
}

// Split splits the archive file into parts of at most partSize bytes in outDir
// (default: the archive's directory) and returns the part paths. On error or
// cancellation nothing is left behind.
func Split(ctx context.Context, archive string, partSize int64, outDir string) ([]string, error) {
	paths, err := split(ctx, archive, partSize, outDir)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", archive, err)
	}
	return paths, nil
}

func split(ctx context.Context, archive string, partSize int64, outDir string) ([]string, error) {
	if hasMagic(archive) {
		return nil, fmt.Errorf("it is already a part file; join it instead")
	}
	in, err := os.Open(archive)
	if err != nil {
		return nil, causeOf(err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, causeOf(err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if outDir == "" {
		outDir = filepath.Dir(archive)
	}
	w, err := NewWriter(filepath.Join(outDir, filepath.Base(archive)), partSize)
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	n, err := stream.Copy(ctx, w, in, nil, nil)
	if err != nil {
		return nil, err
	}
	if n != st.Size() {
		return nil, fmt.Errorf("archive changed while splitting: read %d bytes, expected %d", n, st.Size())
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return w.Parts(), nil
}
