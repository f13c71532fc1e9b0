package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/internal/pki"
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

func TestRegistryCertAndHtpasswdCommands(t *testing.T) {
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	mustRun(t, "registry", "cert", "--ca-dir", pkiDir, "--host", "10.99.0.10", "--host", "registry.wutong.local",
		"--out-cert", filepath.Join(dir, "tls.crt"), "--out-key", filepath.Join(dir, "tls.key"))
	for f, mode := range map[string]os.FileMode{"pki/ca.key": 0o600, "tls.key": 0o600, "pki/ca.crt": 0o644, "tls.crt": 0o644} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, mode %v, want %o", f, err, st, mode)
		}
	}
	ca, err := pki.LoadCA(filepath.Join(pkiDir, "ca.crt"), filepath.Join(pkiDir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := os.ReadFile(filepath.Join(dir, "tls.crt"))
	block, _ := pem.Decode(pemBytes)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, h := range []string{"registry.wutong.local"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: h}); err != nil {
			t.Fatalf("server cert does not verify for %s: %v", h, err)
		}
	}
	if len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "10.99.0.10" {
		t.Fatalf("server cert IPs: %v", cert.IPAddresses)
	}

	ht := filepath.Join(dir, "htpasswd")
	if _, _, code := run(t, "registry", "htpasswd", "--file", ht, "--user", "admin"); code != exitUsage {
		t.Fatalf("htpasswd without --password-stdin: exit %d, want %d", code, exitUsage)
	}
	mustRunStdin(t, "s3cret\n", "registry", "htpasswd", "--file", ht, "--user", "admin", "--password-stdin")
	data, _ := os.ReadFile(ht)
	if !strings.HasPrefix(string(data), "admin:$2") || strings.Contains(string(data), "s3cret") {
		t.Fatalf("htpasswd file is not a bcrypt entry: %q", data)
	}
	if _, _, code := run(t, "registry", "serve", "--root", dir, "--tls-cert", filepath.Join(dir, "tls.crt")); code != exitUsage {
		t.Fatalf("--tls-cert without --tls-key: exit %d, want %d", code, exitUsage)
	}
}
