// Package importer takes offline app packages into the platform. It streams an upload through the signature and
// content checks into a staging OCI layout, pushes the images to the cluster registry, and only then records the
// version, in one store transaction. An import cut at any point leaves no half version: a later run of the same
// package starts over and pushes only the blobs the registry does not have yet.
package importer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/push"
	"github.com/wutong-paas/wutong-offline/internal/clip"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/appkg"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// DefaultMaxBytes is the largest package accepted unless Options.MaxBytes says otherwise.
const DefaultMaxBytes = 64 << 30

// Options configure an Importer.
type Options struct {
	// Store records imports and versions. Required.
	Store *store.Store
	// Dir holds the staging layouts of running imports, one directory each. Required; created if missing.
	Dir string
	// Trust says which package signers are trusted. With no keys, bundle.DefaultTrustDir is read.
	Trust bundle.ReadOptions
	// Registry is where images are pushed: Target, credentials, CA. MapRef is set by the importer.
	Registry push.Options
	// MaxBytes refuses larger packages. Default DefaultMaxBytes.
	MaxBytes int64
	// ProgressEvery is how often the received byte count is written to the store. Default 1 s.
	ProgressEvery time.Duration
}

// Importer runs imports. It is safe for concurrent use; imports of the same app version are serialised.
type Importer struct {
	opts  Options
	locks sync.Map // "key@version" → *sync.Mutex
}

// New checks opts and makes the staging directory.
func New(opts Options) (*Importer, error) {
	if opts.Store == nil || opts.Dir == "" || opts.Registry.Target == "" {
		return nil, errors.New("new importer: store, staging directory and registry target are required")
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = time.Second
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("make import staging directory: %w", err)
	}
	return &Importer{opts: opts}, nil
}

// MaxBytes is the largest package accepted.
func (im *Importer) MaxBytes() int64 { return im.opts.MaxBytes }

// NewID makes an import ID.
func NewID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Begin records a new import in state uploading. size is the declared size, or -1 when unknown.
func (im *Importer) Begin(ctx context.Context, teamID, userID int64, fileName string, size int64) (*store.Import, error) {
	if size > im.opts.MaxBytes {
		return nil, &TooLargeError{Limit: im.opts.MaxBytes, Size: size}
	}
	rec := &store.Import{ID: NewID(), TeamID: teamID, UserID: userID, FileName: CleanFileName(fileName), Size: size, State: store.ImportUploading}
	if err := im.opts.Store.CreateImport(ctx, rec); err != nil {
		return nil, fmt.Errorf("record import: %w", err)
	}
	return rec, nil
}

// KeepFailed is how many failed imports of a team are kept, newest first; older ones are deleted as another one
// fails.
const KeepFailed = 200

// MaxFileNameLength caps a recorded file name, in bytes.
const MaxFileNameLength = 255

// CleanFileName is the recorded form of an uploaded file's name: its base name without control characters, cut to
// MaxFileNameLength bytes.
func CleanFileName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, path.Base(strings.ReplaceAll(name, "\\", "/")))
	if name == "." || name == "/" || name == ".." {
		return ""
	}
	return clip.Prefix(name, MaxFileNameLength)
}

// MaxErrorLength caps the reason recorded for a failed import, in bytes: the reason can quote the package, and a
// hostile package must not make the store (and every list of imports) large.
const MaxErrorLength = 2048

// Staged is a package that arrived whole and verified: its layout waits in Dir for Finish.
type Staged struct {
	Info   appkg.Info
	Layout string
	// Unchanged is set when this exact version was imported before: there is nothing to push or record.
	Unchanged bool
}

