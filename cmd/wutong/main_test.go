package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/internal/pki"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/appkg"
	"github.com/wutong-paas/wutong-offline/platform/client"
	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// TestMain lets the test binary act as `wutong` in a subprocess, so that the server can be killed for real.
func TestMain(m *testing.M) {
	if os.Getenv("WUTONG_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const adminPassword = "kill-test-Admin-pw"

// serverProc is `wutong serve` running in a subprocess.
type serverProc struct {
	cmd *exec.Cmd
	url string
	log *lockedLog
}

// lockedLog collects the server's stderr while the test reads it.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(line + "\n")
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startServer(t testing.TB, dataDir, dsn, registry, keyFile string, extra ...string) *serverProc {
	t.Helper()
	args := []string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--registry", registry,
		"--registry-insecure-http", "--key", keyFile}
	args = append(args, extra...)
	if dsn != "" {
		args = append(args, "--store", dsn)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "WUTONG_TEST_AS_MAIN=1", "WUTONG_ADMIN_PASSWORD="+adminPassword)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd, log: &lockedLog{}}
	t.Cleanup(func() { p.kill() })
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg=serving address=(\S+) tls=(\w+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log.add(sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				scheme := "http://"
				if m[2] == "true" {
					scheme = "https://"
				}
				addr <- scheme + m[1]
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			cmd.Wait()
			t.Fatalf("server exited before serving:\n%s", p.log)
		}
		p.url = a
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start in 60 s")
	}
	return p
}

func (p *serverProc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// TestImportKilled kills the server for real (SIGKILL) in the middle of an import, once while the package is
// being uploaded and once while its images are being pushed, then starts it again on the same data: no half
// version is visible, the import says it was interrupted, and importing the package again works.
func TestImportKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills wutong serve subprocesses")
	}
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			dsn := ""
			if dialect == store.DialectPostgres {
				dsn = storetest.NewPostgresDatabase(t)
			}
			testImportKilled(t, dsn)
		})
	}
}

