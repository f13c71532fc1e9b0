package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"sync/atomic"

	"github.com/pkg/sftp"

	"github.com/wutong-paas/wutong-offline/internal/logctx"
)

// Uploader puts files on a node. *Client implements it.
type Uploader interface {
	Upload(ctx context.Context, src, dst string, o UploadOptions) (UploadResult, error)
}

// UploadOptions tune one upload.
type UploadOptions struct {
	// Mode is the remote file's permission bits. Default: the local file's.
	Mode fs.FileMode
	// Sudo writes as root when the login user is not root.
	Sudo bool
	// SHA256 is the local file's hex sha256 when the caller knows it (from a bundle manifest); computed otherwise.
	SHA256 string
	// Progress is called as bytes go out, with the bytes done (resumed ones included) and the total.
	Progress func(done, total int64)
}

// UploadResult says what an upload did.
type UploadResult struct {
	Skipped  bool  // an identical file was already there
	Resumed  int64 // bytes of an earlier, interrupted attempt that were verified and kept
	Sent     int64 // bytes sent over the link in this call
	Resent   int64 // of Sent, bytes that had been sent before but were lost with a dropped link
	Attempts int
}

// Upload copies the local file src to dst on the node and returns when dst holds exactly src's bytes:
//   - an identical dst (same size and sha256) is left alone, with its mode fixed;
//   - bytes go to a temp file beside dst, which a later call resumes after checking its prefix's sha256;
//   - a dropped link is redialled with backoff and the upload resumes;
//   - the temp file is synced, its sha256 checked on the node, its mode set, then renamed over dst atomically.
//
// A full disk and a permission error are a *TransferError matching ErrDiskFull or ErrPermission.
func (c *Client) Upload(ctx context.Context, src, dst string, o UploadOptions) (UploadResult, error) {
	var res UploadResult
	f, err := os.Open(src)
	if err != nil {
		return res, fmt.Errorf("upload: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("upload: %w", err)
	}
	if !st.Mode().IsRegular() {
		return res, fmt.Errorf("upload %s: not a regular file", src)
	}
	total := st.Size()
	if o.Mode == 0 {
		o.Mode = st.Mode().Perm()
	}
	u := &upload{f: f, total: total, sum: o.SHA256}
	var maxSent int64 // highest offset ever handed to the link, to count re-sent bytes
	for {
		res.Attempts++
		done, err := c.uploadOnce(ctx, u, dst, o, &res, &maxSent)
		if done || err == nil {
			return res, err
		}
		retry := linkLost(err) || errors.Is(err, errDamaged)
		if !retry || res.Attempts > c.cfg.Retries || ctx.Err() != nil {
			return res, err
		}
		logctx.From(ctx).Warn("upload interrupted; resuming", "host", c.cfg.Host, "path", dst, "err", err)
	}
}

// errDamaged is a copy whose sha256 on the node is not the local file's.
var errDamaged = errors.New("the copy on the node is damaged")

// upload is the local side of one file's upload.
type upload struct {
	f     *os.File
	total int64
	sum   string // hex sha256 of the whole file; "" until known
}

// localSum hashes the whole local file, once.
func (u *upload) localSum(ctx context.Context) (string, error) {
	if u.sum != "" {
		return u.sum, nil
	}
	if _, err := u.f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if err := hashInto(ctx, h, u.f, u.total); err != nil {
		return "", fmt.Errorf("upload: hash %s: %w", u.f.Name(), err)
	}
	u.sum = hex.EncodeToString(h.Sum(nil))
	return u.sum, nil
}

// uploadOnce is one attempt. done reports a final outcome (success or a permanent error).
func (c *Client) uploadOnce(ctx context.Context, u *upload, dst string, o UploadOptions, res *UploadResult, maxSent *int64) (bool, error) {
	f, total := u.f, u.total
	sc, closeSFTP, err := c.sftpClient(ctx, o.Sudo)
	if err != nil {
		return !linkLost(err), err
	}
	defer closeSFTP()
	stop := context.AfterFunc(ctx, closeSFTP)
	defer stop()

	terr := func(op, p string, err error) error {
		return c.transferError(sc, op, p, 0, err)
	}
	if st, err := sc.Stat(dst); err == nil && st.Mode().IsRegular() && st.Size() == total {
		sum, err := u.localSum(ctx)
		if err != nil {
			return true, err
		}
		if got, err := c.remoteSum(ctx, dst, -1, o.Sudo); err == nil && got == sum {
			if st.Mode().Perm() != o.Mode {
				if err := sc.Chmod(dst, o.Mode); err != nil {
					return true, terr("chmod", dst, err)
				}
			}
			res.Skipped = true
			if o.Progress != nil {
				o.Progress(total, total)
			}
			return true, nil
		}
	}
	dir, name := path.Split(dst)
	if dir != "" {
		if err := sc.MkdirAll(dir); err != nil {
			return !linkLost(err), terr("mkdir", dir, err)
		}
	}
	tmp := dir + "." + name + ".wtpart"
	// h hashes the file as it goes out (after the resumed prefix), so no separate pass over a big file is needed.
	h := sha256.New()
	offset := c.resumeOffset(ctx, sc, f, h, tmp, total, o.Sudo)
	flags := os.O_WRONLY | os.O_CREATE
	if offset == 0 {
		flags |= os.O_TRUNC
	}
	w, err := sc.OpenFile(tmp, flags)
	if err != nil {
		return !linkLost(err), terr("create", tmp, err)
	}
	defer w.Close()
	if offset > 0 {
		if err := w.Truncate(offset); err != nil {
			return !linkLost(err), terr("truncate", tmp, err)
		}
	}
	if *maxSent > offset {
		res.Resent += *maxSent - offset
	}
	res.Resumed = offset
	if _, err := w.Seek(offset, io.SeekStart); err != nil {
		return true, terr("seek", tmp, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return true, fmt.Errorf("upload: %w", err)
	}
	cr := &countingReader{r: io.TeeReader(f, h), total: total, progress: o.Progress}
	cr.off.Store(offset)
	_, err = w.ReadFrom(&io.LimitedReader{R: cr, N: total - offset})
	sent := cr.off.Load() - offset
	res.Sent += sent
	*maxSent = max(*maxSent, cr.off.Load())
	if err != nil {
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		err = c.transferError(sc, "write", tmp, total-offset, err)
		if errors.Is(err, ErrDiskFull) {
			_ = sc.Remove(tmp) // the engineer must free space anyway: give back what the attempt took
		}
		return !linkLost(err), err
	}
	// Every write is acknowledged: hash the node's copy (from its page cache) while it is flushed to disk.
	type sumResult struct {
		sum string
		err error
	}
	remoteSum := make(chan sumResult, 1)
	go func() {
		got, err := c.remoteSum(ctx, tmp, -1, o.Sudo)
		remoteSum <- sumResult{got, err}
	}()
	syncErr := w.Sync()
	if errors.Is(syncErr, sftp.ErrSSHFxOpUnsupported) {
		syncErr = nil
	}
	closeErr := w.Close()
	rs := <-remoteSum
	if syncErr != nil {
		return !linkLost(syncErr), terr("sync", tmp, syncErr)
	}
	if closeErr != nil {
		return !linkLost(closeErr), terr("close", tmp, closeErr)
	}
	sentSum := hex.EncodeToString(h.Sum(nil))
	if u.sum != "" && sentSum != u.sum {
		_ = sc.Remove(tmp)
		return true, fmt.Errorf("upload %s: the local file changed while it was sent (sha256 %s, expected %s)", f.Name(), sentSum, u.sum)
	}
	u.sum = sentSum
	got, err := rs.sum, rs.err
	if err != nil {
		return !linkLost(err), terr("verify", tmp, err)
	}
	if got != u.sum {
		_ = sc.Remove(tmp)
		return false, &TransferError{Host: c.cfg.Host, Op: "verify", Path: dst, Free: -1,
			Err: fmt.Errorf("%w: sha256 there is %s, want %s; sending it again", errDamaged, got, u.sum)}
	}
	if err := sc.Chmod(tmp, o.Mode); err != nil {
		return !linkLost(err), terr("chmod", tmp, err)
	}
	if err := sc.PosixRename(tmp, dst); err != nil {
		return !linkLost(err), terr("rename", dst, err)
	}
	return true, nil
}

// resumeOffset checks what an earlier attempt left in tmp. Writes go out concurrently, so the last window of the
// temp file may have holes: only a prefix whose sha256 matches the local file is kept.
func (c *Client) resumeOffset(ctx context.Context, sc *sftp.Client, f *os.File, h hash.Hash, tmp string, total int64, sudo bool) int64 {
	st, err := sc.Stat(tmp)
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
		return 0
	}
	n := min(st.Size(), total) - sftpWindow
	n -= n % sftpPacket
	if n <= 0 {
		return 0
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0
	}
	if err := hashInto(ctx, h, f, n); err != nil {
		h.Reset()
		return 0
	}
	remote, err := c.remoteSum(ctx, tmp, n, sudo)
	if err != nil || remote != hex.EncodeToString(h.Sum(nil)) {
		h.Reset()
		return 0
	}
	return n
}

// remoteSum is the hex sha256 of the node's file p, or of its first n bytes when n ≥ 0.
func (c *Client) remoteSum(ctx context.Context, p string, n int64, sudo bool) (string, error) {
	// openssl uses the CPU's SHA instructions and is on every supported OS; coreutils' sha256sum, the fallback, is
	// often four times slower, which shows on multi-GB payloads.
	hasher := "if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum -b; fi"
	line := hasher + " < " + Quote(p)
	if n >= 0 {
		line = fmt.Sprintf("head -c %d -- %s | { %s; }", n, Quote(p), hasher)
	}
	out, err := c.Run(ctx, Cmd{Line: line, Sudo: sudo})
	if err != nil {
		return "", err
	}
	fields := strings.Fields(string(out.Stdout))
	if len(fields) == 0 || len(fields[0]) != 64 {
		return "", fmt.Errorf("%s: unexpected sha256 output %q", c.cfg.Host, out.Stdout)
	}
	return fields[0], nil
}

// transferError names a full disk or a permission problem when that is what happened.
func (c *Client) transferError(sc *sftp.Client, op, p string, need int64, err error) error {
	te := &TransferError{Host: c.cfg.Host, Op: op, Path: p, Need: need, Free: -1, Err: err}
	var se *sftp.StatusError
	if errors.As(err, &se) {
		switch se.FxCode() {
		case sftp.ErrSSHFxPermissionDenied:
			te.Err = fmt.Errorf("%w: %v", ErrPermission, err)
		case sftp.ErrSSHFxFailure:
			// SFTP v3 has no "disk full" code: OpenSSH sends a generic failure. Ask the file system.
			if vfs, verr := sc.StatVFS(path.Dir(p)); verr == nil {
				free := int64(vfs.Bavail * vfs.Frsize)
				if free < max(need, 1)+int64(vfs.Frsize) {
					te.Free = free
					te.Err = fmt.Errorf("%w: %v", ErrDiskFull, err)
				}
			}
		}
	} else if errors.Is(err, fs.ErrPermission) {
		te.Err = fmt.Errorf("%w: %v", ErrPermission, err)
	}
	return te
}

// linkLost reports whether err is the connection going away, so that redialling and resuming may help.
func linkLost(err error) bool {
	if err == nil {
		return false
	}
	var de *DialError
	var ne net.Error
	var ce *CommandError
	if errors.As(err, &ce) && ce.ExitCode >= 0 {
		return false
	}
	return errors.As(err, &de) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, sftp.ErrSSHFxNoConnection) ||
		errors.Is(err, net.ErrClosed) || (ce != nil && ce.ExitCode < 0 && !errors.Is(ce.Err, context.Canceled))
}

// countingReader reports progress as bytes are read for sending.
type countingReader struct {
	r        io.Reader
	off      atomic.Int64
	total    int64
	progress func(done, total int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		done := c.off.Add(int64(n))
		if c.progress != nil {
			c.progress(done, c.total)
		}
	}
	return n, err
}

// hashInto writes the first n bytes of r into h.
func hashInto(ctx context.Context, h hash.Hash, r io.Reader, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := io.ReadFull(r, buf[:min(int64(len(buf)), n)])
		h.Write(buf[:m])
		n -= int64(m)
		if err != nil {
			return err
		}
	}
	return nil
}