// Receive reads the package from body: the signature first, then every entry, writing the OCI layout into the
// staging directory. It returns only when the whole package checked out. On any failure the import is marked
// failed with the reason and the staging directory removed.
func (im *Importer) Receive(ctx context.Context, rec *store.Import, body io.Reader) (st *Staged, err error) {
	dir := filepath.Join(im.opts.Dir, rec.ID)
	var cr *countingReader
	defer func() {
		if err != nil {
			// The archive reader reports a cut stream as damage. When the cut was the size limit, or the body
			// itself failed (a stalled upload, say), that is the reason to give.
			var tl *TooLargeError
			switch {
			case errors.As(err, &tl):
			case cr.n >= cr.limit:
				err = &TooLargeError{Limit: cr.limit, Size: cr.n}
			case cr.err != nil && !errors.Is(cr.err, io.EOF) && !errors.Is(cr.err, io.ErrUnexpectedEOF):
				err = fmt.Errorf("receive package: %w", cr.err)
			}
			os.RemoveAll(dir)
			im.fail(ctx, rec, err)
		}
	}()
	cr = &countingReader{r: body, limit: im.opts.MaxBytes, every: im.opts.ProgressEvery, report: func(n int64) {
		rec.Received = n
		im.opts.Store.UpdateImport(context.WithoutCancel(ctx), rec)
	}}
	pkg, err := appkg.Open(ctx, cr, im.opts.Trust)
	if err != nil {
		return nil, err
	}
	defer pkg.Close()
	// The signed manifest declares every entry's size: refuse a package that would unpack beyond the limit before
	// reading it (the limit otherwise counts only the compressed bytes, and a tiny package may declare a huge blob).
	if ps := pkg.Info.PayloadSize; ps < 0 || ps > im.opts.MaxBytes {
		return nil, &TooLargeError{Limit: im.opts.MaxBytes, Size: ps, Unpacked: true}
	}
	rec.State, rec.AppKey, rec.Version = store.ImportVerifying, pkg.Info.App.Key, pkg.Info.App.Version
	if err := im.opts.Store.UpdateImport(ctx, rec); err != nil {
		return nil, fmt.Errorf("record import: %w", err)
	}
	// Refuse what can never be recorded before reading the rest, so a wrong 10 GB package fails in a second.
	unchanged, err := im.precheck(ctx, rec.TeamID, pkg.Info)
	if err != nil {
		return nil, err
	}
	if err := pkg.ExtractLayout(ctx, dir); err != nil {
		return nil, err
	}
	cr.flush()
	return &Staged{Info: pkg.Info, Layout: dir, Unchanged: unchanged}, nil
}

// precheck compares the package with what the store holds: the app must belong to the importing team, and an
// existing version must have the same content.
func (im *Importer) precheck(ctx context.Context, teamID int64, info appkg.Info) (unchanged bool, err error) {
	a, err := im.opts.Store.AppByKey(ctx, info.App.Key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up app: %w", err)
	}
	if a.TeamID != teamID {
		return false, &store.ConflictError{What: "app", Key: info.App.Key,
			Detail: "it belongs to another team; import it into the team that owns it, or choose another app key"}
	}
	v, err := im.opts.Store.Version(ctx, info.App.Key, info.App.Version)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up version: %w", err)
	}
	if v.ContentDigest != info.ContentDigest {
		return false, &store.ConflictError{What: "version", Key: info.App.Key + " " + info.App.Version,
			Detail: fmt.Sprintf("it was imported before with different content (%s, now %s); give the changed package a new version number", v.ContentDigest, info.ContentDigest)}
	}
	return true, nil
}

