package build

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
)

var arches = []string{"amd64", "arm64", "loong64"}

// fixture holds sources of every kind, served or written by the test, and a bundle.yaml that uses them.
type fixture struct {
	dir      string
	spec     string
	key      ed25519.PrivateKey
	want     map[string]v1.ImageIndex // image name -> the source index (filtered to the arches asked for)
	wantBlob map[string]bool          // every blob digest the bundle must hold
	files    map[string][]byte        // entry path -> content
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{dir: t.TempDir(), want: map[string]v1.ImageIndex{}, wantBlob: map[string]bool{}, files: map[string][]byte{}}
	_, fx.key, _ = ed25519.GenerateKey(rand.Reader)

	// Images that share base layers: one from a real registry, one from an OCI layout, one from a docker archive.
	base := imagestest.RandomLayers(t, 2, 64<<10)
	host := imagestest.NewRegistry(t)
	regIdx := imagestest.NewIndex(t, arches, base, 1, 32<<10)
	imagestest.Push(t, host+"/wutong/app:v1", regIdx)
	fx.want[host+"/wutong/app:v1"] = regIdx

	layIdx := imagestest.NewIndex(t, append([]string{"s390x"}, arches...), base, 1, 32<<10) // s390x must be dropped
	lp, err := layout.Write(filepath.Join(fx.dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(layIdx, layout.WithAnnotations(map[string]string{images.AnnotationRefName: "example.com/tool:2"})); err != nil {
		t.Fatal(err)
	}
	fx.want["example.com/tool:2"] = layIdx

	single := imagestest.NewImage(t, "amd64", base[:1])
	tag, _ := name.NewTag("example.com/single:1")
	if err := tarball.WriteToFile(filepath.Join(fx.dir, "single.tar"), tag, single); err != nil {
		t.Fatal(err)
	}

	// Files: local, over HTTP with a sha256, and an OCI artifact.
	local := []byte("#!/bin/sh\necho kubeadm\n")
	os.WriteFile(filepath.Join(fx.dir, "kubeadm"), local, 0o755)
	fx.files["files/amd64/kubeadm"] = local
	served := make([]byte, 300<<10)
	rand.Read(served)
	fx.files["files/arm64/crictl.tgz"] = served
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/crictl.tgz" {
			w.Write(served)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	artifact := []byte("cni plugins, as an OCI artifact")
	fx.files["files/all/cni.tgz"] = artifact
	art := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	art, _ = mutate.Append(art, mutate.Addendum{Layer: static.NewLayer(artifact, "application/vnd.wutong.file"), Annotations: map[string]string{"org.opencontainers.image.title": "cni.tgz"}})
	artRef, _ := name.ParseReference(host + "/artifacts/cni:v1")
	if err := remote.Write(artRef, art); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fx.dir, "flannel.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-flannel}\n"), 0o644)
	fx.files["manifests/flannel.yaml"] = []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-flannel}\n")
	os.WriteFile(filepath.Join(fx.dir, "mysql-8.0.wtapp"), []byte("opaque app package"), 0o644)
	fx.files["apps/mysql-8.0.wtapp"] = []byte("opaque app package")

	fx.spec = fmt.Sprintf(`apiVersion: wutong.io/v1alpha1
kind: BundleSpec
name: it
version: 1.0.0
arches: [amd64, arm64, loong64]
kubernetesVersion: v1.37.2
files:
  - {name: kubeadm, arch: amd64, path: kubeadm}
  - {name: crictl.tgz, arch: arm64, url: "%s/crictl.tgz", sha256: %s}
  - {name: cni.tgz, oci: "%s/artifacts/cni:v1"}
images:
  - ref: %s/wutong/app:v1
  - {name: example.com/tool:2, ociLayout: layout, refName: "example.com/tool:2"}
  - {name: example.com/single:1, dockerArchive: single.tar, arches: [amd64]}
manifests:
  - path: flannel.yaml
apps:
  - path: mysql-8.0.wtapp
`, srv.URL, sha(served), host, host)
	return fx
}

