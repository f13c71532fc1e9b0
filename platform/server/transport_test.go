package server

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// rawRequest writes head (and body) on a new connection from loopback address ip, then waits up to wait for the
// server's answer or close; it returns what came back and how long it took.
func rawRequest(t *testing.T, url, ip, head string, wait time.Duration) (string, time.Duration) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	data, _ := io.ReadAll(c)
	return string(data), time.Since(start)
}

// Finding 3: a body that trickles is cut after RequestTimeout, an upload that stalls after StallTimeout.
func TestSlowBodiesAreCut(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), func(o *Options) {
		o.RequestTimeout, o.StallTimeout = 500*time.Millisecond, 500*time.Millisecond
	})
	got, took := rawRequest(t, e.url, "127.0.0.1", "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\n\r\n{\"username\":", 5*time.Second)
	if took > 3*time.Second || !strings.HasPrefix(got, "HTTP/1.1 400") {
		t.Fatalf("a trickling JSON body held the connection for %v, answer %q", took, got)
	}
	admin := e.client("admin", adminPassword)
	pkg, err := os.ReadFile(buildPackage(t, "shop", "1.0.0", "", e.key))
	if err != nil {
		t.Fatal(err)
	}
	got, took = rawRequest(t, e.url, "127.0.0.1", "POST /api/v1/imports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+admin.Token()+
		"\r\nContent-Type: "+api.MediaPackage+"\r\nContent-Length: "+fmt.Sprint(len(pkg))+"\r\n\r\n"+string(pkg[:1000]), 5*time.Second)
	if took > 3*time.Second || !strings.HasPrefix(got, "HTTP/1.1 408") || !strings.Contains(got, "stalled after 1000 bytes") {
		t.Fatalf("a stalled upload held the connection for %v, answer %q", took, got)
	}
	ims, err := admin.Imports(context.Background())
	if err != nil || len(ims) != 1 || ims[0].State != api.ImportFailed || !strings.Contains(ims[0].Error, "stalled") {
		t.Fatalf("the stalled import: %+v %v", ims, err)
	}
}

// Finding 3: one client address cannot hold every connection; others, and /healthz, still get in.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), func(o *Options) { o.MaxConnsPerAddr = 4 })
	addr := strings.TrimPrefix(e.url, "http://")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}}
	var conns []net.Conn
	for range 10 {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			closed++
		}
	}
	if closed != 6 {
		t.Fatalf("%d of 10 idle connections from one address were closed, want the 6 over the cap of 4", closed)
	}
	start := time.Now()
	code, _, _ := send(t, fromAddr("127.0.0.6"), "GET", e.url+"/healthz", "", nil)
	if code != 200 || time.Since(start) > time.Second {
		t.Fatalf("/healthz from another address: %d after %v", code, time.Since(start))
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// Finding 4: imports beyond Options.MaxImports are refused with 429 while the others run.
func TestConcurrentImportsAreBounded(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), func(o *Options) { o.MaxImports = 1 })
	admin := e.client("admin", adminPassword)
	pkg := buildPackage(t, "shop", "1.0.0", "", e.key)
	data, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	// The first upload sends half the package and holds.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", e.url+api.Prefix+"/imports", pr)
	req.Header.Set("Authorization", "Bearer "+admin.Token())
	req.Header.Set("Content-Type", api.MediaPackage)
	first := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	pw.Write(data[:len(data)/2])
	time.Sleep(200 * time.Millisecond)
	if _, err := importWait(t, admin, pkg, ""); problemStatus(err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "imports are running") {
		t.Fatalf("a second import while one runs: %v, want 429", err)
	}
	pw.Write(data[len(data)/2:])
	pw.Close()
	if code := <-first; code != http.StatusAccepted {
		t.Fatalf("the first import: %d", code)
	}
	// Once it has finished, the slot is free again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		im, err := importWait(t, admin, pkg, "")
		if err == nil && im.State == api.ImportDone {
			break
		}
		if problemStatus(err) != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("import after the first finished: %+v %v", im, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hostileArchive is a zstd-compressed tar whose first entry has the given name.
func hostileArchive(t *testing.T, first string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: first, Mode: 0o644, Size: 2, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("{}"))
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// Finding 5: what an attacker sends is not multiplied into errors, the store and the list of imports.
func TestErrorsDoNotAmplifyInput(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), nil)
	admin := e.client("admin", adminPassword)
	post := func(body []byte, fileName string) (int, string) {
		req, _ := http.NewRequest("POST", e.url+api.Prefix+"/imports", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin.Token())
		req.Header.Set("Content-Type", api.MediaPackage)
		req.Header.Set(api.HeaderFilename, fileName)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post(hostileArchive(t, strings.Repeat("n", 100000)), strings.Repeat("f", 300)+".wtapp")
	if code != http.StatusUnprocessableEntity || len(body) > 2048 {
		t.Fatalf("a 100 KB entry name: %d, answer of %d bytes: %.300s", code, len(body), body)
	}
	code, _ = post(hostileArchive(t, "x"), strings.Repeat("f", 5000))
	if code != http.StatusBadRequest {
		t.Fatalf("a 5000-byte file name header: %d, want 400", code)
	}
	ims, err := admin.Imports(context.Background())
	if err != nil || len(ims) != 1 {
		t.Fatalf("imports: %+v %v", ims, err)
	}
	if len(ims[0].Error) > 2048 || len(ims[0].FileName) > 255 || ims[0].Error == "" {
		t.Fatalf("stored: error of %d bytes, file name of %d bytes", len(ims[0].Error), len(ims[0].FileName))
	}
}

