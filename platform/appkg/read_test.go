package appkg

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
)

// Inspect reads the head only: it works on a package cut in half, where Verify fails.
func TestInspectReadsOnlyTheHead(t *testing.T) {
	fx := newFixture(t, "shop.yaml", "", 2<<20, webImage, dbImage) // ~12 MiB of incompressible layers
	info := fx.build(t, nil)
	data := readAll(t, info.Path)
	cut := filepath.Join(fx.dir, "cut.wtapp")
	if err := os.WriteFile(cut, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Inspect(t.Context(), cut, fx.trusted())
	if err != nil {
		t.Fatalf("inspect of a package cut after its head: %v", err)
	}
	if !got.Trusted || got.PackageDigest != info.PackageDigest || got.ContentDigest != info.ContentDigest ||
		!reflect.DeepEqual(got.Images, info.Images) || got.App.Key != "shop" || got.Path != cut || got.Size != int64(len(data)/2) {
		t.Errorf("inspect: %+v\nbuild: %+v", got, info)
	}
	_, err = Verify(t.Context(), cut, fx.trusted())
	wantIntegrity(t, err, "truncated")
}

// flipInTar rewrites a package with one byte of an entry's content flipped inside the tar stream, so that the
// archive decompresses fine and only that entry's sha256 differs.
func flipInTar(t *testing.T, src, dst, entry string) {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(readAll(t, src)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	zr.Close()
	if err != nil {
		t.Fatal(err)
	}
	cr := &countingReader{r: bytes.NewReader(raw)}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("entry %s not found: %v", entry, err)
		}
		if h.Name == entry {
			raw[cr.n+h.Size/2] ^= 0x01
			break
		}
	}
	var out bytes.Buffer
	zw, _ := zstd.NewWriter(&out)
	zw.Write(raw)
	zw.Close()
	if err := os.WriteFile(dst, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// largestBlob is the path of the package's largest blob entry (a layer).
func largestBlob(t *testing.T, path string, ro bundle.ReadOptions) string {
	t.Helper()
	r, _, err := bundle.Open(path, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	best := bundle.Entry{}
	for _, e := range r.Manifest.Entries {
		if e.Size > best.Size {
			best = e
		}
	}
	return best.Path
}

func TestVerifyCatchesDamage(t *testing.T) {
	fx := newFixture(t, "shop.yaml", "", 64<<10, webImage, dbImage)
	info := fx.build(t, nil)

	layer := largestBlob(t, info.Path, fx.trusted())
	bad := filepath.Join(fx.dir, "bad.wtapp")
	flipInTar(t, info.Path, bad, layer)
	_, err := Verify(t.Context(), bad, fx.trusted())
	wantIntegrity(t, err, "sha256 mismatch")
	var ie *bundle.IntegrityError
	if errors.As(err, &ie) && ie.Entry != layer {
		t.Errorf("error names entry %q, want %q", ie.Entry, layer)
	}
	// Inspect does not read that far.
	if _, err := Inspect(t.Context(), bad, fx.trusted()); err != nil {
		t.Errorf("inspect: %v", err)
	}

	// A flipped byte in the compressed stream is caught too.
	data := readAll(t, info.Path)
	data[len(data)*2/3] ^= 0x40
	os.WriteFile(bad, data, 0o644)
	_, err = Verify(t.Context(), bad, fx.trusted())
	wantIntegrity(t, err)
}

func TestTrust(t *testing.T) {
	fx := newFixture(t, "shop.yaml", "", 1<<10, webImage, dbImage)
	signed := fx.build(t, nil)
	unsigned := fx.build(t, func(o *BuildOptions) { o.Key = nil; o.Output = filepath.Join(fx.dir, "unsigned.wtapp") })
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	trustDir := t.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(fx.pub)
	os.WriteFile(filepath.Join(trustDir, "release.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)

	readers := map[string]func(path string, ro bundle.ReadOptions) (*Info, error){
		"inspect": func(p string, ro bundle.ReadOptions) (*Info, error) { return Inspect(t.Context(), p, ro) },
		"verify":  func(p string, ro bundle.ReadOptions) (*Info, error) { return Verify(t.Context(), p, ro) },
		"open": func(p string, ro bundle.ReadOptions) (*Info, error) {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			pkg, err := Open(t.Context(), f, ro)
			if err != nil {
				return nil, err
			}
			defer pkg.Close()
			return &pkg.Info, pkg.ExtractLayout(t.Context(), filepath.Join(t.TempDir(), "oci"))
		},
	}
	for name, read := range readers {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				what, path  string
				ro          bundle.ReadOptions
				wantTrust   string // a *TrustError mentioning this; empty: accepted
				trusted     bool
				trustReason string
			}{
				{what: "unsigned", path: unsigned.Path, ro: noTrust(t), wantTrust: "unsigned"},
				{what: "unsigned, insecure", path: unsigned.Path, ro: bundle.ReadOptions{TrustDir: t.TempDir(), InsecureSkipVerify: true}, trustReason: "unsigned"},
				{what: "unknown signer", path: signed.Path, ro: bundle.ReadOptions{Keys: []ed25519.PublicKey{otherPub}}, wantTrust: "not a trusted key"},
				{what: "no key configured", path: signed.Path, ro: noTrust(t), wantTrust: "no trusted key"},
				{what: "unknown signer, insecure", path: signed.Path, ro: bundle.ReadOptions{Keys: []ed25519.PublicKey{otherPub}, InsecureSkipVerify: true}, trustReason: "not a trusted key"},
				{what: "trusted by --key", path: signed.Path, ro: fx.trusted(), trusted: true},
				{what: "trusted by the trust dir", path: signed.Path, ro: bundle.ReadOptions{TrustDir: trustDir}, trusted: true},
			} {
				info, err := read(tc.path, tc.ro)
				if tc.wantTrust != "" {
					var te *bundle.TrustError
					if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.wantTrust) {
						t.Errorf("%s: want a TrustError mentioning %q, got %v", tc.what, tc.wantTrust, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", tc.what, err)
					continue
				}
				if info.Trusted != tc.trusted || !strings.Contains(info.TrustProblem, tc.trustReason) || (tc.trusted && info.Signer != bundle.Fingerprint(fx.pub)) {
					t.Errorf("%s: trusted %v signer %q problem %q", tc.what, info.Trusted, info.Signer, info.TrustProblem)
				}
			}
		})
	}
}

func TestOpenExtractLayout(t *testing.T) {
	fx := newFixture(t, "shop.yaml", "", 8<<10, webImage, dbImage)
	info := fx.build(t, nil)
	f, err := os.Open(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkg, err := Open(t.Context(), f, fx.trusted())
	if err != nil {
		t.Fatal(err)
	}
	defer pkg.Close()
	if pkg.Info.Path != "" || pkg.Info.PackageDigest != info.PackageDigest || !reflect.DeepEqual(pkg.Info.Images, info.Images) || !pkg.Info.Trusted {
		t.Errorf("open info %+v", pkg.Info)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := pkg.ExtractLayout(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	l, err := images.OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Images()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(info.Images) {
		t.Fatalf("layout images %v", got)
	}
	for _, li := range got {
		want := imageByName(t, info.Images, li.Name)
		if li.Descriptor.Digest.String() != want.Digest || len(li.Platforms) != len(want.Arches) {
			t.Errorf("%s: layout %s %v, package %s %v", li.Name, li.Descriptor.Digest, li.Platforms, want.Digest, want.Arches)
		}
		for a, d := range li.Platforms {
			if want.Arches[a] != d.String() {
				t.Errorf("%s %s: %s, want %s", li.Name, a, d, want.Arches[a])
			}
		}
	}
	if err := pkg.ExtractLayout(t.Context(), t.TempDir()); err == nil {
		t.Error("a second ExtractLayout succeeded on a consumed stream")
	}
}

func TestExtractLayoutLeavesNothingOnDamage(t *testing.T) {
	fx := newFixture(t, "shop.yaml", "", 64<<10, webImage, dbImage)
	info := fx.build(t, nil)
	bad := filepath.Join(fx.dir, "bad.wtapp")
	flipInTar(t, info.Path, bad, largestBlob(t, info.Path, fx.trusted()))

	extract := func(path, dir string) error {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		pkg, err := Open(t.Context(), f, fx.trusted())
		if err != nil {
			return err
		}
		defer pkg.Close()
		return pkg.ExtractLayout(t.Context(), dir)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	wantIntegrity(t, extract(bad, fresh), "sha256 mismatch")
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a failed extract left %s behind", fresh)
	}
	empty := t.TempDir()
	wantIntegrity(t, extract(bad, empty), "sha256 mismatch")
	if got := dirNames(t, empty); len(got) != 0 {
		t.Errorf("a failed extract left %v in an existing dir", got)
	}
	busy := t.TempDir()
	os.WriteFile(filepath.Join(busy, "keep"), []byte("x"), 0o644)
	if err := extract(info.Path, busy); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("extract into a non-empty dir: %v", err)
	}
	if got := dirNames(t, busy); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("a refused extract touched the dir: %v", got)
	}
}
