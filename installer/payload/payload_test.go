package payload

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/bundle/bundletest"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
)

// extracted builds an extracted bundle: files for two arches and all, a manifest, an app, and a layout with a
// two-arch image and an arm64-only image; m lists every file as bundle build would.
func extracted(t *testing.T) (string, *bundle.Manifest) {
	dir := t.TempDir()
	l, err := images.CreateLayout(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), "x.io/multi:1", imagestest.RandomIndex(t, []string{"amd64", "arm64"}, 1, 1, 256), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), "x.io/arm:1", imagestest.RandomIndex(t, []string{"arm64"}, 0, 1, 256), nil); err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{
		"files/amd64/kubeadm": "kubeadm amd64", "files/arm64/kubeadm": "kubeadm arm64", "files/all/cni.tgz": "cni",
		"manifests/flannel.yaml": "kind: Namespace", "apps/mysql.wtapp": "app", "sbom.json": "{}",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o755)
	}
	m := &bundle.Manifest{Arches: []string{"amd64", "arm64"}}
	m.Entries = bundletest.Entries(t, dir, 0o644)
	return dir, m
}

func TestForArch(t *testing.T) {
	dir, m := extracted(t)
	paths := func(fs []File) (out []string) {
		for _, f := range fs {
			if !strings.HasPrefix(f.Path, "oci/blobs/") {
				out = append(out, f.Path)
			}
		}
		return out
	}
	blobs := func(fs []File) (n int) {
		for _, f := range fs {
			if strings.HasPrefix(f.Path, "oci/blobs/") {
				n++
			}
		}
		return n
	}
	amd, err := ForArch(dir, m, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	arm, err := ForArch(dir, m, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	wantAmd := []string{"files/all/cni.tgz", "files/amd64/kubeadm", "manifests/flannel.yaml", "oci/index.json", "oci/oci-layout"}
	if got := paths(amd); !slices.Equal(sorted(got), wantAmd) {
		t.Errorf("amd64 files: %v", got)
	}
	if blobs(amd) != 5 || blobs(arm) != 9 {
		t.Errorf("blobs: amd64 %d (want 5), arm64 %d (want 9)", blobs(amd), blobs(arm))
	}
	for _, f := range amd {
		if f.SHA256 == "" || f.Size == 0 {
			t.Errorf("%s without size or sha256", f.Path)
		}
	}
	if Size(amd) >= Size(arm) {
		t.Errorf("the arm64 payload carries more: %d vs %d", Size(amd), Size(arm))
	}

	reg, err := ForRegistry(dir, m, "amd64")
	if err != nil || blobs(reg) != 12 || !slices.Contains(paths(reg), "files/amd64/kubeadm") || slices.Contains(paths(reg), "files/arm64/kubeadm") {
		t.Errorf("registry host: %d blobs (want all 12), files %v, %v", blobs(reg), paths(reg), err)
	}

	var nae *NoArchError
	if _, err := ForArch(dir, m, "loong64"); !errors.As(err, &nae) || !strings.Contains(err.Error(), "amd64, arm64") {
		t.Errorf("loong64: %v", err)
	}
	// A manifest that does not list a blob the layout needs is refused, not silently short.
	var short []bundle.Entry
	for _, e := range m.Entries {
		if !strings.HasPrefix(e.Path, "oci/blobs/") {
			short = append(short, e)
		}
	}
	if _, err := ForArch(dir, &bundle.Manifest{Arches: m.Arches, Entries: short}, "amd64"); err == nil || !strings.Contains(err.Error(), "does not list") {
		t.Errorf("short manifest: %v", err)
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }

func TestVerify(t *testing.T) {
	dir, m := extracted(t)
	files, err := ForArch(dir, m, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	if err := WriteList(&list, files); err != nil {
		t.Fatal(err)
	}
	back, err := ReadList(strings.NewReader(list.String()))
	if err != nil || len(back) != len(files) || back[0].SHA256 != files[0].SHA256 {
		t.Fatalf("round trip: %v %d", err, len(back))
	}
	if problems, err := Verify(t.Context(), dir, back); err != nil || len(problems) != 0 {
		t.Fatalf("intact payload: %v %v", problems, err)
	}
	os.WriteFile(filepath.Join(dir, "files/amd64/kubeadm"), []byte("kubeadm AMD64"), 0o755) // same size
	os.Remove(filepath.Join(dir, "manifests/flannel.yaml"))
	os.WriteFile(filepath.Join(dir, "files/all/cni.tgz"), []byte("cni, longer"), 0o644)
	problems, err := Verify(t.Context(), dir, back)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range problems {
		got[p.Path] = p.Reason
	}
	want := map[string]string{"files/amd64/kubeadm": "sha256", "manifests/flannel.yaml": "missing", "files/all/cni.tgz": "size"}
	if len(got) != len(want) {
		t.Fatalf("problems %v, want %v", got, want)
	}
	for p, r := range want {
		if got[p] != r {
			t.Errorf("%s: %q, want %q", p, got[p], r)
		}
	}
	for _, bad := range []string{"x 1 a", strings.Repeat("a", 64) + " -1 a", strings.Repeat("a", 64) + " 1 ../etc/passwd", strings.Repeat("a", 64) + " 1 /etc/passwd"} {
		if _, err := ReadList(strings.NewReader(bad + "\n")); err == nil {
			t.Errorf("ReadList accepted %q", bad)
		}
	}
}
