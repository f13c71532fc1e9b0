package importer

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/images/push"
	"github.com/wutong-paas/wutong-offline/platform/appkg"
	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

type fixture struct {
	im     *Importer
	st     *store.Store
	team   int64
	user   int64
	key    ed25519.PrivateKey
	dir    string
	target string
}

func newFixture(t *testing.T, st *store.Store, maxBytes int64) *fixture {
	t.Helper()
	dir := t.TempDir()
	if _, err := bundle.GenerateKey(filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")); err != nil {
		t.Fatal(err)
	}
	priv, _ := bundle.LoadPrivateKey(filepath.Join(dir, "k.key"))
	pub, _ := bundle.LoadPublicKey(filepath.Join(dir, "k.pub"))
	ctx := context.Background()
	u := &store.User{Name: "ops", PasswordHash: "x"}
	tm := &store.Team{Name: "ops"}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTeam(ctx, tm); err != nil {
		t.Fatal(err)
	}
	target := imagestest.NewRegistry(t)
	im, err := New(Options{Store: st, Dir: filepath.Join(dir, "staging"), Trust: bundle.ReadOptions{Keys: []ed25519.PublicKey{pub}},
		Registry: push.Options{Target: target, InsecureHTTP: true, Retries: -1}, MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{im: im, st: st, team: tm.ID, user: u.ID, key: priv, dir: dir, target: target}
}

// pkg builds a signed package of app key@version with one image of layers × layerSize random bytes per arch.
func (f *fixture) pkg(t *testing.T, key, version string, layers int, layerSize int64) string {
	t.Helper()
	dir := t.TempDir()
	layout, err := images.CreateLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	img := "example.com/" + key + "/app:1"
	if _, err := layout.Append(context.Background(), img, imagestest.RandomIndex(t, []string{"amd64"}, 0, layers, layerSize), nil); err != nil {
		t.Fatal(err)
	}
	appFile := filepath.Join(dir, "app.yaml")
	os.WriteFile(appFile, fmt.Appendf(nil, "apiVersion: wutong.io/v1alpha1\nkind: App\nkey: %s\nversion: %s\ncomponents:\n  - name: app\n    image: %s\n", key, version, img), 0o644)
	info, err := appkg.Build(context.Background(), appkg.BuildOptions{AppFile: appFile, OutDir: dir, Layouts: []string{string(layout)}, Key: f.key, Arches: []string{"amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	return info.Path
}

// run imports the package at path to the end.
func (f *fixture) run(t *testing.T, path string) (*store.Import, error) {
	t.Helper()
	ctx := context.Background()
	fi, _ := os.Stat(path)
	rec, err := f.im.Begin(ctx, f.team, f.user, filepath.Base(path), fi.Size())
	if err != nil {
		return nil, err
	}
	r, _ := os.Open(path)
	defer r.Close()
	st, err := f.im.Receive(ctx, rec, r)
	if err != nil {
		return rec, err
	}
	return rec, f.im.Finish(ctx, rec, st)
}

func TestImport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st, 0)
		ctx := context.Background()
		p := f.pkg(t, "demo", "1.0.0", 2, 4096)
		rec, err := f.run(t, p)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := st.Import(ctx, rec.ID)
		if got.State != store.ImportDone || got.AppKey != "demo" || got.Received == 0 {
			t.Fatalf("import: %+v", got)
		}
		v, err := st.Version(ctx, "demo", "1.0.0")
		if err != nil || len(v.Images) != 1 || !strings.HasPrefix(v.Images[0].Target, f.target+"/apps/demo/example.com/demo/app:1") {
			t.Fatalf("version: %+v %v", v, err)
		}
		// A second identical import records nothing new.
		rec2, err := f.run(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if v2, _ := st.Version(ctx, "demo", "1.0.0"); v2.ImportID != rec.ID || rec2.State != store.ImportDone {
			t.Fatalf("re-import changed the version: %+v", v2)
		}
		if es, _ := os.ReadDir(filepath.Join(f.dir, "staging")); len(es) != 0 {
			t.Fatalf("staging left: %v", es)
		}
	})
}

func TestTargetRef(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"nginx:1.27", "10.99.0.10:5443/apps/shop/docker.io/library/nginx:1.27"},
		{"registry.k8s.io/pause:3.10", "10.99.0.10:5443/apps/shop/registry.k8s.io/pause:3.10"},
		{"localhost:5000/a/b:1", "10.99.0.10:5443/apps/shop/localhost_5000/a/b:1"},
	} {
		got, err := TargetRef("10.99.0.10:5443", "shop", c.name)
		if err != nil || got != c.want {
			t.Errorf("TargetRef(%q) = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	st := storetest.Open(t, store.DialectSQLite)
	f := newFixture(t, st, 64<<10)
	p := f.pkg(t, "big", "1.0.0", 1, 256<<10)
	// Declared too large: refused before reading.
	var tl *TooLargeError
	if _, err := f.im.Begin(context.Background(), f.team, f.user, "big.wtapp", 1<<20); !errors.As(err, &tl) || !strings.Contains(err.Error(), "64.0 KiB") {
		t.Fatalf("declared size: %v", err)
	}
	// Size not declared: refused while reading, the import failed and nothing staged.
	rec, err := f.im.Begin(context.Background(), f.team, f.user, "big.wtapp", -1)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := os.Open(p)
	defer r.Close()
	if _, err := f.im.Receive(context.Background(), rec, r); !errors.As(err, &tl) {
		t.Fatalf("undeclared size: %v", err)
	}
	got, _ := st.Import(context.Background(), rec.ID)
	if got.State != store.ImportFailed || !strings.Contains(got.Error, "too large") {
		t.Fatalf("import record: %+v", got)
	}
}

func TestRecover(t *testing.T) {
	st := storetest.Open(t, store.DialectSQLite)
	f := newFixture(t, st, 0)
	ctx := context.Background()
	rec, err := f.im.Begin(ctx, f.team, f.user, "x.wtapp", 10)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(f.dir, "staging", rec.ID, "blobs"), 0o755)
	if err := f.im.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Import(ctx, rec.ID)
	if got.State != store.ImportFailed || !strings.Contains(got.Error, "interrupted") {
		t.Fatalf("after recover: %+v", got)
	}
	if es, _ := os.ReadDir(filepath.Join(f.dir, "staging")); len(es) != 0 {
		t.Fatalf("staging left: %v", es)
	}
}

// Finding 11: when two teams race to import the first version of one app key, the loser must not move the
// winner's tags in the registry: images are pushed by digest and tagged only once the version is recorded.
func TestFirstImportRaceKeepsTheWinnersTags(t *testing.T) {
	st := storetest.Open(t, store.DialectSQLite)
	f := newFixture(t, st, 0)
	ctx := context.Background()
	other := &store.Team{Name: "rivals"}
	if err := st.CreateTeam(ctx, other); err != nil {
		t.Fatal(err)
	}
	stage := func(team int64, path string) (*store.Import, *Staged) {
		rec, err := f.im.Begin(ctx, team, f.user, filepath.Base(path), -1)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := os.Open(path)
		defer r.Close()
		staged, err := f.im.Receive(ctx, rec, r)
		if err != nil {
			t.Fatal(err)
		}
		return rec, staged
	}
	// Both pass the early check: nothing is recorded yet.
	recA, a := stage(f.team, f.pkg(t, "demo", "1.0.0", 1, 4096))
	recB, b := stage(other.ID, f.pkg(t, "demo", "1.0.0", 1, 4096)) // other random content
	if err := f.im.Finish(ctx, recA, a); err != nil {
		t.Fatal(err)
	}
	var conflict *store.ConflictError
	if err := f.im.Finish(ctx, recB, b); !errors.As(err, &conflict) {
		t.Fatalf("the loser's import: %v, want a conflict", err)
	}
	v, err := st.Version(ctx, "demo", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(v.Images[0].Target, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != v.Images[0].Digest {
		t.Fatalf("tag %s points at %s, the loser's push; the recorded version has %s", ref, desc.Digest, v.Images[0].Digest)
	}
	if b.Info.Images[0].Digest == v.Images[0].Digest {
		t.Fatal("the two packages have the same image: the test proves nothing")
	}
}

// Finding 10: the limit counts what the signed manifest says the package unpacks to, not only bytes received.
func TestDeclaredPayloadOverLimit(t *testing.T) {
	st := storetest.Open(t, store.DialectSQLite)
	f := newFixture(t, st, 128<<10)
	// 1 MiB of zeros compresses to a few hundred bytes: the upload is tiny, the payload is not.
	p := f.pkg(t, "zeros", "1.0.0", 1, 1024)
	big := withZeroBlob(t, f, p, 1<<20)
	if fi, _ := os.Stat(big); fi.Size() > 64<<10 {
		t.Fatalf("the crafted package is %d bytes; it should be far under the 128 KiB limit", fi.Size())
	}
	_, err := f.run(t, big)
	var tl *TooLargeError
	if !errors.As(err, &tl) || !tl.Unpacked || !strings.Contains(err.Error(), "unpacks to 1.0 MiB") {
		t.Fatalf("a small package declaring 1 MiB under a 128 KiB limit: %v", err)
	}
}

// Finding 5: a failed import's reason and file name are stored cut, however much the client sent.
func TestStoredTextIsBounded(t *testing.T) {
	st := storetest.Open(t, store.DialectSQLite)
	f := newFixture(t, st, 0)
	ctx := context.Background()
	rec, err := f.im.Begin(ctx, f.team, f.user, strings.Repeat("名", 200)+".wtapp", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.FileName) > MaxFileNameLength || !strings.HasPrefix(rec.FileName, "名名") {
		t.Fatalf("file name of %d bytes recorded: %q", len(rec.FileName), rec.FileName)
	}
	f.im.fail(ctx, rec, errors.New(strings.Repeat("x", 100000)))
	got, _ := st.Import(ctx, rec.ID)
	if len(got.Error) > MaxErrorLength || got.State != store.ImportFailed {
		t.Fatalf("stored error of %d bytes", len(got.Error))
	}
	// Failed imports are pruned to the newest KeepFailed of the team as more fail.
	for range KeepFailed + 5 {
		r, err := f.im.Begin(ctx, f.team, f.user, "broken.wtapp", 10)
		if err != nil {
			t.Fatal(err)
		}
		f.im.fail(ctx, r, errors.New("broken"))
	}
	if all, _ := st.Imports(ctx, nil, 0); len(all) != KeepFailed {
		t.Fatalf("%d imports kept after %d failures, want the newest %d", len(all), KeepFailed+6, KeepFailed)
	}
	for in, want := range map[string]string{"../../etc/passwd": "passwd", "C:\\Users\\a.wtapp": "a.wtapp",
		"a\x00b\nc.wtapp": "abc.wtapp", "..": "", "/": "", "": ""} {
		if got := CleanFileName(in); got != want {
			t.Errorf("CleanFileName(%q) = %q, want %q", in, got, want)
		}
	}
}

// withZeroBlob writes the package at path again with one more blob of n zero bytes, which no image refers to,
// signed with the fixture's key.
func withZeroBlob(t *testing.T, f *fixture, path string, n int64) string {
	t.Helper()
	br, _, err := bundle.Open(path, bundle.ReadOptions{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	m := *br.Manifest
	var items []bundle.Item
	for {
		e, r, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		it := bundle.BytesItem(e.Path, data)
		it.Mode = e.Mode
		items = append(items, it)
	}
	h := sha256.New()
	io.CopyN(h, zeros{}, n)
	sum := hex.EncodeToString(h.Sum(nil))
	items = append(items, bundle.Item{
		Entry: bundle.Entry{Path: "oci/blobs/sha256/" + sum, Size: n, SHA256: sum, Mode: 0o644},
		Open:  func() (io.ReadCloser, error) { return io.NopCloser(io.LimitReader(zeros{}, n)), nil },
	})
	out := filepath.Join(t.TempDir(), "zeros.wtapp")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := bundle.Write(context.Background(), w, &m, items, bundle.WriteOptions{Key: f.key}); err != nil {
		t.Fatal(err)
	}
	return out
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