func (fx *fixture) build(t *testing.T, out string, mutateSpec func(string) string, split int64) (*Result, error) {
	t.Helper()
	src := fx.spec
	if mutateSpec != nil {
		src = mutateSpec(src)
	}
	p := filepath.Join(fx.dir, "bundle.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := LoadSpec(p)
	if err != nil {
		return nil, err
	}
	return Build(context.Background(), Options{Spec: spec, OutDir: out, Key: fx.key, SplitSize: split})
}

func TestBuildVerifyExtractRoundTrip(t *testing.T) {
	fx := newFixture(t)
	for _, split := range []int64{0, 256 << 10} {
		t.Run(fmt.Sprintf("split=%d", split), func(t *testing.T) {
			out := t.TempDir()
			res, err := fx.build(t, out, nil, split)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if split > 0 && len(res.Parts) < 2 {
				t.Fatalf("want several parts, got %v", res.Parts)
			}
			opts := bundle.ReadOptions{Keys: []ed25519.PublicKey{fx.key.Public().(ed25519.PublicKey)}}
			r, _, err := bundle.Open(res.Archive, opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := r.Verify(context.Background()); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			r.Close()
			r, _, err = bundle.Open(res.Archive, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			dest := filepath.Join(t.TempDir(), "x")
			if _, err := bundle.Extract(context.Background(), r, dest); err != nil {
				t.Fatalf("Extract: %v", err)
			}
			fx.check(t, r.Manifest, dest)
			if ents, _ := os.ReadDir(out); len(ents) != max(1, len(res.Parts)) {
				t.Fatalf("out dir holds %d entries, want only the archive or its parts", len(ents))
			}
		})
	}
}

// check compares the extracted bundle with the sources: every image's per-arch manifest digest, every blob's
// content, dedup of shared layers, and every file's bytes.
func (fx *fixture) check(t *testing.T, m *bundle.Manifest, dest string) {
	t.Helper()
	l, err := layout.FromPath(filepath.Join(dest, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := l.ImageIndex()
	gotIM, _ := got.IndexManifest()
	names := map[string]v1.Descriptor{}
	for _, d := range gotIM.Manifests {
		names[d.Annotations[images.AnnotationRefName]] = d
	}
	for nm, srcIdx := range fx.want {
		d, ok := names[nm]
		if !ok {
			t.Fatalf("image %s missing from the bundle's layout (have %v)", nm, names)
		}
		bIdx, err := l.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		idx, err := bIdx.ImageIndex(d.Digest)
		if err != nil {
			t.Fatalf("%s: %v", nm, err)
		}
		wantDigests, err := images.ArchDigests(srcIdx)
		if err != nil {
			t.Fatal(err)
		}
		gotDigests, err := images.ArchDigests(idx)
		if err != nil {
			t.Fatal(err)
		}
		if len(gotDigests) != len(arches) {
			t.Fatalf("%s: bundle has arches %v, want exactly %v", nm, gotDigests, arches)
		}
		for _, a := range arches {
			if gotDigests[a] != wantDigests[a] {
				t.Fatalf("%s %s: digest %s in the bundle, %s at the source", nm, a, gotDigests[a], wantDigests[a])
			}
			img, _ := idx.Image(gotDigests[a])
			ls, _ := img.Layers()
			for _, layer := range ls {
				dg, _ := layer.Digest()
				fx.wantBlob[dg.Hex] = true
				// Read every layer back and let ggcr check its digest.
				rc, err := layer.Compressed()
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
				if err != nil {
					t.Fatalf("%s %s layer %s: %v", nm, a, dg, err)
				}
			}
		}
		info := findImage(m, nm)
		if info == nil || info.Digest != d.Digest.String() {
			t.Fatalf("manifest image record for %s = %+v, layout says %s", nm, info, d.Digest)
		}
	}
	// Shared layers are stored once: each distinct digest is one file, and the base layers are shared by all.
	ents, _ := os.ReadDir(filepath.Join(dest, "oci", "blobs", "sha256"))
	seen := map[string]bool{}
	for _, e := range ents {
		seen[e.Name()] = true
	}
	for dg := range fx.wantBlob {
		if !seen[dg] {
			t.Fatalf("layer %s missing", dg)
		}
	}
	// 2 shared + 3+3 own layers (+1 single's base is shared) = 8 layers; then configs, manifests and indexes.
	if len(fx.wantBlob) != 8 {
		t.Fatalf("want 8 distinct layers across all images, got %d", len(fx.wantBlob))
	}
	for p, want := range fx.files {
		got, err := os.ReadFile(filepath.Join(dest, p))
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s: content differs (%v)", p, err)
		}
	}
	if findImage(m, "example.com/single:1") == nil || len(findImage(m, "example.com/single:1").Arches) != 1 {
		t.Fatalf("single-arch image not recorded with exactly one arch: %+v", findImage(m, "example.com/single:1"))
	}
}

func findImage(m *bundle.Manifest, nm string) *bundle.Image {
	for i := range m.Images {
		if m.Images[i].Name == nm {
			return &m.Images[i]
		}
	}
	return nil
}

func TestBuildBadInputs(t *testing.T) {
	fx := newFixture(t)
	cases := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"unknown arch", func(s string) string {
			return strings.Replace(s, "arches: [amd64, arm64, loong64]", "arches: [amd64, arm64, mips64]", 1)
		}, `bundle.yaml:5: arches[2]: unknown arch "mips64"`},
		{"source image without a requested platform", func(s string) string {
			return strings.Replace(s, "arches: [amd64]}", "arches: [amd64, arm64]}", 1)
		}, "arm64"},
		{"unreachable registry", func(s string) string {
			return strings.Replace(s, "  - {name: example.com/tool:2", "  - ref: 127.0.0.1:1/nothing/here:v1\n  - {name: example.com/tool:2", 1)
		}, "127.0.0.1:1/nothing/here:v1"},
		{"unknown tag", func(s string) string { return strings.Replace(s, "/wutong/app:v1", "/wutong/app:nope", 1) }, "app:nope"},
		{"unreachable url", func(s string) string {
			return regexpReplace(s, `url: "http://[^/]+/crictl.tgz"`, `url: "http://127.0.0.1:1/crictl.tgz"`)
		}, "http://127.0.0.1:1/crictl.tgz: unreachable"},
		{"url sha256 mismatch", func(s string) string {
			return regexpReplace(s, `sha256: [0-9a-f]{64}`, `sha256: "`+strings.Repeat("0", 64)+`"`)
		}, "sha256 mismatch: expected 0000"},
		{"missing local file", func(s string) string { return strings.Replace(s, "path: kubeadm", "path: kubeadm.missing", 1) }, "kubeadm.missing"},
		{"missing layout", func(s string) string { return strings.Replace(s, "ociLayout: layout", "ociLayout: nolayout", 1) }, "nolayout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			_, err := fx.build(t, out, tc.edit, 0)
			if err == nil {
				t.Fatal("bad input accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Fatalf("failed build left %d files in %s", len(ents), out)
			}
		})
	}
}

func TestBuildRefusesToOverwrite(t *testing.T) {
	fx := newFixture(t)
	out := t.TempDir()
	if _, err := fx.build(t, out, nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.build(t, out, nil, 0); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second build without --force: %v", err)
	}
}

// TestBuildDiskFull fills a small tmpfs: the error names the problem and nothing is left behind.
func TestBuildDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	fx := newFixture(t)
	out := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", out).Run(); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", out).Run() })
	_, err := fx.build(t, out, nil, 0)
	var df *bundle.DiskFullError
	if err == nil || !(errors.As(err, &df) || strings.Contains(err.Error(), "disk full")) {
		t.Fatalf("want a disk-full error, got %v", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("left %d files on the full disk", len(ents))
	}
}

func regexpReplace(s, pattern, repl string) string {
	return regexp.MustCompile(pattern).ReplaceAllString(s, repl)
}
