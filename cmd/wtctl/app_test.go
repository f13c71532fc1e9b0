package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/images/push"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/appkg"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/server"
)

// TestAppClientCommands drives wtctl app login, import, list, versions, export and logout against a real server
// (in-process, SQLite) with a real registry.
func TestAppClientCommands(t *testing.T) {
	dir := t.TempDir()
	if _, err := bundle.GenerateKey(filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")); err != nil {
		t.Fatal(err)
	}
	pub, _ := bundle.LoadPublicKey(filepath.Join(dir, "k.pub"))
	priv, _ := bundle.LoadPrivateKey(filepath.Join(dir, "k.key"))
	reg := imagestest.NewRegistry(t)
	srv, err := server.New(context.Background(), server.Options{DataDir: filepath.Join(dir, "data"),
		Registry: push.Options{Target: reg, InsecureHTTP: true}, TrustedKeys: []ed25519.PublicKey{pub},
		AdminPassword: "cli-Admin-pw-1", Hasher: auth.Hasher{Time: 1, MemoryKiB: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	cfg := filepath.Join(dir, "home", "wutong", "config.json")
	t.Setenv("WUTONG_CONFIG", cfg)

	pkg := cliPackage(t, dir, priv)

	if _, errs, code := run(t, "app", "list"); code != exitUsage || !strings.Contains(errs, "wtctl app login") {
		t.Fatalf("list before login: exit %d\n%s", code, errs)
	}
	if _, errs, code := runStdin(t, "wrong-password\n", "app", "login", ts.URL, "--user", "admin", "--password-stdin"); code != exitAuth || !strings.Contains(errs, "wrong user name or password") {
		t.Fatalf("wrong password: exit %d\n%s", code, errs)
	}
	out := mustRunStdin(t, "cli-Admin-pw-1\n", "app", "login", ts.URL, "--user", "admin", "--password-stdin")
	if !strings.Contains(out, "Logged in to "+ts.URL+" as admin") {
		t.Fatalf("login: %s", out)
	}
	fi, err := os.Stat(cfg)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", fi.Mode(), err)
	}
	if data, _ := os.ReadFile(cfg); strings.Contains(string(data), "cli-Admin-pw-1") || !strings.Contains(string(data), auth.TokenPrefix) {
		t.Fatalf("config holds the password or no token: %s", data)
	}

	out, errs, code := run(t, "app", "import", pkg)
	if code != 0 || !strings.Contains(out, "Imported cli 2.0.0 into team default") || !strings.Contains(errs, "upload cli-2.0.0.wtapp") {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errs)
	}
	if out := mustRun(t, "app", "import", pkg); !strings.Contains(out, "already imported with the same content") {
		t.Fatalf("re-import: %s", out)
	}
	var apps []api.App
	if err := json.Unmarshal([]byte(mustRun(t, "app", "list", "-o", "json")), &apps); err != nil || len(apps) != 1 || apps[0].Key != "cli" || apps[0].LatestVersion != "2.0.0" {
		t.Fatalf("list: %+v %v", apps, err)
	}
	if out := mustRun(t, "app", "imports"); !strings.Contains(out, "IMPORT") || strings.Count(out, " done ") != 2 || !strings.Contains(out, "cli") {
		t.Fatalf("imports: %s", out)
	}
	info, err := appkg.Inspect(context.Background(), pkg, bundle.ReadOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, "app", "versions", "cli"); !strings.Contains(out, "cli 2.0.0") || !strings.Contains(out, info.Images[0].Digest) || !strings.Contains(out, reg+"/apps/cli/") {
		t.Fatalf("versions: %s", out)
	}
	exported := filepath.Join(dir, "exported.wtapp")
	mustRun(t, "app", "export", "cli", "2.0.0", "--file", exported)
	back, err := appkg.Verify(context.Background(), exported, bundle.ReadOptions{InsecureSkipVerify: true})
	if err != nil || back.ContentDigest != info.ContentDigest || back.Images[0].Digest != info.Images[0].Digest {
		t.Fatalf("export round trip: %+v %v", back, err)
	}
	if _, errs, code := run(t, "app", "export", "cli", "9.9.9", "--file", filepath.Join(dir, "nope.wtapp")); code == 0 || !strings.Contains(errs, "not found") {
		t.Fatalf("export of a missing version: exit %d\n%s", code, errs)
	} else if _, err := os.Stat(filepath.Join(dir, "nope.wtapp")); err == nil {
		t.Fatal("a failed export left a file")
	}
	mustRun(t, "app", "logout")
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Fatalf("logout kept the config: %v", err)
	}
}

func cliPackage(t *testing.T, dir string, key ed25519.PrivateKey) string {
	t.Helper()
	layout, err := images.CreateLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layout.Append(context.Background(), "example.com/cli/app:2.0", imagestest.RandomIndex(t, []string{"amd64", "arm64"}, 1, 1, 4096), nil); err != nil {
		t.Fatal(err)
	}
	appFile := filepath.Join(dir, "app.yaml")
	os.WriteFile(appFile, []byte("apiVersion: wutong.io/v1alpha1\nkind: App\nkey: cli\nversion: 2.0.0\ncomponents:\n  - name: app\n    image: example.com/cli/app:2.0\n"), 0o644)
	info, err := appkg.Build(context.Background(), appkg.BuildOptions{AppFile: appFile, OutDir: dir, Layouts: []string{string(layout)}, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return info.Path
}
