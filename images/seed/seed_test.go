package seed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wutong-paas/wutong-offline/images/imagestest"
)

var arches = []string{"amd64", "arm64", "loong64"}

// twoImages returns two multi-arch images that share base layers.
func twoImages(t *testing.T, layerSize int64) map[string]v1.ImageIndex {
	base := imagestest.RandomLayers(t, 2, layerSize)
	return map[string]v1.ImageIndex{
		"registry.k8s.io/pause:3.10":   imagestest.NewIndex(t, arches, base, 1, layerSize),
		"example.com/wutong/app:1.0.0": imagestest.NewIndex(t, arches, base, 2, layerSize),
	}
}

func TestDefaultMapName(t *testing.T) {
	for _, tc := range []struct {
		in, repo, tag string
		bad           bool
	}{
		{in: "registry.k8s.io/pause:3.10", repo: "registry.k8s.io/pause", tag: "3.10"},
		{in: "example.com/a/b", repo: "example.com/a/b", tag: "latest"},
		{in: "busybox:1.36", repo: "docker.io/library/busybox", tag: "1.36"},
		{in: "localhost:5000/x:1", repo: "localhost_5000/x", tag: "1"}, // the port is escaped as in images.LocalRef
		{in: "example.com/x@sha256:" + strings.Repeat("a", 64), bad: true},
		{in: "Example.com/x:1", repo: "example.com/x", tag: "1"}, // host names are case-insensitive
		{in: "example.com/X:1", bad: true},
		{in: "example.com/x:bad/tag", bad: true},
	} {
		repo, tag, err := DefaultMapName(tc.in)
		if err == nil {
			err = checkRepoTag(tc.in, repo, tag)
		}
		if tc.bad {
			if err == nil {
				t.Errorf("%s: want an error, got %s:%s", tc.in, repo, tag)
			}
			continue
		}
		if err != nil || repo != tc.repo || tag != tc.tag {
			t.Errorf("%s: got %q %q %v, want %q %q", tc.in, repo, tag, err, tc.repo, tc.tag)
		}
	}
}

func TestFromLayoutServeAndPull(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hardlink bool
	}{{"hardlink", true}, {"copy", false}} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.hardlink {
				linkFile = func(string, string) error { return syscall.EXDEV }
				t.Cleanup(func() { linkFile = os.Link })
			}
			idxs := twoImages(t, 64<<10)
			dir := t.TempDir()
			lay, root := filepath.Join(dir, "layout"), filepath.Join(dir, "root")
			writeLayout(t, lay, idxs)
			// A read-only blob in the source layout keeps its mode, even though the store shares its inode.
			blobs, _ := filepath.Glob(filepath.Join(lay, "blobs", "sha256", "*"))
			if err := os.Chmod(blobs[0], 0o444); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if st, err := os.Stat(blobs[0]); err != nil || st.Mode().Perm() != 0o444 {
					t.Errorf("seeding changed the source layout's blob mode: %v, %v", st.Mode(), err)
				}
			})
			var progressed int64
			st, err := FromLayout(t.Context(), lay, Options{Root: root, Progress: func(n int64) { progressed += n }, Jobs: 1})
			if err != nil {
				t.Fatal(err)
			}
			// 2 shared + 3 own per arch for the two images; a config, a manifest each; 2 indexes.
			wantBlobs := 2 + 3*3 + 3*2*2 + 2
			if st.Images != 2 || st.Blobs != wantBlobs || st.BlobsSkipped != 0 || st.BytesWritten == 0 || progressed != st.BytesWritten {
				t.Fatalf("first seed: %+v (progress %d), want 2 images, %d blobs", st, progressed, wantBlobs)
			}
			if tc.hardlink && st.BlobsLinked != st.Blobs || !tc.hardlink && st.BlobsLinked != 0 {
				t.Fatalf("hardlink=%v but %d of %d blobs linked", tc.hardlink, st.BlobsLinked, st.Blobs)
			}
			if ents, _ := filepath.Glob(filepath.Join(root, ".wtctl-seed-*")); len(ents) != 0 {
				t.Fatalf("temp dirs left: %v", ents)
			}

			srv := serveRoot(t, root)
			for n, idx := range idxs {
				if err := srv.pullIndex(t.Context(), n, digestOf(t, idx)); err != nil {
					t.Fatalf("pull %s: %v", n, err)
				}
			}

			again, err := FromLayout(t.Context(), lay, Options{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			if again.BytesWritten != 0 || again.Links != 0 || again.BlobsSkipped != again.Blobs || again.Images != 2 {
				t.Fatalf("second seed is not a no-op: %+v", again)
			}

			for n, idx := range idxs {
				raw := srv.skopeoRaw(t, n)
				sum := sha256.Sum256(raw)
				if got := hex.EncodeToString(sum[:]); got != digestOf(t, idx).Hex {
					t.Fatalf("skopeo: %s has digest sha256:%s, want %s", n, got, digestOf(t, idx))
				}
			}
		})
	}
}

