package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/images/push"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/appkg"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/client"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

const adminPassword = "admin-Secret-Pw-42"

// fastHash keeps password hashing quick in tests; the parameters travel in each hash.
var fastHash = auth.Hasher{Time: 1, MemoryKiB: 1024, Threads: 1}

// syncBuffer is a log sink that the server's goroutines may write to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv is a server on a real registry (distribution, in-process) and a real store.
type testEnv struct {
	t        *testing.T
	srv      *Server
	url      string
	registry string
	pub      ed25519.PublicKey
	key      ed25519.PrivateKey
	keyDir   string
	logs     *syncBuffer
	st       *store.Store
}

func newEnv(t *testing.T, st *store.Store, mod func(*Options)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, st: st, logs: &syncBuffer{}, registry: imagestest.NewRegistry(t)}
	e.keyDir = t.TempDir()
	if _, err := bundle.GenerateKey(filepath.Join(e.keyDir, "signer.key"), filepath.Join(e.keyDir, "signer.pub")); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.key, err = bundle.LoadPrivateKey(filepath.Join(e.keyDir, "signer.key")); err != nil {
		t.Fatal(err)
	}
	if e.pub, err = bundle.LoadPublicKey(filepath.Join(e.keyDir, "signer.pub")); err != nil {
		t.Fatal(err)
	}
	opts := Options{DataDir: t.TempDir(), Store: st, Registry: push.Options{Target: e.registry, InsecureHTTP: true, Retries: -1},
		TrustedKeys: []ed25519.PublicKey{e.pub}, AdminPassword: adminPassword, Hasher: fastHash}
	if mod != nil {
		mod(&opts)
	}
	ctx := logctx.With(context.Background(), slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	e.srv, err = New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The real Serve path, with its connection limits and deadlines, on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String()
	if opts.TLS != nil {
		e.url = "https://" + ln.Addr().String()
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		e.srv.Close()
	})
	return e
}

// client logs in as user.
func (e *testEnv) client(user, password string) *client.Client {
	e.t.Helper()
	c, err := client.New(client.Options{Server: e.url})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.Login(context.Background(), user, password); err != nil {
		e.t.Fatalf("log in as %s: %v", user, err)
	}
	return c
}

func (e *testEnv) anon() *client.Client {
	c, err := client.New(client.Options{Server: e.url})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// appYAML is a two-component app whose images buildPackage provides.
func appYAML(key, version, extra string) string {
	return fmt.Sprintf(`apiVersion: wutong.io/v1alpha1
kind: App
key: %s
version: %s
name: Demo shop
description: a test app%s
components:
  - name: web
    image: example.com/%s/web:1.0
    ports:
      - port: 8080
        protocol: http
        expose: external
  - name: db
    image: example.com/%s/db:1.0
    kind: stateful
    ports:
      - port: 5432
`, key, version, extra, key, key)
}

// buildPackage writes a signed (when key is set) package of app key@version with random two-arch images, and
// returns its path. seed changes the images' content.
func buildPackage(t *testing.T, key, version, extra string, signer ed25519.PrivateKey) string {
	t.Helper()
	dir := t.TempDir()
	layout, err := images.CreateLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"web", "db"} {
		idx := imagestest.RandomIndex(t, []string{"amd64", "arm64"}, 1, 1, 2048)
		if _, err := layout.Append(context.Background(), fmt.Sprintf("example.com/%s/%s:1.0", key, c), idx, nil); err != nil {
			t.Fatal(err)
		}
	}
	appFile := filepath.Join(dir, "app.yaml")
	if err := os.WriteFile(appFile, []byte(appYAML(key, version, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := appkg.Build(context.Background(), appkg.BuildOptions{AppFile: appFile, OutDir: dir, Layouts: []string{string(layout)},
		Key: signer, Arches: []string{"amd64", "arm64"}})
	if err != nil {
		t.Fatalf("build package: %v", err)
	}
	return info.Path
}

// importWait imports a package and waits for the import to end.
func importWait(t *testing.T, c *client.Client, path, team string) (*api.Import, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	im, err := c.StartImport(ctx, path, client.ImportOptions{Team: team})
	if err != nil {
		return nil, err
	}
	if im.Terminal() {
		return im, nil
	}
	return c.WaitImport(ctx, im.ID, 20*time.Millisecond, nil)
}

// problemStatus is the HTTP status of an API error, or 0.
func problemStatus(err error) int {
	var p *api.Problem
	if errors.As(err, &p) {
		return p.Status
	}
	return 0
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// doJSON sends a JSON request with c's token and checks the status; out (if set) receives the answer.
func doJSON(t *testing.T, e *testEnv, c *client.Client, method, path, body string, status int, out any) {
	t.Helper()
	doJSONToken(t, e, c.Token(), method, path, body, status, out)
}

func doJSONToken(t *testing.T, e *testEnv, token, method, path, body string, status int, out any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+api.Prefix+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", api.MediaJSON)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, status, data)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != api.MediaProblem {
		t.Fatalf("%s %s: error as %q, want problem+json", method, path, resp.Header.Get("Content-Type"))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func genKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	dir := t.TempDir()
	if _, err := bundle.GenerateKey(filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")); err != nil {
		t.Fatal(err)
	}
	priv, err := bundle.LoadPrivateKey(filepath.Join(dir, "k.key"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := bundle.LoadPublicKey(filepath.Join(dir, "k.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// corruptCopy copies a package and flips one byte near its end, inside the compressed blobs.
func corruptCopy(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)*3/4] ^= 0x55
	dst := filepath.Join(t.TempDir(), "corrupt.wtapp")
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func countDir(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(es)
}
