package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/wutong-paas/wutong-offline/bundle/parts"
)

// ReadOptions say which signers are trusted.
type ReadOptions struct {
	// Keys are the trusted public keys. When empty, the keys in TrustDir are used.
	Keys []ed25519.PublicKey
	// TrustDir holds trusted *.pem/*.pub keys. Default: DefaultTrustDir. Used only when Keys is empty.
	TrustDir string
	// InsecureSkipVerify accepts unsigned archives and unknown signers. Integrity is still checked against the
	// manifest, but the manifest itself is not trusted. Callers must warn loudly.
	InsecureSkipVerify bool
	// Progress, if set, is called with the number of payload bytes just read.
	Progress func(n int64)
}

// maxTrailer bounds the zero padding accepted after the end of the tar stream.
const maxTrailer = 1 << 20

// maxDecoderWindow is the largest zstd window a reader accepts. Write makes independent frames of frameSize
// (4 MiB), whose window is their content size; 8 MiB also admits a plain zstd stream of the default window, as
// tests and the zstd command at levels up to 19 write. A decoder allocates its window as soon as a frame starts,
// so this bounds what a hostile frame header can make a reader allocate.
const maxDecoderWindow = 8 << 20

// decoderOptions keep a reader's memory small and bounded whatever the input: the window limit (also as the
// decoded-size limit, which applies to in-memory decoding), no decoding of small in-memory inputs all at once, and
// two blocks in flight, which keeps decompression overlapped with hashing (see BenchmarkReaderVerify).
var decoderOptions = []zstd.DOption{
	zstd.WithDecoderMaxWindow(maxDecoderWindow),
	zstd.WithDecoderMaxMemory(maxDecoderWindow),
	zstd.WithDecodeBuffersBelow(0),
	zstd.WithDecoderLowmem(true),
	zstd.WithDecoderConcurrency(2),
}

// Reader streams an archive and checks every entry against the signed manifest: names, order, types, sizes and
// sha256. It holds only one copy buffer, the manifest and the decoder's window (at most maxDecoderWindow) in memory.
type Reader struct {
	// Manifest is the archive's manifest, checked against its signature (unless InsecureSkipVerify).
	Manifest *Manifest
	// ManifestBytes are the exact signed bytes of the manifest.
	ManifestBytes []byte
	// Signature is the archive's signature entry, and SignatureBytes its exact bytes.
	Signature      *Signature
	SignatureBytes []byte
	// SignerKeyID is the fingerprint of the key that signed the archive, if any.
	SignerKeyID string
	// Trusted is true when the signature was verified with a trusted key.
	Trusted bool

	zr       *zstd.Decoder
	tr       *tar.Reader
	progress func(int64)
	next     int            // index of the next manifest entry expected
	cur      *entryReader   // the entry being read, drained by the following Next
	index    map[string]int // entry path -> manifest index
	done     bool
	buf      []byte
	links    map[string]bool // every symlink the manifest lists; no entry or link target may pass through one
	closer   io.Closer
}