func testImportKilled(t *testing.T, dsn string) {
	ctx := context.Background()
	// A real registry whose blob uploads can be held, so the kill lands in the push.
	var hold atomic.Bool
	held := make(chan struct{}, 100)
	reg := imagestest.NewRegistryWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hold.Load() && strings.Contains(r.URL.Path, "/blobs/uploads/") {
				select {
				case held <- struct{}{}:
				default:
				}
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Minute):
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	dir := t.TempDir()
	keyFile, priv := filepath.Join(dir, "signer.pub"), filepath.Join(dir, "signer.key")
	if _, err := bundle.GenerateKey(priv, keyFile); err != nil {
		t.Fatal(err)
	}
	pkg := buildPackage(t, dir, priv)
	dataDir := filepath.Join(dir, "data")

	// 1. Killed while the package is being uploaded.
	srv := startServer(t, dataDir, dsn, reg, keyFile)
	c := login(t, srv.url)
	pr, pw := io.Pipe()
	go func() {
		f, _ := os.Open(pkg)
		defer f.Close()
		io.CopyN(pw, f, fileSize(t, pkg)/2)
		// Hold the rest back until the server is gone.
		time.Sleep(time.Minute)
		pw.Close()
	}()
	go func() {
		req, _ := http.NewRequest("POST", srv.url+api.Prefix+"/imports", pr)
		req.Header.Set("Authorization", "Bearer "+c.Token())
		req.Header.Set("Content-Type", api.MediaPackage)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitImport(t, c, func(im api.Import) bool { return im.Received > 0 })
	srv.kill()
	srv = startServer(t, dataDir, dsn, reg, keyFile)
	c = login(t, srv.url)
	checkInterrupted(t, c, dataDir, 1)

	// 2. Killed while the images are being pushed.
	hold.Store(true)
	go c.StartImport(ctx, pkg, client.ImportOptions{})
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("the push never reached the registry")
	}
	waitImport(t, c, func(im api.Import) bool { return im.State == api.ImportPushing })
	srv.kill()
	hold.Store(false)
	srv = startServer(t, dataDir, dsn, reg, keyFile)
	c = login(t, srv.url)
	checkInterrupted(t, c, dataDir, 2)

	// 3. Run again: it completes.
	im, err := c.StartImport(ctx, pkg, client.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if im, err = c.WaitImport(wctx, im.ID, 50*time.Millisecond, nil); err != nil || im.State != api.ImportDone || im.Unchanged {
		t.Fatalf("re-import: %+v %v", im, err)
	}
	vs, err := c.Versions(ctx, "killme")
	if err != nil || len(vs) != 1 || len(vs[0].Images) != 1 {
		t.Fatalf("versions after re-import: %+v %v", vs, err)
	}
	if strings.Contains(srv.log.String(), adminPassword) {
		t.Fatalf("the server log holds the admin password:\n%s", srv.log)
	}
}

func login(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Server: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background(), "admin", adminPassword); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitImport waits until the newest import satisfies ok.
func waitImport(t *testing.T, c *client.Client, ok func(api.Import) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		ims, err := c.Imports(context.Background())
		if err == nil && len(ims) > 0 && ok(ims[0]) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ims, _ := c.Imports(context.Background())
	t.Fatalf("import never reached the expected state: %+v", ims)
}

// checkInterrupted: after a restart, the cut imports are failed with a note, no app is visible and no staging is left.
func checkInterrupted(t *testing.T, c *client.Client, dataDir string, n int) {
	t.Helper()
	ims, err := c.Imports(context.Background())
	if err != nil || len(ims) != n {
		t.Fatalf("imports: %+v %v", ims, err)
	}
	for _, im := range ims {
		if im.State != api.ImportFailed || !strings.Contains(im.Error, "interrupted") {
			t.Fatalf("cut import: %+v", im)
		}
	}
	if apps, err := c.Apps(context.Background()); err != nil || len(apps) != 0 {
		t.Fatalf("a cut import left an app: %+v %v", apps, err)
	}
	if es, _ := os.ReadDir(filepath.Join(dataDir, "imports")); len(es) != 0 {
		t.Fatalf("staging left: %v", es)
	}
}

// buildPackage makes a signed package of app "killme" with one two-arch image of a few MiB.
func buildPackage(t testing.TB, dir, keyFile string) string {
	t.Helper()
	layout, err := images.CreateLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	idx := imagestest.RandomIndex(t, []string{"amd64", "arm64"}, 2, 2, 1<<20)
	if _, err := layout.Append(context.Background(), "example.com/killme/app:1.0", idx, nil); err != nil {
		t.Fatal(err)
	}
	appFile := filepath.Join(dir, "app.yaml")
	os.WriteFile(appFile, []byte(`apiVersion: wutong.io/v1alpha1
kind: App
key: killme
version: 1.0.0
components:
  - name: app
    image: example.com/killme/app:1.0
`), 0o644)
	key, err := bundle.LoadPrivateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	info, err := appkg.Build(context.Background(), appkg.BuildOptions{AppFile: appFile, OutDir: dir, Layouts: []string{string(layout)}, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return info.Path
}

func fileSize(t *testing.T, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Plain HTTP beyond loopback must be asked for: the password and the session cookie would cross the network.
func TestPlainHTTPAllowed(t *testing.T) {
	for _, c := range []struct {
		listen   string
		insecure bool
		ok       bool
	}{
		{"127.0.0.1:8080", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{":8080", false, false},
		{"0.0.0.0:8080", false, false},
		{"10.99.0.10:8080", false, false},
		{":8080", true, true},
		{"nonsense", false, false},
	} {
		err := plainHTTPAllowed(c.listen, c.insecure)
		if (err == nil) != c.ok {
			t.Errorf("plainHTTPAllowed(%q, %v) = %v, want ok=%v", c.listen, c.insecure, err, c.ok)
		}
		if err != nil && c.listen != "nonsense" && !strings.Contains(err.Error(), "--tls-cert") {
			t.Errorf("the refusal does not say what to do: %v", err)
		}
	}
}

// TestServeTLS: with --tls-cert the real server speaks HTTPS only, and its session cookie is Secure.
func TestServeTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts wutong serve")
	}
	dir := t.TempDir()
	ca, err := pki.NewCA("test CA", 0)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	crt, key, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	os.WriteFile(crt, certPEM, 0o600)
	os.WriteFile(key, keyPEM, 0o600)
	os.WriteFile(caFile, ca.CertPEM, 0o600)
	pub := filepath.Join(dir, "signer.pub")
	if _, err := bundle.GenerateKey(filepath.Join(dir, "signer.key"), pub); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, filepath.Join(dir, "data"), "", imagestest.NewRegistry(t), pub, "--tls-cert", crt, "--tls-key", key)
	if !strings.HasPrefix(srv.url, "https://") {
		t.Fatalf("server at %s, want https", srv.url)
	}
	c, err := client.New(client.Options{Server: srv.url, CACert: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background(), "admin", adminPassword); err != nil {
		t.Fatalf("login over HTTPS: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Post(srv.url+api.Prefix+"/login", api.MediaJSON, strings.NewReader(`{"username":"admin","password":"`+adminPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var secure bool
	for _, ck := range resp.Cookies() {
		secure = secure || (ck.Name == api.SessionCookie && ck.Secure && ck.HttpOnly)
	}
	if resp.StatusCode != 200 || !secure {
		t.Fatalf("login: %d, cookies %v; want a Secure, HttpOnly session cookie", resp.StatusCode, resp.Cookies())
	}
	// Plain HTTP to the same port does not log anybody in.
	plain := "http://" + strings.TrimPrefix(srv.url, "https://")
	if resp, err := http.Post(plain+api.Prefix+"/login", api.MediaJSON, strings.NewReader(`{"username":"admin","password":"`+adminPassword+`"}`)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("a plain-HTTP login succeeded on the HTTPS port")
		}
	}
}
