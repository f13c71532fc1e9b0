package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

type content struct {
	path   string
	data   []byte
	mode   uint32
	target string // symlink
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func items(cs []content) []Item {
	var out []Item
	for _, c := range cs {
		c := c
		if c.target != "" {
			out = append(out, Item{Entry: Entry{Path: c.path, Type: TypeSymlink, Target: c.target}})
			continue
		}
		mode := c.mode
		if mode == 0 {
			mode = 0o644
		}
		out = append(out, Item{
			Entry: Entry{Path: c.path, Size: int64(len(c.data)), SHA256: sum(c.data), Mode: mode},
			Open:  func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(c.data)), nil },
		})
	}
	return out
}

func testManifest() *Manifest {
	return &Manifest{Kind: KindBundle, Name: "demo", Version: "0.1.0", Arches: []string{"amd64"}, Created: time.Unix(1700000000, 0).UTC()}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sampleContent() []content {
	return []content{
		{path: "oci/oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{path: "files/amd64/wtctl", data: randBytes(3 << 20), mode: 0o755},
		{path: "files/all/readme.txt", data: bytes.Repeat([]byte("wutong "), 10000)},
		{path: "files/all/empty", data: nil},
		{path: "files/all/link", target: "readme.txt"},
	}
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func build(t *testing.T, key ed25519.PrivateKey, cs []content) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, testManifest(), items(cs), WriteOptions{Key: key}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	key := newKey(t)
	cs := sampleContent()
	archive := build(t, key, cs)

	var progressed int64
	r, err := NewReader(bytes.NewReader(archive), ReadOptions{Keys: []ed25519.PublicKey{pub(key)}, Progress: func(n int64) { progressed += n }})
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	if !r.Trusted || r.SignerKeyID != Fingerprint(pub(key)) {
		t.Fatalf("trusted=%v signer=%s", r.Trusted, r.SignerKeyID)
	}
	for i := 0; ; i++ {
		e, rd, err := r.Next()
		if err == io.EOF {
			if i != len(cs) {
				t.Fatalf("got %d entries, want %d", i, len(cs))
			}
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		got, err := io.ReadAll(rd)
		if err != nil {
			t.Fatalf("read %s: %v", e.Path, err)
		}
		if e.Path != cs[i].path || !bytes.Equal(got, cs[i].data) {
			t.Fatalf("entry %d: got %s (%d bytes), want %s", i, e.Path, len(got), cs[i].path)
		}
	}
	if want := r.Manifest.PayloadSize(); progressed != want {
		t.Fatalf("progress reported %d bytes, want %d", progressed, want)
	}
}

func TestExtract(t *testing.T) {
	key := newKey(t)
	cs := sampleContent()
	archive := build(t, key, cs)
	dest := filepath.Join(t.TempDir(), "out")
	opts := ReadOptions{Keys: []ed25519.PublicKey{pub(key)}}

	r, err := NewReader(bytes.NewReader(archive), opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Extract(context.Background(), r, dest)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if res.Entries != len(cs) {
		t.Fatalf("extracted %d entries, want %d", res.Entries, len(cs))
	}
	for _, c := range cs {
		p := filepath.Join(dest, filepath.FromSlash(c.path))
		if c.target != "" {
			if tg, err := os.Readlink(p); err != nil || tg != c.target {
				t.Fatalf("%s: link %q, %v", c.path, tg, err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, c.data) {
			t.Fatalf("%s: content differs (%v)", c.path, err)
		}
		st, _ := os.Stat(p)
		if want := c.mode; want != 0 && uint32(st.Mode().Perm()) != want {
			t.Fatalf("%s: mode %o, want %o", c.path, st.Mode().Perm(), want)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, ManifestName)); err != nil {
		t.Fatalf("manifest not written: %v", err)
	}

	// A re-run on the finished directory is a no-op.
	r2, _ := NewReader(bytes.NewReader(archive), opts)
	res, err = Extract(context.Background(), r2, dest)
	if err != nil || !res.AlreadyDone {
		t.Fatalf("re-run: %+v, %v", res, err)
	}

	// A leftover temp dir from an interrupted run is cleaned and the extraction completes.
	dest2 := filepath.Join(filepath.Dir(dest), "again")
	leftover := filepath.Join(filepath.Dir(dest), ".again.wtctl-extract")
	os.MkdirAll(filepath.Join(leftover, "files"), 0o755)
	os.WriteFile(filepath.Join(leftover, "files", "junk"), []byte("half"), 0o644)
	r3, _ := NewReader(bytes.NewReader(archive), opts)
	if _, err := Extract(context.Background(), r3, dest2); err != nil {
		t.Fatalf("extract after interruption: %v", err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover temp dir still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dest2, "files", "junk")); !os.IsNotExist(err) {
		t.Fatal("junk from the interrupted run ended up in the result")
	}

	// A non-empty foreign directory is refused.
	r4, _ := NewReader(bytes.NewReader(archive), opts)
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "x"), nil, 0o644)
	if _, err := Extract(context.Background(), r4, foreign); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("want refusal of non-empty dest, got %v", err)
	}
}

func TestKeygenAndSignature(t *testing.T) {
	dir := t.TempDir()
	priv, pubp := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub")
	fp, err := GenerateKey(priv, pubp)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(priv)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %o, want 0600", st.Mode().Perm())
	}
	if _, err := GenerateKey(priv, pubp); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	k, err := LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := LoadPublicKey(pubp)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(p) != fp || !bytes.Equal(pub(k), p) {
		t.Fatal("loaded keys do not match the generated pair")
	}
	os.Chmod(priv, 0o644)
	if _, err := LoadPrivateKey(priv); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	// Trust dir.
	td := t.TempDir()
	data, _ := os.ReadFile(pubp)
	os.WriteFile(filepath.Join(td, "release.pem"), data, 0o644)
	archive := build(t, k, sampleContent())
	r, err := NewReader(bytes.NewReader(archive), ReadOptions{TrustDir: td})
	if err != nil {
		t.Fatalf("trust dir key not used: %v", err)
	}
	if err := r.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// rawArchive writes an archive by hand, so tests can produce what Write never would.
func rawArchive(t testing.TB, key ed25519.PrivateKey, m *Manifest, body func(tw *tar.Writer)) []byte {
	t.Helper()
	mb, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := Sign(mb, key)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range []struct {
		n string
		b []byte
	}{{ManifestName, mb}, {SignatureName, sb}} {
		tw.WriteHeader(&tar.Header{Name: e.n, Size: int64(len(e.b)), Mode: 0o644, Typeflag: tar.TypeReg})
		tw.Write(e.b)
	}
	body(tw)
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func reg(tw *tar.Writer, name string, data []byte) {
	tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(data)), Mode: 0o644, Typeflag: tar.TypeReg})
	tw.Write(data)
}

func fileEntry(p string, data []byte) Entry {
	return Entry{Path: p, Size: int64(len(data)), SHA256: sum(data), Mode: 0o644}
}

func TestBadArchives(t *testing.T) {
	key, other := newKey(t), newKey(t)
	trusted := ReadOptions{Keys: []ed25519.PublicKey{pub(key)}}
	insecure := ReadOptions{InsecureSkipVerify: true}
	good := build(t, key, sampleContent())
	a, b := []byte("alpha"), []byte("bravo")
	withEntries := func(es ...Entry) *Manifest { m := testManifest(); m.APIVersion = APIVersion; m.Entries = es; return m }

	edited := func() []byte {
		// Re-sign nothing: change one entry's declared sha256 in the manifest and keep the old signature.
		m := withEntries(fileEntry("a", a))
		mb, _ := m.Marshal()
		sb, _ := Sign(mb, key)
		m.Entries[0].SHA256 = sum([]byte("other"))
		mb2, _ := m.Marshal()
		var buf bytes.Buffer
		zw, _ := zstd.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		reg(tw, ManifestName, mb2)
		reg(tw, SignatureName, sb)
		reg(tw, "a", a)
		tw.Close()
		zw.Close()
		return buf.Bytes()
	}()

	cases := []struct {
		name    string
		archive []byte
		opts    ReadOptions
		want    string // substring of the error
		kind    any    // pointer to the expected error type
	}{
		{"signed with another key", build(t, other, sampleContent()), trusted, "not a trusted key", new(*TrustError)},
		{"unsigned", build(t, nil, sampleContent()), trusted, "unsigned", new(*TrustError)},
		{"no trusted key configured", good, ReadOptions{TrustDir: t.TempDir()}, "no trusted key", new(*TrustError)},
		{"edited manifest", edited, trusted, "no longer matches its signature", new(*IntegrityError)},
		{"edited manifest, insecure", edited, insecure, "sha256 mismatch", new(*IntegrityError)},
		{"truncated", good[:len(good)*2/3], trusted, "", new(*IntegrityError)},
		{"truncated at the very end", good[:len(good)-3], trusted, "", new(*IntegrityError)},
		{"not an archive", []byte("hello world, not zstd"), trusted, "", new(*IntegrityError)},
		{"dotdot path", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) { reg(tw, "../evil", a) }), trusted, "climbs out", new(*UnsafeEntryError)},
		{"absolute path", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) { reg(tw, "/etc/evil", a) }), trusted, "absolute", new(*UnsafeEntryError)},
		{"symlink escape", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "x/l", Linkname: "../../etc", Typeflag: tar.TypeSymlink})
		}), trusted, "escapes", new(*UnsafeEntryError)},
		{"absolute symlink", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "l", Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink})
		}), trusted, "absolute", new(*UnsafeEntryError)},
		{"hardlink escape", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "h", Linkname: "../../etc/shadow", Typeflag: tar.TypeLink})
		}), trusted, "escapes", new(*UnsafeEntryError)},
		{"device node", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3})
		}), trusted, "device", new(*UnsafeEntryError)},
		{"larger than declared", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) {
			reg(tw, "a", bytes.Repeat(a, 1000))
		}), trusted, "size mismatch", new(*IntegrityError)},
		{"corrupt content", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) { reg(tw, "a", []byte("alphA")) }), trusted, "sha256 mismatch", new(*IntegrityError)},
		{"extra entry", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) { reg(tw, "a", a); reg(tw, "b", b) }), trusted, "unexpected entry", new(*IntegrityError)},
		{"missing entry", rawArchive(t, key, withEntries(fileEntry("a", a), fileEntry("b", b)), func(tw *tar.Writer) { reg(tw, "a", a) }), trusted, `entry "b": missing`, new(*IntegrityError)},
		{"reordered entries", rawArchive(t, key, withEntries(fileEntry("a", a), fileEntry("b", b)), func(tw *tar.Writer) { reg(tw, "b", b); reg(tw, "a", a) }), trusted, `entry "a": missing`, new(*IntegrityError)},
		{"duplicate entry", rawArchive(t, key, withEntries(fileEntry("a", a), fileEntry("b", b)), func(tw *tar.Writer) { reg(tw, "a", a); reg(tw, "a", a) }), trusted, "", new(*IntegrityError)},
		{"hostile path in manifest", rawArchive(t, key, withEntries(fileEntry("../evil", a)), func(tw *tar.Writer) {}), trusted, "climbs out", new(*IntegrityError)},
		{"symlink chain escape", rawArchive(t, key, withEntries(
			Entry{Path: "d/l", Type: TypeSymlink, Target: ".."}, fileEntry("d/l/x", a)), func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "d/l", Linkname: "..", Typeflag: tar.TypeSymlink})
			reg(tw, "d/l/x", a)
		}), trusted, "goes through symlink", new(*UnsafeEntryError)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Verify and extract both refuse, and extraction leaves nothing behind.
			for _, mode := range []string{"verify", "extract"} {
				parent := t.TempDir()
				dest := filepath.Join(parent, "out")
				err := verifyOrExtract(mode, tc.archive, tc.opts, dest)
				if err == nil {
					t.Fatalf("%s: accepted a bad archive", mode)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%s: error %q does not mention %q", mode, err, tc.want)
				}
				if !errors.As(err, tc.kind) {
					t.Fatalf("%s: error %T (%v) is not %T", mode, err, err, tc.kind)
				}
				if ents, _ := os.ReadDir(parent); len(ents) != 0 {
					t.Fatalf("%s: left %d files behind in %s", mode, len(ents), parent)
				}
			}
		})
	}
}