// Finish pushes the staged images and records the version. The staging directory is removed in every case.
//
// The images are pushed by digest only, and tagged once the version is recorded: an import that loses a race for
// its app key (another team recorded it first) moves no tag in the registry. Re-importing an unchanged version
// tags its recorded images again, which repairs tags that a cut import left unwritten.
func (im *Importer) Finish(ctx context.Context, rec *store.Import, st *Staged) (err error) {
	defer os.RemoveAll(st.Layout)
	defer func() {
		if err != nil {
			im.fail(ctx, rec, err)
		}
	}()
	key, ver := st.Info.App.Key, st.Info.App.Version
	mu, _ := im.locks.LoadOrStore(key+"@"+ver, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	popts := im.opts.Registry
	target := popts.Target
	var pushed []push.PushedImage
	if st.Unchanged {
		v, err := im.opts.Store.Version(ctx, key, ver)
		if err != nil {
			return fmt.Errorf("look up version: %w", err)
		}
		for _, i := range v.Images {
			pushed = append(pushed, push.PushedImage{Name: i.Name, Target: i.Target, Digest: i.Digest})
		}
	} else {
		rec.State = store.ImportPushing
		if err := im.opts.Store.UpdateImport(ctx, rec); err != nil {
			return fmt.Errorf("record import: %w", err)
		}
		popts.MapRef = func(name string) (string, error) { return TargetRef(target, key, name) }
		popts.Untagged = true
		res, err := push.FromLayout(ctx, st.Layout, popts)
		if err != nil {
			return fmt.Errorf("push images to %s: %w", target, err)
		}
		pushed = res.Images
		rec.State = store.ImportRecording
		if err := im.opts.Store.UpdateImport(ctx, rec); err != nil {
			return fmt.Errorf("record import: %w", err)
		}
		canonical, err := st.Info.App.Canonical()
		if err != nil {
			return fmt.Errorf("encode app model: %w", err)
		}
		v := &store.Version{Version: ver, ContentDigest: st.Info.ContentDigest, PackageDigest: st.Info.PackageDigest,
			Signer: st.Info.Signer, Size: rec.Received, Model: canonical, ImportID: rec.ID, CreatedBy: rec.UserID}
		for _, p := range res.Images {
			v.Images = append(v.Images, store.Image{Name: p.Name, Target: p.Target, Digest: p.Digest})
		}
		a := store.App{Key: key, Name: st.Info.App.Name, Description: st.Info.App.Description}
		if _, err := im.opts.Store.RecordVersion(ctx, rec.TeamID, a, v); err != nil {
			return fmt.Errorf("record version: %w", err)
		}
		logctx.From(ctx).Info("app version imported", "app", key, "version", ver, "images", len(v.Images),
			"bytesUploaded", res.BytesUploaded, "blobsSkipped", res.BlobsSkipped, "import", rec.ID)
	}
	if err := push.Tag(ctx, pushed, im.opts.Registry); err != nil {
		return fmt.Errorf("the version is recorded, but tagging its images failed (import the package again to retry): %w", err)
	}
	rec.State, rec.Error = store.ImportDone, ""
	if err := im.opts.Store.UpdateImport(context.WithoutCancel(ctx), rec); err != nil {
		return fmt.Errorf("record import: %w", err)
	}
	return nil
}

// TargetRef names an app's image in the cluster registry: HOST/apps/KEY/<upstream registry>/<path>:<tag>.
func TargetRef(host, key, name string) (string, error) {
	l, err := images.LocalRef(name, host)
	if err != nil {
		return "", err
	}
	return host + "/apps/" + key + strings.TrimPrefix(l, host), nil
}

func (im *Importer) fail(ctx context.Context, rec *store.Import, cause error) {
	msg := cause.Error()
	if len(msg) > MaxErrorLength {
		msg = clip.Prefix(msg, MaxErrorLength-len("…")) + "…"
	}
	rec.State, rec.Error = store.ImportFailed, msg
	if err := im.opts.Store.UpdateImport(context.WithoutCancel(ctx), rec); err != nil {
		logctx.From(ctx).Error("record failed import", "import", rec.ID, "err", err)
	}
	if _, err := im.opts.Store.PruneFailedImports(context.WithoutCancel(ctx), rec.TeamID, KeepFailed); err != nil {
		logctx.From(ctx).Warn("prune failed imports", "err", err)
	}
	logctx.From(ctx).Warn("import failed", "import", rec.ID, "file", rec.FileName, "err", msg)
}

// Recover runs at start-up: imports that a previous process left running can never finish, so they are marked
// failed with a note to import again, and their staging directories are removed.
func (im *Importer) Recover(ctx context.Context) error {
	list, err := im.opts.Store.UnfinishedImports(ctx)
	if err != nil {
		return fmt.Errorf("list imports: %w", err)
	}
	for i := range list {
		rec := &list[i]
		rec.State, rec.Error = store.ImportFailed, "interrupted: the server stopped during the import; import the package again"
		if err := im.opts.Store.UpdateImport(ctx, rec); err != nil {
			return fmt.Errorf("mark interrupted import %s: %w", rec.ID, err)
		}
		logctx.From(ctx).Info("interrupted import marked failed", "import", rec.ID)
	}
	entries, err := os.ReadDir(im.opts.Dir)
	if err != nil {
		return fmt.Errorf("read import staging directory: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(im.opts.Dir, e.Name())); err != nil {
			return fmt.Errorf("remove stale staging %s: %w", e.Name(), err)
		}
	}
	return nil
}

// TooLargeError refuses a package over the size limit.
type TooLargeError struct {
	Limit, Size int64
	// Unpacked is set when Size is what the package's manifest declares it unpacks to, not bytes received.
	Unpacked bool
}

func (e *TooLargeError) Error() string {
	if e.Unpacked {
		return fmt.Sprintf("package too large: its manifest says it unpacks to %s, over the limit of %d bytes (%s); raise it with wutong serve --max-upload, or split the app",
			humanBytes(max(e.Size, 0)), e.Limit, humanBytes(e.Limit))
	}
	return fmt.Sprintf("package too large: the limit is %d bytes (%s) and this one is larger; raise it with wutong serve --max-upload, or split the app",
		e.Limit, humanBytes(e.Limit))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// countingReader counts bytes, refuses more than limit, reports progress at most every interval, and keeps the
// first error of the underlying reader.
type countingReader struct {
	r      io.Reader
	err    error
	n      int64
	limit  int64
	every  time.Duration
	last   time.Time
	report func(n int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && c.err == nil {
		c.err = err
	}
	c.n += int64(n)
	if c.n > c.limit {
		return n, &TooLargeError{Limit: c.limit, Size: c.n}
	}
	if now := time.Now(); now.Sub(c.last) >= c.every {
		c.last = now
		c.report(c.n)
	}
	return n, err
}

func (c *countingReader) flush() { c.report(c.n) }