// Smaller point: an unsafe entry is the client's fault (422), not a server error.
func TestUnsafeEntryIs422(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), nil)
	admin := e.client("admin", adminPassword)
	// A signed archive's third entry, after manifest and signature, is an absolute path.
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	m := &bundle.Manifest{APIVersion: bundle.APIVersion, Kind: bundle.KindApp, Name: "shop", Version: "1.0.0", Arches: []string{"amd64"}}
	for _, p := range []string{"app.json", "oci/oci-layout", "oci/index.json"} {
		m.Entries = append(m.Entries, bundle.BytesItem(p, []byte("{}")).Entry)
	}
	mb, _ := m.Marshal()
	sb, _ := bundle.Sign(mb, e.key)
	for _, ent := range []struct {
		name string
		data []byte
	}{{bundle.ManifestName, mb}, {bundle.SignatureName, sb}, {"/etc/cron.d/x", []byte("boom")}} {
		tw.WriteHeader(&tar.Header{Name: ent.name, Mode: 0o644, Size: int64(len(ent.data)), Typeflag: tar.TypeReg})
		tw.Write(ent.data)
	}
	tw.Close()
	zw.Close()
	req, _ := http.NewRequest("POST", e.url+api.Prefix+"/imports", &buf)
	req.Header.Set("Authorization", "Bearer "+admin.Token())
	req.Header.Set("Content-Type", api.MediaPackage)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b), "unsafe entry") {
		t.Fatalf("an absolute path in a package: %d %s", resp.StatusCode, b)
	}
	if strings.Contains(e.logs.String(), "level=ERROR") {
		t.Fatalf("an unsafe entry was logged as a server error:\n%s", e.logs.String())
	}
}

// Finding 6: cookie-authenticated writes must come from the server's own pages, with the route's media type.
func TestCrossSiteWritesAreRefused(t *testing.T) {
	e := newEnv(t, storetest.Open(t, "sqlite"), nil)
	resp, err := http.Post(e.url+api.Prefix+"/login", api.MediaJSON, strings.NewReader(loginBody("admin", adminPassword)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == api.SessionCookie {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatal("no session cookie")
	}
	c := fromAddr("127.0.0.1")
	user := func(n int) string { return fmt.Sprintf(`{"name":"mallory%d","admin":true}`, n) }
	for i, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"no content type (a no-cors fetch of a Blob)", map[string]string{"Cookie": cookie}, 415},
		{"text/plain (a form or no-cors post)", map[string]string{"Cookie": cookie, "Content-Type": "text/plain"}, 415},
		{"an app on another port of the same host", map[string]string{"Cookie": cookie, "Content-Type": api.MediaJSON, "Origin": "http://127.0.0.1:30081"}, 403},
		{"same-site but not same-origin", map[string]string{"Cookie": cookie, "Content-Type": api.MediaJSON, "Sec-Fetch-Site": "same-site"}, 403},
		{"the null origin", map[string]string{"Cookie": cookie, "Content-Type": api.MediaJSON, "Origin": "null"}, 403},
		{"the server's own page", map[string]string{"Cookie": cookie, "Content-Type": api.MediaJSON, "Origin": e.url, "Sec-Fetch-Site": "same-origin"}, 201},
		{"a script with an API token, any origin", map[string]string{"Authorization": "Bearer " + e.client("admin", adminPassword).Token(), "Content-Type": api.MediaJSON, "Origin": "http://evil.example"}, 201},
	} {
		code, _, body := send(t, c, "POST", e.url+api.Prefix+"/users", user(i), tc.hdr)
		if code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, code, tc.want, body)
		}
	}
	// Logout and uploads too; a body where none belongs is refused.
	if code, _, _ := send(t, c, "POST", e.url+api.Prefix+"/logout", "", map[string]string{"Cookie": cookie, "Origin": "http://127.0.0.1:30081"}); code != 403 {
		t.Errorf("cross-origin logout: %d", code)
	}
	if code, _, _ := send(t, c, "POST", e.url+api.Prefix+"/imports", "PK", map[string]string{"Cookie": cookie, "Content-Type": "text/plain"}); code != 415 {
		t.Errorf("import as text/plain: %d", code)
	}
	if code, _, _ := send(t, c, "DELETE", e.url+api.Prefix+"/tokens/1", "x", map[string]string{"Cookie": cookie}); code != 415 {
		t.Errorf("a body on DELETE: %d", code)
	}
}

// Smaller point: a full disk is reported without the server's paths, which stay in its log.
func TestDiskFullHidesPaths(t *testing.T) {
	p := toProblem(fmt.Errorf("import x: %w", &bundle.DiskFullError{Dir: "/var/lib/wutong/imports/abc", Need: 5 << 30, Free: 1 << 20}))
	if p.Status != http.StatusInsufficientStorage || strings.Contains(p.Detail, "/var/lib") || strings.Contains(p.Detail, "MiB") {
		t.Fatalf("507: %+v", p)
	}
}