// discard is io.Discard without ReaderFrom, so that draining uses the reader's large buffer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// NewReader reads and checks the manifest and signature at the start of r. It fails with a *TrustError when the
// signature is not trusted and with an *IntegrityError when the archive is damaged or its manifest lists an unsafe
// entry (then it wraps an *UnsafeEntryError). Before the signature is checked, it holds at most MaxManifestSize,
// MaxSignatureSize and the decoder's window in memory.
func NewReader(r io.Reader, opts ReadOptions) (*Reader, error) {
	zr, err := zstd.NewReader(r, decoderOptions...)
	if err != nil {
		return nil, fmt.Errorf("start zstd: %w", err)
	}
	br := &Reader{zr: zr, tr: tar.NewReader(zr), progress: opts.Progress}
	mb, err := br.smallEntry(ManifestName, MaxManifestSize)
	if err != nil {
		zr.Close()
		return nil, err
	}
	sb, err := br.smallEntry(SignatureName, MaxSignatureSize)
	if err != nil {
		zr.Close()
		return nil, err
	}
	sig, err := ParseSignature(sb)
	if err != nil {
		zr.Close()
		return nil, &IntegrityError{Entry: SignatureName, What: "unreadable signature", Actual: err.Error()}
	}
	keys := opts.Keys
	if len(keys) == 0 {
		dir := opts.TrustDir
		if dir == "" {
			dir = DefaultTrustDir
		}
		if keys, err = LoadTrustDir(dir); err != nil {
			zr.Close()
			return nil, err
		}
	}
	keyID, ok, err := CheckSignature(mb, sig, keys, opts.InsecureSkipVerify)
	if err != nil {
		zr.Close()
		return nil, err
	}
	m, err := ParseManifest(mb)
	if err != nil {
		zr.Close()
		return nil, &IntegrityError{Entry: ManifestName, What: "invalid manifest", Actual: err.Error(), Err: err,
			Hint: "the archive was not written by wtctl, or was altered; rebuild it with wtctl"}
	}
	br.Manifest, br.ManifestBytes, br.Signature, br.SignatureBytes, br.SignerKeyID, br.Trusted = m, mb, sig, sb, keyID, ok
	br.index = make(map[string]int, len(m.Entries))
	for i, e := range m.Entries {
		br.index[e.Path] = i
	}
	br.links = symlinkSet(m)
	return br, nil
}

// Close releases the decoder, and closes the archive files when the Reader came from Open.
func (r *Reader) Close() error {
	r.zr.Close()
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// smallEntry reads the next entry, which must be a regular file called name of at most limit bytes, into memory.
func (r *Reader) smallEntry(name string, limit int64) ([]byte, error) {
	h, err := r.tr.Next()
	if err != nil {
		return nil, r.streamError(name, err)
	}
	if err := checkNameLengths(h); err != nil {
		return nil, err
	}
	if h.Name != name {
		return nil, &IntegrityError{Entry: name, What: "not a Wutong archive, or its first entries are out of order", Expected: name, Actual: quoteName(h.Name)}
	}
	if h.Typeflag != tar.TypeReg {
		return nil, &IntegrityError{Entry: name, What: "bad header", Expected: "a regular file", Actual: describeHeader(h)}
	}
	if h.Size > limit {
		return nil, &IntegrityError{Entry: name, What: "too large", Actual: fmt.Sprintf("%d bytes, over the %d-byte limit", h.Size, limit),
			Hint: "wtctl never writes one this large; the archive was not written by wtctl, or was altered"}
	}
	b := make([]byte, h.Size)
	if _, err := io.ReadFull(r.tr, b); err != nil {
		return nil, r.streamError(name, err)
	}
	return b, nil
}

// streamError turns a decoder or tar error into an IntegrityError naming where it happened.
func (r *Reader) streamError(entry string, err error) error {
	var ie *IntegrityError
	var pe *parts.PartError
	if errors.As(err, &ie) || errors.As(err, &pe) {
		return err // already precise
	}
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return &IntegrityError{Entry: entry, What: "unsupported compression", Actual: fmt.Sprintf("a zstd frame needs a window larger than %d MiB", maxDecoderWindow>>20),
			Hint: "wtctl writes frames of 4 MiB; the archive was recompressed by another tool (without --long and at level 19 or below, zstd stays within the limit) or altered"}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &IntegrityError{Entry: entry, What: "truncated", Actual: err.Error(), Hint: "the archive ends early; copy it again from the source"}
	}
	return &IntegrityError{Entry: entry, What: "corrupt data", Actual: err.Error(), Hint: "the archive is damaged; copy it again from the source"}
}

