package registry

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/images/seed"
)

// TestSeedIntoRunningRegistry is the path the installer takes: the registry runs (TLS, htpasswd), the fast path
// seeds its storage underneath it, and clients pull the upstream names mapped by images.LocalRef, with no restart.
func TestSeedIntoRunningRegistry(t *testing.T) {
	p := newTestPKI(t)
	const user, pass = "wutong", "seed-pass"
	root := mkdirRoot(t)
	host, _, _ := serveTLS(t, p, Options{Root: root, Htpasswd: writeTestHtpasswd(t, user, pass)})
	auth := &authn.Basic{Username: user, Password: pass}

	arches := []string{"amd64", "arm64", "loong64"}
	base := imagestest.RandomLayers(t, 2, 8<<10)
	want := map[string]v1.ImageIndex{
		"registry.k8s.io/kube-apiserver:v1.37.2": imagestest.NewIndex(t, arches, base, 1, 4<<10),
		"nginx:1.27":                             imagestest.NewIndex(t, arches, base, 1, 4<<10),
	}
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for n, idx := range want {
		if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{images.AnnotationRefName: n})); err != nil {
			t.Fatal(err)
		}
	}
	// Before seeding, the registry does not know the image.
	local := func(n string) string {
		l, err := images.LocalRef(n, host)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if _, err := remote.Index(mustRef(t, local("nginx:1.27")), remoteOpts(t, p, auth)...); err == nil {
		t.Fatal("the registry serves an image before it was seeded")
	}
	st, err := seed.FromLayout(t.Context(), dir, seed.Options{Root: root})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	if st.Images != 2 {
		t.Fatalf("seeded %d images, want 2", st.Images)
	}
	reg, err := name.NewRegistry(host)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), reg, remoteOpts(t, p, auth)...)
	if err != nil || strings.Join(repos, ",") != "docker.io/library/nginx,registry.k8s.io/kube-apiserver" {
		t.Fatalf("catalog after seeding: %v, %v", repos, err)
	}
	for n, idx := range want {
		got, err := remote.Index(mustRef(t, local(n)), remoteOpts(t, p, auth)...)
		if err != nil {
			t.Fatalf("pull %s as %s: %v", n, local(n), err)
		}
		if gd, wd := mustDigest(t, got), mustDigest(t, idx); gd != wd {
			t.Fatalf("%s: pulled %s, seeded %s", n, gd, wd)
		}
		im, _ := got.IndexManifest()
		for _, d := range im.Manifests {
			img, err := got.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			ls, _ := img.Layers()
			for _, l := range ls {
				rc, err := l.Compressed()
				if err != nil {
					t.Fatalf("%s %s: %v", n, d.Platform, err)
				}
				var buf bytes.Buffer
				_, err = buf.ReadFrom(rc) // ggcr checks the digest at EOF
				rc.Close()
				if err != nil {
					t.Fatalf("%s %s layer: %v", n, d.Platform, err)
				}
			}
		}
		if sk, err := exec.LookPath("skopeo"); err == nil {
			cmd := exec.CommandContext(t.Context(), sk, "inspect", "--raw", "--tls-verify=true", "--cert-dir", filepath.Dir(p.caFile),
				"--creds", user+":"+pass, "docker://"+local(n))
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo inspect %s: %v\n%s", local(n), err, out)
			}
			if got, _, _ := v1.SHA256(bytes.NewReader(out)); got != mustDigest(t, idx) {
				t.Fatalf("skopeo sees %s for %s, seeded %s", got, n, mustDigest(t, idx))
			}
		} else {
			t.Log("skopeo not installed (apt-get install skopeo): cross-check skipped")
		}
	}
}
