package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes wtctl with args in-process and returns stdout, stderr and the exit code main would use.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runStdin(t, "", args...)
}

// runStdin is run with stdin.
func runStdin(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := report(&errb, err)
	return out.String(), errb.String(), code
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	return mustRunStdin(t, "", args...)
}

func mustRunStdin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errs, code := runStdin(t, stdin, args...)
	if code != 0 {
		t.Fatalf("wtctl %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

// demoBundle writes keys and a small bundle.yaml of local files, builds it, and returns the dir and archive path.
func demoBundle(t *testing.T, signed bool) (dir, archive string) {
	t.Helper()
	dir = t.TempDir()
	mustRun(t, "bundle", "keygen", "--private", filepath.Join(dir, "k.key"), "--public", filepath.Join(dir, "k.pub"))
	for _, a := range []string{"amd64", "arm64"} {
		b := make([]byte, 200<<10)
		rand.Read(b)
		os.WriteFile(filepath.Join(dir, "tool-"+a), append([]byte(a+" "), b...), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "ns.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"), 0o644)
	spec := `apiVersion: wutong.io/v1alpha1
kind: BundleSpec
name: cli
version: 0.0.1
arches: [amd64, arm64]
files:
  - {name: tool, arch: amd64, path: tool-amd64}
  - {name: tool, arch: arm64, path: tool-arm64}
manifests:
  - path: ns.yaml
`
	os.WriteFile(filepath.Join(dir, "bundle.yaml"), []byte(spec), 0o644)
	args := []string{"bundle", "build", "-q", "-f", filepath.Join(dir, "bundle.yaml"), "-o", filepath.Join(dir, "out"), "--json"}
	if signed {
		args = append(args, "--sign-key", filepath.Join(dir, "k.key"))
	}
	out := mustRun(t, args...)
	var res struct {
		Archive string `json:"archive"`
		Signer  string `json:"signer"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("build --json output is not JSON: %v\n%s", err, out)
	}
	if signed == (res.Signer == "") {
		t.Fatalf("signer %q, signed=%v", res.Signer, signed)
	}
	return dir, res.Archive
}

func TestVersion(t *testing.T) {
	out := mustRun(t, "version", "-o", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version == "" || v.Platform == "" {
		t.Fatalf("version -o json: %q, %v", out, err)
	}
	if _, _, code := run(t, "version", "-o", "yaml"); code != exitUsage {
		t.Fatalf("bad -o value: exit %d, want %d", code, exitUsage)
	}
	if _, _, code := run(t, "bundle", "verify", "--no-such-flag", "x"); code != exitUsage {
		t.Fatalf("unknown flag: exit %d, want %d", code, exitUsage)
	}
	if _, _, code := run(t, "bundle", "verify"); code != exitUsage {
		t.Fatalf("missing argument: exit %d, want %d", code, exitUsage)
	}
	if out := mustRun(t, "completion", "bash"); !strings.Contains(out, "wtctl") {
		t.Fatal("bash completion script does not mention wtctl")
	}
}

func TestBundleCommands(t *testing.T) {
	dir, archive := demoBundle(t, true)
	key := filepath.Join(dir, "k.pub")

	out := mustRun(t, "bundle", "verify", archive, "--key", key, "-o", "json")
	var vr verifyResult
	if err := json.Unmarshal([]byte(out), &vr); err != nil || !vr.OK || !vr.Trusted || vr.Entries != 4 {
		t.Fatalf("verify: %+v, %v", vr, err)
	}

	out = mustRun(t, "bundle", "inspect", archive, "--key", key, "-o", "json")
	var ir inspectResult
	if err := json.Unmarshal([]byte(out), &ir); err != nil {
		t.Fatal(err)
	}
	if ir.Name != "cli" || !ir.Trusted || !strings.HasPrefix(ir.Signer, "SHA256:") || len(ir.Files) != 3 || strings.Join(ir.Arches, ",") != "amd64,arm64" {
		t.Fatalf("inspect: %+v", ir)
	}
	// Inspect shows an untrusted signer without refusing.
	out = mustRun(t, "bundle", "inspect", archive)
	if !strings.Contains(out, "NOT trusted") {
		t.Fatalf("inspect without a key should say the signer is not trusted:\n%s", out)
	}

	dest := filepath.Join(dir, "extracted")
	mustRun(t, "bundle", "extract", archive, "--key", key, "-C", dest)
	if b, err := os.ReadFile(filepath.Join(dest, "files", "arm64", "tool")); err != nil || !bytes.HasPrefix(b, []byte("arm64 ")) {
		t.Fatalf("extracted file: %v", err)
	}
	if out := mustRun(t, "bundle", "extract", archive, "--key", key, "-C", dest); !strings.Contains(out, "nothing to do") {
		t.Fatalf("second extract: %q", out)
	}

	// Trust failures.
	other := filepath.Join(dir, "other")
	mustRun(t, "bundle", "keygen", "--private", other+".key", "--public", other+".pub")
	if _, errs, code := run(t, "bundle", "verify", archive, "--key", other+".pub"); code != exitTrust || !strings.Contains(errs, "not a trusted key") {
		t.Fatalf("wrong key: exit %d: %s", code, errs)
	}

	// Damage: flip a byte in the middle.
	data, _ := os.ReadFile(archive)
	data[len(data)/2] ^= 0x40
	bad := filepath.Join(dir, "bad.tar.zst")
	os.WriteFile(bad, data, 0o644)
	if _, errs, code := run(t, "bundle", "verify", bad, "--key", key); code != exitIntegrity {
		t.Fatalf("damaged archive: exit %d: %s", code, errs)
	}
	if _, _, code := run(t, "bundle", "extract", bad, "--key", key, "-C", filepath.Join(dir, "never")); code != exitIntegrity {
		t.Fatalf("damaged extract: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); !os.IsNotExist(err) {
		t.Fatal("a failed extract created its target")
	}

	// Split, verify the parts, lose one, join.
	usb := filepath.Join(dir, "usb")
	os.Mkdir(usb, 0o755)
	out = mustRun(t, "bundle", "split", archive, "--size", "20K", "-C", usb)
	ps := strings.Fields(out)
	if len(ps) < 3 {
		t.Fatalf("want at least 3 parts, got %v", ps)
	}
	mustRun(t, "bundle", "verify", ps[0], "--key", key)
	joined := filepath.Join(dir, "joined.tar.zst")
	mustRun(t, "bundle", "join", ps[1], "-o", joined)
	if a, b := must(os.ReadFile(archive)), must(os.ReadFile(joined)); !bytes.Equal(a, b) {
		t.Fatal("joined archive differs from the original")
	}
	// A corrupt part is named before extraction starts, and nothing is created.
	orig := must(os.ReadFile(ps[2]))
	damaged := bytes.Clone(orig)
	damaged[len(damaged)-10] ^= 1
	os.WriteFile(ps[2], damaged, 0o644)
	_, errs, code := run(t, "bundle", "extract", ps[0], "--key", key, "-C", filepath.Join(dir, "never"))
	if code != exitIntegrity || !strings.Contains(errs, "part 3 of") || !strings.Contains(errs, "sha256 mismatch") || strings.Contains(errs, "extract cli") {
		t.Fatalf("corrupt part: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); !os.IsNotExist(err) {
		t.Fatal("extract from a corrupt part created its target")
	}
	os.WriteFile(ps[2], orig, 0o644)
	os.Remove(ps[1])
	if _, errs, code := run(t, "bundle", "verify", ps[0], "--key", key); code != exitIntegrity || !strings.Contains(errs, "part 2 of") {
		t.Fatalf("missing part: exit %d: %s", code, errs)
	}
}

func TestUnsignedNeedsInsecureFlag(t *testing.T) {
	t.Setenv("WTCTL_LANG", "en")
	_, archive := demoBundle(t, false)
	if _, errs, code := run(t, "bundle", "verify", archive); code != exitTrust || !strings.Contains(errs, "unsigned") {
		t.Fatalf("unsigned archive: exit %d: %s", code, errs)
	}
	_, errs, code := run(t, "bundle", "verify", archive, "--insecure-skip-verify")
	if code != 0 || !strings.Contains(errs, "WARNING") || !strings.Contains(errs, "UNSIGNED") {
		t.Fatalf("--insecure-skip-verify: exit %d, want a loud warning: %s", code, errs)
	}
}

func TestErrorHintsInChinese(t *testing.T) {
	t.Setenv("WTCTL_LANG", "zh_CN.UTF-8")
	_, archive := demoBundle(t, false)
	_, errs, code := run(t, "bundle", "verify", archive)
	if code != exitTrust || !strings.Contains(errs, "签名") || !strings.Contains(errs, "unsigned") {
		t.Fatalf("want the English detail and the Chinese hint, exit %d:\n%s", code, errs)
	}
	_, errs, _ = run(t, "bundle", "verify", archive, "--insecure-skip-verify")
	if !strings.Contains(errs, "警告") {
		t.Fatalf("want the Chinese warning:\n%s", errs)
	}
}

func TestBuildUsageErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bundle.yaml"), []byte("apiVersion: wutong.io/v1alpha1\nkind: BundleSpec\nname: x\nversion: 1\narches: [sparc]\n"), 0o644)
	_, errs, code := run(t, "bundle", "build", "-f", filepath.Join(dir, "bundle.yaml"), "-o", filepath.Join(dir, "out"))
	if code != exitUsage || !strings.Contains(errs, `bundle.yaml:5: arches[0]: unknown arch "sparc"`) {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Fatal("a rejected spec created the output dir")
	}
	if _, _, code := run(t, "bundle", "build", "-f", filepath.Join(dir, "bundle.yaml")); code != exitUsage {
		t.Fatalf("missing -o: exit %d", code)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