// Next returns the next entry and a reader for its content. The reader checks size and sha256 and returns an
// *IntegrityError instead of io.EOF when they differ. Unread content is drained and checked by the following call.
// At the end of a complete archive Next returns io.EOF.
func (r *Reader) Next() (*Entry, io.Reader, error) {
	if r.done {
		return nil, nil, io.EOF
	}
	if r.cur != nil {
		if r.buf == nil {
			r.buf = make([]byte, copyBufSize)
		}
		if _, err := io.CopyBuffer(discard{}, r.cur, r.buf); err != nil {
			return nil, nil, err
		}
		r.cur = nil
	}
	var expected string
	if r.next < len(r.Manifest.Entries) {
		expected = r.Manifest.Entries[r.next].Path
	}
	h, err := r.tr.Next()
	if err == io.EOF {
		if expected != "" {
			return nil, nil, &IntegrityError{Entry: expected, What: "missing", Hint: fmt.Sprintf("%d of %d entries are absent; the archive is incomplete or truncated", len(r.Manifest.Entries)-r.next, len(r.Manifest.Entries))}
		}
		if err := r.checkTrailer(); err != nil {
			return nil, nil, err
		}
		r.done = true
		return nil, nil, io.EOF
	}
	if err != nil {
		return nil, nil, r.streamError(expected, err)
	}
	if err := checkHeader(h); err != nil {
		return nil, nil, err
	}
	i, listed := r.index[h.Name]
	switch {
	case !listed:
		return nil, nil, &IntegrityError{Entry: h.Name, What: "unexpected entry", Expected: "only entries the manifest lists", Actual: "an entry it does not list", Hint: "the archive was altered after it was built"}
	case i < r.next:
		return nil, nil, &IntegrityError{Entry: h.Name, What: "duplicate entry", Hint: "the archive was altered after it was built"}
	case i > r.next:
		return nil, nil, &IntegrityError{Entry: expected, What: "missing", Hint: fmt.Sprintf("found %s in its place; the archive was altered or reordered", quoteName(h.Name))}
	}
	e := &r.Manifest.Entries[i]
	r.next++
	// The manifest passed the same checks against the same links; they are repeated here, where the entry is
	// about to be written, so that extraction does not depend on how the Reader was made.
	if err := checkNoLinkParent(e.Path, r.links); err != nil {
		return nil, nil, err
	}
	if e.IsSymlink() {
		if h.Typeflag != tar.TypeSymlink || h.Linkname != e.Target {
			return nil, nil, &IntegrityError{Entry: e.Path, What: "type", Expected: "symlink to " + quoteName(e.Target), Actual: describeHeader(h)}
		}
		if why := linkProblem(e.Path, e.Target, r.links); why != "" {
			return nil, nil, &UnsafeEntryError{Entry: e.Path, Reason: why}
		}
		return e, bytes.NewReader(nil), nil
	}
	if h.Typeflag != tar.TypeReg {
		return nil, nil, &IntegrityError{Entry: e.Path, What: "type", Expected: "regular file", Actual: describeHeader(h)}
	}
	if h.Size != e.Size {
		return nil, nil, &IntegrityError{Entry: e.Path, What: "size", Expected: fmt.Sprint(e.Size), Actual: fmt.Sprint(h.Size), Hint: "the entry's size differs from what the manifest declares; refused before reading it"}
	}
	r.cur = &entryReader{r: r, e: e, h: sha256.New()}
	return e, r.cur, nil
}

// checkTrailer reads to the end of the decompressed stream, so that a truncated or damaged final frame is detected,
// and refuses anything but a little zero padding after the tar end marker.
func (r *Reader) checkTrailer() error {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := r.zr.Read(buf)
		for _, c := range buf[:k] {
			if c != 0 {
				return &IntegrityError{What: "trailing data after the last entry", Hint: "the archive was altered after it was built"}
			}
		}
		n += int64(k)
		if n > maxTrailer {
			return &IntegrityError{What: "too much padding after the last entry", Hint: "the archive was altered after it was built"}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return r.streamError("", err)
		}
	}
}