func TestFlippedBitsAreDetected(t *testing.T) {
	key := newKey(t)
	good := build(t, key, sampleContent())
	opts := ReadOptions{Keys: []ed25519.PublicKey{pub(key)}}
	// Flip one bit at many positions spread over the whole archive; every one must be refused.
	for i := 0; i < 64; i++ {
		pos := i * (len(good) - 1) / 63
		bad := bytes.Clone(good)
		bad[pos] ^= 1 << (i % 8)
		r, err := NewReader(bytes.NewReader(bad), opts)
		if err == nil {
			err = r.Verify(context.Background())
			r.Close()
		}
		if err == nil {
			t.Fatalf("flipped bit at byte %d of %d went unnoticed", pos, len(good))
		}
	}
}

func TestWriteRefusesChangedSource(t *testing.T) {
	its := items(sampleContent())
	its[1].SHA256 = sum([]byte("something else"))
	err := Write(context.Background(), io.Discard, testManifest(), its, WriteOptions{})
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Entry != "files/amd64/wtctl" {
		t.Fatalf("want integrity error naming the entry, got %v", err)
	}
}

func TestExtractChecksFreeSpace(t *testing.T) {
	key := newKey(t)
	m := testManifest()
	m.APIVersion = APIVersion
	m.Entries = []Entry{{Path: "huge", Size: 1 << 60, SHA256: sum(nil), Mode: 0o644}}
	archive := rawArchive(t, key, m, func(tw *tar.Writer) {})
	r, err := NewReader(bytes.NewReader(archive), ReadOptions{Keys: []ed25519.PublicKey{pub(key)}})
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	_, err = Extract(context.Background(), r, filepath.Join(parent, "out"))
	var df *DiskFullError
	if !errors.As(err, &df) {
		t.Fatalf("want DiskFullError, got %v", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Fatal("left files behind")
	}
}

// verifyOrExtract reads archive with opts and verifies it (mode "verify"), or extracts it into dest.
func verifyOrExtract(mode string, archive []byte, opts ReadOptions, dest string) error {
	r, err := NewReader(bytes.NewReader(archive), opts)
	if err != nil {
		return err
	}
	defer r.Close()
	if mode == "verify" {
		return r.Verify(context.Background())
	}
	_, err = Extract(context.Background(), r, dest)
	return err
}
