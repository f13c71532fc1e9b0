package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
)

// testLayout writes an OCI layout with one 2-arch image named example.com/app:1.
func testLayout(t *testing.T) (dir, digest string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "layout")
	idx := imagestest.RandomIndex(t, []string{"amd64", "arm64"}, 1, 1, 16<<10)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{images.AnnotationRefName: "example.com/app:1"})); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return dir, d.String()
}

func TestRegistrySeedCommand(t *testing.T) {
	dir, _ := testLayout(t)
	root := t.TempDir()
	var st struct {
		Images       int   `json:"images"`
		BytesWritten int64 `json:"bytesWritten"`
	}
	out := mustRun(t, "registry", "seed", "--from", dir, "--root", root, "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Images != 1 || st.BytesWritten == 0 {
		t.Fatalf("first seed: %+v, %v\n%s", st, err, out)
	}
	out = mustRun(t, "registry", "seed", "--from", dir, "--root", root, "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.BytesWritten != 0 {
		t.Fatalf("second seed must write nothing: %+v, %v", st, err)
	}
	if _, errs, code := run(t, "registry", "seed", "--from", filepath.Join(dir, "missing"), "--root", root); code == 0 {
		t.Fatalf("seeding from a missing source succeeded: %s", errs)
	}
}

func TestRegistryPushCommand(t *testing.T) {
	dir, digest := testLayout(t)
	host := imagestest.NewRegistry(t)
	mustRun(t, "registry", "push", "--from", dir, "--to", host, "--insecure-http", "-o", "json")
	local, err := images.LocalRef("example.com/app:1", host)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(local)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("pull %s after push: %v", local, err)
	}
	if d, _ := idx.Digest(); d.String() != digest {
		t.Fatalf("pushed index digest %s, want %s", d, digest)
	}

	authHost, ca := imagestest.NewAuthRegistry(t, "admin", "right", nil)
	_, errs, code := runStdin(t, "wrong\n", "registry", "push", "--from", dir, "--to", authHost, "--ca-cert", ca, "--username", "admin", "--password-stdin")
	if code != exitAuth || !strings.Contains(errs, "authentication failed") {
		t.Fatalf("wrong password: exit %d\n%s", code, errs)
	}
	mustRunStdin(t, "right\n", "registry", "push", "--from", dir, "--to", authHost, "--ca-cert", ca, "--username", "admin", "--password-stdin")
}