// TestFromLayoutBadInput: a damaged source is refused before any link or tag is written, naming the blob with
// expected and actual digests.
func TestFromLayoutBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, lay string, idx v1.ImageIndex) v1.Hash // returns the damaged blob
		want   []string
	}{
		{"corrupt layer", func(t *testing.T, lay string, idx v1.ImageIndex) v1.Hash {
			img := firstImage(t, idx)
			ls, _ := img.Layers()
			h, _ := ls[len(ls)-1].Digest()
			flipByte(t, filepath.Join(lay, "blobs", "sha256", h.Hex))
			return h
		}, []string{"corrupt", "expected digest", "got sha256:"}},
		{"corrupt manifest", func(t *testing.T, lay string, idx v1.ImageIndex) v1.Hash {
			h, _ := firstImage(t, idx).Digest()
			flipByte(t, filepath.Join(lay, "blobs", "sha256", h.Hex))
			return h
		}, []string{"corrupt", "expected digest"}},
		{"missing config", func(t *testing.T, lay string, idx v1.ImageIndex) v1.Hash {
			h, _ := firstImage(t, idx).ConfigName()
			os.Remove(filepath.Join(lay, "blobs", "sha256", h.Hex))
			return h
		}, []string{"no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lay, root := filepath.Join(dir, "layout"), filepath.Join(dir, "root")
			idx := imagestest.RandomIndex(t, arches, 1, 1, 32<<10)
			writeLayout(t, lay, map[string]v1.ImageIndex{"example.com/bad:1": idx})
			h := tc.damage(t, lay, idx)
			_, err := FromLayout(t.Context(), lay, Options{Root: root})
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range append(tc.want, h.Hex) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, serr := os.Stat(filepath.Join(root, "docker", "registry", "v2", "repositories")); serr == nil {
				t.Errorf("links were written despite %v", err)
			}
		})
	}
}

func firstImage(t *testing.T, idx v1.ImageIndex) v1.Image {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func flipByte(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	os.Remove(p) // the layout's file may be read-only
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFromLayoutDiskFull seeds into a tmpfs too small for the images: the error says disk full, and no tag exists.
func TestFromLayoutDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the storage root")
	}
	dir := t.TempDir()
	lay, root := filepath.Join(dir, "layout"), filepath.Join(dir, "root")
	writeLayout(t, lay, twoImages(t, 256<<10))
	os.MkdirAll(root, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", root).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", root).Run() })
	_, err := FromLayout(t.Context(), lay, Options{Root: root})
	var df *DiskFullError
	if err == nil || !errors.As(err, &df) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("want a disk-full error, got %v", err)
	}
	if links := tagLinks(t, root); len(links) != 0 {
		t.Fatalf("tags visible after a failed seed: %v", links)
	}
	if ents, _ := filepath.Glob(filepath.Join(root, ".wtctl-seed-*")); len(ents) != 0 {
		t.Fatalf("temp dirs left: %v", ents)
	}
}

// TestSeedWhileServing pulls the second set's tags in a loop while it is being seeded: every pull gets a 404 or the
// complete image, and once seeding is done every pull succeeds.
func TestSeedWhileServing(t *testing.T) {
	linkFile = func(string, string) error { return syscall.EXDEV } // copy, so seeding takes a while
	t.Cleanup(func() { linkFile = os.Link })
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	first, second := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeLayout(t, first, twoImages(t, 16<<10))
	base := imagestest.RandomLayers(t, 2, 512<<10)
	want := map[string]v1.ImageIndex{}
	for i := range 4 {
		want[fmt.Sprintf("example.com/later/img%d:v1", i)] = imagestest.NewIndex(t, arches, base, 2, 512<<10)
	}
	writeLayout(t, second, want)
	if _, err := FromLayout(t.Context(), first, Options{Root: root}); err != nil {
		t.Fatal(err)
	}
	srv := serveRoot(t, root)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := FromLayout(ctx, second, Options{Root: root, Jobs: 1})
		done <- err
	}()
	var (
		mu                sync.Mutex
		notYet, complete  int
		finished, lastRun bool
	)
	for round := 0; round < 500 && !lastRun; round++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		lastRun = finished
		for n, idx := range want {
			err := srv.pullIndex(ctx, n, digestOf(t, idx))
			mu.Lock()
			switch {
			case err == nil:
				complete++
			case isUnknown(err) && !finished:
				notYet++
			default:
				mu.Unlock()
				t.Fatalf("round %d: pull %s during seeding: %v", round, n, err)
			}
			mu.Unlock()
		}
	}
	if !finished {
		t.Fatal("seeding did not finish within the pull loop")
	}
	t.Logf("pulls during seeding: %d not yet there, %d complete", notYet, complete)
}

// TestLinkFormat checks a link file's exact bytes, as distribution writes them.
func TestLinkFormat(t *testing.T) {
	s, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	p := s.repoPath("a/b", "_layers", "sha256", h.Hex, "link")
	for i, wantWrote := range []bool{true, false} {
		wrote, err := s.writeLink(p, h)
		if err != nil || wrote != wantWrote {
			t.Fatalf("write %d: wrote=%v err=%v, want wrote=%v", i, wrote, err, wantWrote)
		}
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, []byte("sha256:"+h.Hex)) {
		t.Fatalf("link holds %q", b)
	}
}
