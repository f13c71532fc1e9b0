package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
)

const pkgAppYAML = `apiVersion: wutong.io/v1alpha1
kind: App
key: shop
name: Shop
version: 1.2.0
components:
  - name: web
    image: example.com/shop/web:1.0
    ports:
      - port: 8080
  - name: db
    kind: stateful
    image: example.com/shop/db:8.0
    arches: [amd64]
`

// pkgFixture writes keys, an app.yaml and an OCI layout with its images, and returns the dir.
func pkgFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mustRun(t, "bundle", "keygen", "--private", filepath.Join(dir, "k.key"), "--public", filepath.Join(dir, "k.pub"))
	l, err := images.CreateLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"example.com/shop/web:1.0", "example.com/shop/db:8.0"} {
		if _, err := l.Append(t.Context(), n, imagestest.RandomIndex(t, []string{"amd64", "arm64", "loong64"}, 1, 1, 4096), nil); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(pkgAppYAML), 0o644)
	return dir
}

func TestAppPackageCommands(t *testing.T) {
	t.Setenv("WTCTL_LANG", "en")
	dir := pkgFixture(t)
	pkg := filepath.Join(dir, "shop-1.2.0.wtapp")
	out := mustRun(t, "app", "package", "build", "-q", "-f", filepath.Join(dir, "app.yaml"), "-o", pkg,
		"--sign-key", filepath.Join(dir, "k.key"), "--oci-layout", filepath.Join(dir, "layout"), "--json")
	var built appPackageResult
	if err := json.Unmarshal([]byte(out), &built); err != nil {
		t.Fatalf("build --json: %v\n%s", err, out)
	}
	if built.Path != pkg || built.Key != "shop" || built.Version != "1.2.0" || !strings.HasPrefix(built.Signer, "SHA256:") ||
		strings.Join(built.Arches, ",") != "amd64,arm64" || len(built.Images) != 2 || len(built.Components) != 2 {
		t.Fatalf("build result %+v", built)
	}
	for _, im := range built.Images {
		if want := map[bool]int{true: 1, false: 2}[im.Name == "example.com/shop/db:8.0"]; len(im.Arches) != want {
			t.Errorf("%s: arches %v, want %d", im.Name, im.Arches, want)
		}
	}

	// Inspect shows an untrusted signer without refusing; with --key it is trusted.
	out = mustRun(t, "app", "package", "inspect", pkg)
	for _, want := range []string{"App package shop 1.2.0 (Shop)", "NOT trusted", "Components:", "db", "(amd64 only)", "example.com/shop/web:1.0", "index   sha256:", "Content digest: sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	var inspected appPackageResult
	if err := json.Unmarshal([]byte(mustRun(t, "app", "package", "inspect", pkg, "--key", filepath.Join(dir, "k.pub"), "-o", "json")), &inspected); err != nil {
		t.Fatal(err)
	}
	if !inspected.Trusted || inspected.PackageDigest != built.PackageDigest || inspected.ContentDigest != built.ContentDigest {
		t.Errorf("inspect: %+v", inspected)
	}

	out = mustRun(t, "app", "package", "verify", pkg, "--key", filepath.Join(dir, "k.pub"))
	if !strings.HasPrefix(out, "OK: shop 1.2.0: 2 images for amd64, arm64") || !strings.Contains(out, "(trusted)") {
		t.Errorf("verify: %s", out)
	}
	var verified appPackageResult
	json.Unmarshal([]byte(mustRun(t, "app", "package", "verify", pkg, "--key", filepath.Join(dir, "k.pub"), "-o", "json")), &verified)
	if !verified.Verified || !verified.Trusted || verified.PackageDigest != built.PackageDigest {
		t.Errorf("verify -o json: %+v", verified)
	}

	// No key configured: refused with the trust exit code.
	if _, errs, code := run(t, "app", "package", "verify", pkg); code != exitTrust || !strings.Contains(errs, "no trusted key") {
		t.Errorf("verify without a key: exit %d: %s", code, errs)
	}
	// Damage: a flipped byte late in the file.
	data, _ := os.ReadFile(pkg)
	data[len(data)*3/4] ^= 0x40
	bad := filepath.Join(dir, "bad.wtapp")
	os.WriteFile(bad, data, 0o644)
	if _, errs, code := run(t, "app", "package", "verify", bad, "--key", filepath.Join(dir, "k.pub")); code != exitIntegrity {
		t.Errorf("damaged package: exit %d: %s", code, errs)
	}

	// An existing output needs --force.
	args := []string{"app", "package", "build", "-q", "-f", filepath.Join(dir, "app.yaml"), "-o", pkg, "--oci-layout", filepath.Join(dir, "layout")}
	if _, errs, code := run(t, args...); code != exitError || !strings.Contains(errs, "--force") {
		t.Errorf("existing output: exit %d: %s", code, errs)
	}
	// Unsigned: refused unless --insecure-skip-verify, which warns loudly.
	_, errs, code := run(t, append(args, "--force")...)
	if code != 0 || !strings.Contains(errs, "UNSIGNED") {
		t.Fatalf("unsigned build: exit %d: %s", code, errs)
	}
	if _, errs, code := run(t, "app", "package", "verify", pkg, "--key", filepath.Join(dir, "k.pub")); code != exitTrust || !strings.Contains(errs, "unsigned") {
		t.Errorf("unsigned verify: exit %d: %s", code, errs)
	}
	_, errs, code = run(t, "app", "package", "verify", pkg, "--insecure-skip-verify")
	if code != 0 || !strings.Contains(errs, "WARNING") || !strings.Contains(errs, "This app package: it is UNSIGNED") {
		t.Errorf("--insecure-skip-verify: exit %d, want a loud warning: %s", code, errs)
	}
}

func TestAppPackageUsageErrors(t *testing.T) {
	dir := pkgFixture(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build"}, "-f app.yaml is required"},
		{[]string{"build", "-f", filepath.Join(dir, "app.yaml"), "-o", "x.wtapp", "--out-dir", dir}, "not both"},
		{[]string{"build", "-f", filepath.Join(dir, "app.yaml"), "--sign-key", filepath.Join(dir, "nope.key")}, "nope.key"},
		{[]string{"inspect"}, "one app package file"},
		{[]string{"verify", "a", "b"}, "one app package file"},
		{[]string{"inspect", "x", "-o", "yaml"}, "--output must be text or json"},
	} {
		if _, errs, code := run(t, append([]string{"app", "package"}, tc.args...)...); code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q: %s", tc.args, code, exitUsage, tc.want, errs)
		}
	}
	// An invalid app.yaml is a usage error with its line.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(pkgAppYAML, "version: 1.2.0", "version: v1.2", 1)), 0o644)
	_, errs, code := run(t, "app", "package", "build", "-q", "-f", bad, "--out-dir", filepath.Join(dir, "out"))
	if code != exitUsage || !strings.Contains(errs, "bad.yaml:5") {
		t.Errorf("invalid app.yaml: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Error("a refused build created its output dir")
	}
}
