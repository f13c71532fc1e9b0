package bundle

import (
	"archive/tar"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

// Item is one payload entry to write: its manifest entry and where its bytes come from.
type Item struct {
	Entry
	// Open returns the entry's content. It is called once, when the entry is written; not used for symlinks.
	Open func() (io.ReadCloser, error)
}

// WriteOptions tune Write. The zero value writes an unsigned archive with default compression on all cores.
type WriteOptions struct {
	// Key signs the manifest. Nil writes an explicit "unsigned" signature entry, which readers refuse by default.
	Key ed25519.PrivateKey
	// Progress, if set, is called with the number of payload bytes just written.
	Progress func(n int64)
	// Concurrency is the number of frames compressed at once. Default: GOMAXPROCS.
	Concurrency int
	// Level is the zstd level. Default: zstd.SpeedDefault (about zstd -3).
	Level zstd.EncoderLevel
}

// copyBufSize is the read size for streaming entry content.
const copyBufSize = 1 << 20

// Write streams an archive to w: the manifest first, its signature second, then every item in order. m.Entries is
// set from items. Each item's content is hashed as it streams and compared to its declared size and sha256, so a
// source that changed or was corrupted since it was listed fails the write instead of producing a bad archive.
func Write(ctx context.Context, w io.Writer, m *Manifest, items []Item, opts WriteOptions) error {
	m.Entries = make([]Entry, len(items))
	for i := range items {
		m.Entries[i] = items[i].Entry
		if m.Entries[i].Type == TypeFile {
			m.Entries[i].Type = "" // the default, kept out of the JSON
		}
	}
	if m.APIVersion == "" {
		m.APIVersion = APIVersion
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	mb, err := m.Marshal()
	if err != nil {
		return err
	}
	if len(mb) > MaxManifestSize {
		return fmt.Errorf("write archive: its manifest would be %d bytes for %d entries, over the %d-byte limit that readers refuse; put fewer files in one archive (split it, or ship apps as their own packages)",
			len(mb), len(m.Entries), MaxManifestSize)
	}
	sb, err := Sign(mb, opts.Key)
	if err != nil {
		return err
	}
	if len(sb) > MaxSignatureSize {
		return fmt.Errorf("write archive: the signature entry is %d bytes, over the %d-byte limit that readers refuse", len(sb), MaxSignatureSize)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.GOMAXPROCS(0)
	}
	if opts.Level == 0 {
		opts.Level = zstd.SpeedDefault
	}
	zw, err := newFrameWriter(w, opts.Level, opts.Concurrency)
	if err != nil {
		return fmt.Errorf("start zstd: %w", err)
	}
	tw := tar.NewWriter(zw)
	aw := archiveWriter{tw: tw, m: m, progress: opts.Progress, buf: make([]byte, copyBufSize)}
	if err := aw.bytes(ManifestName, mb); err != nil {
		zw.Abort()
		return err
	}
	if err := aw.bytes(SignatureName, sb); err != nil {
		zw.Abort()
		return err
	}
	for i := range items {
		if err := ctx.Err(); err != nil {
			zw.Abort()
			return fmt.Errorf("write archive: %w", err)
		}
		if err := aw.item(&items[i]); err != nil {
			zw.Abort()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		zw.Abort()
		return fmt.Errorf("write archive end: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write archive end: %w", err)
	}
	return nil
}

type archiveWriter struct {
	tw       *tar.Writer
	m        *Manifest
	progress func(int64)
	buf      []byte
}

func (a *archiveWriter) header(name string, size int64, mode uint32) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     int64(mode),
		ModTime:  a.m.Created,
		Format:   tar.FormatPAX,
	}
}

func (a *archiveWriter) bytes(name string, b []byte) error {
	if err := a.tw.WriteHeader(a.header(name, int64(len(b)), 0o644)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := a.tw.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func (a *archiveWriter) item(it *Item) error {
	if it.IsSymlink() {
		h := &tar.Header{Typeflag: tar.TypeSymlink, Name: it.Path, Linkname: it.Target, Mode: 0o777, ModTime: a.m.Created, Format: tar.FormatPAX}
		if err := a.tw.WriteHeader(h); err != nil {
			return fmt.Errorf("write %s: %w", it.Path, err)
		}
		return nil
	}
	rc, err := it.Open()
	if err != nil {
		return fmt.Errorf("open %s: %w", it.Path, err)
	}
	defer rc.Close()
	if err := a.tw.WriteHeader(a.header(it.Path, it.Size, it.Mode)); err != nil {
		return fmt.Errorf("write %s: %w", it.Path, err)
	}
	h := sha256.New()
	var n int64
	for {
		k, rerr := rc.Read(a.buf)
		if k > 0 {
			if n+int64(k) > it.Size {
				return &IntegrityError{Entry: it.Path, What: "size", Expected: fmt.Sprint(it.Size), Actual: fmt.Sprintf("more than %d", it.Size), Hint: "the source changed while the bundle was being written"}
			}
			h.Write(a.buf[:k])
			if _, err := a.tw.Write(a.buf[:k]); err != nil {
				return fmt.Errorf("write %s: %w", it.Path, err)
			}
			n += int64(k)
			if a.progress != nil {
				a.progress(int64(k))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read %s: %w", it.Path, rerr)
		}
	}
	if n != it.Size {
		return &IntegrityError{Entry: it.Path, What: "size", Expected: fmt.Sprint(it.Size), Actual: fmt.Sprint(n), Hint: "the source changed while the bundle was being written"}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != it.SHA256 {
		return &IntegrityError{Entry: it.Path, What: "sha256", Expected: it.SHA256, Actual: got, Hint: "the source content is corrupt or changed while the bundle was being written"}
	}
	return nil
}