// checkNameLengths refuses entry and link names longer than MaxNameLength before they are used anywhere else. The
// error holds only the start of the name.
func checkNameLengths(h *tar.Header) error {
	switch {
	case len(h.Name) > MaxNameLength:
		return &UnsafeEntryError{Entry: shorten(h.Name), Reason: fmt.Sprintf("its name is %d bytes, over the %d-byte limit", len(h.Name), MaxNameLength)}
	case len(h.Linkname) > MaxNameLength:
		return &UnsafeEntryError{Entry: h.Name, Reason: fmt.Sprintf("its link target is %d bytes, over the %d-byte limit", len(h.Linkname), MaxNameLength)}
	}
	return nil
}

// shorten keeps the start of an over-long name and marks the cut, so that an error neither holds nor shows all of it.
func shorten(s string) string {
	const keep = 128
	if len(s) <= keep {
		return s
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// checkHeader refuses hostile entry headers before they are compared with the manifest, so the error says what is
// wrong with the entry rather than only that it is not listed.
func checkHeader(h *tar.Header) error {
	if err := checkNameLengths(h); err != nil {
		return err
	}
	if why := pathProblem(h.Name); why != "" {
		return &UnsafeEntryError{Entry: h.Name, Reason: "its path " + why}
	}
	switch h.Typeflag {
	case tar.TypeReg:
	case tar.TypeSymlink:
		if why := linkProblem(h.Name, h.Linkname, nil); why != "" {
			return &UnsafeEntryError{Entry: h.Name, Reason: why}
		}
	case tar.TypeLink:
		if err := CheckLinkTarget(h.Name, h.Linkname); err != nil || CheckPath(h.Linkname) != nil {
			return &UnsafeEntryError{Entry: h.Name, Reason: fmt.Sprintf("hardlink to %s escapes the archive", quoteName(h.Linkname))}
		}
		return &UnsafeEntryError{Entry: h.Name, Reason: "hardlinks are not allowed in Wutong archives"}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return &UnsafeEntryError{Entry: h.Name, Reason: fmt.Sprintf("device or fifo node (%s) is not allowed", describeHeader(h))}
	default:
		return &UnsafeEntryError{Entry: h.Name, Reason: fmt.Sprintf("entry type %s is not allowed", describeHeader(h))}
	}
	return nil
}

func describeHeader(h *tar.Header) string {
	switch h.Typeflag {
	case tar.TypeReg:
		return fmt.Sprintf("regular file of %d bytes", h.Size)
	case tar.TypeSymlink:
		return "symlink to " + quoteName(h.Linkname)
	case tar.TypeLink:
		return "hardlink to " + quoteName(h.Linkname)
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeDir:
		return "directory"
	}
	return fmt.Sprintf("type %q", h.Typeflag)
}

// entryReader streams one entry's content and checks it at the end.
type entryReader struct {
	r   *Reader
	e   *Entry
	h   hash.Hash
	n   int64
	err error
}

func (er *entryReader) Read(p []byte) (int, error) {
	if er.err != nil {
		return 0, er.err
	}
	k, err := er.r.tr.Read(p)
	if k > 0 {
		er.h.Write(p[:k])
		er.n += int64(k)
		if er.r.progress != nil {
			er.r.progress(int64(k))
		}
	}
	switch {
	case err == io.EOF:
		if er.n != er.e.Size {
			er.err = &IntegrityError{Entry: er.e.Path, What: "size", Expected: fmt.Sprint(er.e.Size), Actual: fmt.Sprint(er.n)}
		} else if got := hex.EncodeToString(er.h.Sum(nil)); got != er.e.SHA256 {
			er.err = &IntegrityError{Entry: er.e.Path, What: "sha256", Expected: er.e.SHA256, Actual: got, Hint: "the entry is corrupt; copy the bundle again from the source"}
		} else {
			er.err = io.EOF
		}
		return k, er.err
	case err != nil:
		er.err = er.r.streamError(er.e.Path, err)
		return k, er.err
	}
	return k, nil
}

// Verify reads the rest of the archive, checking every entry, without writing anything.
func (r *Reader) Verify(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("verify archive: %w", err)
		}
		_, _, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
