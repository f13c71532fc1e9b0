package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestPushPullTLS(t *testing.T) {
	p := newTestPKI(t)
	ctx, _ := logContext(t, slog.LevelInfo)
	root := mkdirRoot(t)
	host := startTLS(t, ctx, p, Options{Root: root})
	idx := randomIndex(t)
	ref := host + "/wutong/app:1.0"
	if err := pushIndex(t, ref, idx, remoteOpts(t, p, nil)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	got, err := remote.Index(mustRef(t, ref), remoteOpts(t, p, nil)...)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if want, have := mustDigest(t, idx), mustDigest(t, got); want != have {
		t.Fatalf("pulled index %s, pushed %s", have, want)
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 3 {
		t.Fatalf("pulled index has %d manifests, want 3", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		img, err := got.Image(d.Digest)
		if err != nil {
			t.Fatalf("pull %s: %v", d.Platform, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("layer of %s: %v", d.Platform, err)
			}
			_, err = io.Copy(io.Discard, rc) // ggcr checks the digest at EOF
			rc.Close()
			if err != nil {
				t.Fatalf("read layer of %s: %v", d.Platform, err)
			}
		}
	}
	// The content is in distribution's filesystem layout under Root, where a seeder writes it too.
	if _, err := os.Stat(filepath.Join(root, "docker", "registry", "v2", "repositories", "wutong", "app", "_manifests", "tags", "1.0")); err != nil {
		t.Errorf("tag not in the filesystem layout: %v", err)
	}
}

// registryErrors is the distribution protocol's error body.
type registryErrors struct {
	Errors []struct{ Code string } `json:"errors"`
}

func TestProtocolErrors(t *testing.T) {
	p := newTestPKI(t)
	ctx, logs := logContext(t, slog.LevelInfo)
	host := startTLS(t, ctx, p, Options{Root: mkdirRoot(t)})
	if err := pushIndex(t, host+"/wutong/app:1.0", randomIndex(t), remoteOpts(t, p, nil)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	client := &http.Client{Transport: p.transport()}
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantCode   string
	}{
		{"base", "/v2/", 200, ""},
		{"health", "/healthz", 200, ""},
		{"known tag", "/v2/wutong/app/manifests/1.0", 200, ""},
		{"unknown tag", "/v2/wutong/app/manifests/2.0", 404, "MANIFEST_UNKNOWN"},
		// distribution v3 answers a manifest of an unknown repository with MANIFEST_UNKNOWN, not NAME_UNKNOWN; the
		// tag list is where it says NAME_UNKNOWN. Clients go by the 404.
		{"manifest of unknown repo", "/v2/wutong/nope/manifests/1.0", 404, "MANIFEST_UNKNOWN"},
		{"tags of unknown repo", "/v2/wutong/nope/tags/list", 404, "NAME_UNKNOWN"},
		{"unknown blob", "/v2/wutong/app/blobs/sha256:" + strings.Repeat("0", 64), 404, "BLOB_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+host+tt.path, nil)
			req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.path == "/healthz" && string(body) != "ok" {
				t.Errorf("healthz body %q, want ok", body)
			}
			if tt.wantCode == "" {
				return
			}
			var re registryErrors
			if err := json.Unmarshal(body, &re); err != nil || len(re.Errors) == 0 || re.Errors[0].Code != tt.wantCode {
				t.Errorf("body %s, want error code %s", body, tt.wantCode)
			}
		})
	}
	// Routine 404s are not worth an Info line on a production registry.
	if strings.Contains(logs.String(), "MANIFEST_UNKNOWN") {
		t.Errorf("a routine 404 was logged at Info:\n%s", logs)
	}
}

func TestHtpasswdAuth(t *testing.T) {
	p := newTestPKI(t)
	ctx, logs := logContext(t, slog.LevelDebug)
	const pass = "s3cret-Pa55"
	host := startTLS(t, ctx, p, Options{Root: mkdirRoot(t), Htpasswd: writeTestHtpasswd(t, "wutong", pass)})
	idx := randomIndex(t)
	tests := []struct {
		name    string
		auth    authn.Authenticator
		wantErr bool
	}{
		{"anonymous", nil, true},
		{"wrong password", &authn.Basic{Username: "wutong", Password: "nope"}, true},
		{"unknown user", &authn.Basic{Username: "root", Password: pass}, true},
		{"right", &authn.Basic{Username: "wutong", Password: pass}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pushIndex(t, host+"/wutong/app:1.0", idx, remoteOpts(t, p, tt.auth)...)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("push: %v", err)
				}
				return
			}
			if !isStatus(err, http.StatusUnauthorized) {
				t.Fatalf("push: %v, want a 401", err)
			}
			// A pull is a GET, whose error body names the code.
			_, err = remote.Index(mustRef(t, host+"/wutong/app:1.0"), remoteOpts(t, p, tt.auth)...)
			if !isStatus(err, http.StatusUnauthorized) || !strings.Contains(err.Error(), "UNAUTHORIZED") {
				t.Fatalf("pull: %v, want a 401 UNAUTHORIZED", err)
			}
		})
	}
	// Pulls need auth too; /healthz does not.
	if _, err := remote.Index(mustRef(t, host+"/wutong/app:1.0"), remoteOpts(t, p, nil)...); err == nil {
		t.Error("anonymous pull succeeded")
	}
	if _, err := remote.Index(mustRef(t, host+"/wutong/app:1.0"), remoteOpts(t, p, &authn.Basic{Username: "wutong", Password: pass})...); err != nil {
		t.Errorf("pull with credentials: %v", err)
	}
	resp, err := (&http.Client{Transport: p.transport()}).Get("https://" + host + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz with auth on: %d, want 200", resp.StatusCode)
	}
	if strings.Contains(logs.String(), pass) {
		t.Errorf("the password is in the log:\n%s", logs)
	}
}

// TestAnonymousPull: with AnonymousPull, a pull needs no credentials while a push still does.
func TestAnonymousPull(t *testing.T) {
	p := newTestPKI(t)
	ctx, _ := logContext(t, slog.LevelDebug)
	const pass = "s3cret-Pa55"
	host := startTLS(t, ctx, p, Options{Root: mkdirRoot(t), Htpasswd: writeTestHtpasswd(t, "wutong", pass), AnonymousPull: true})
	idx := randomIndex(t)
	if err := pushIndex(t, host+"/wutong/app:1.0", idx, remoteOpts(t, p, nil)...); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("anonymous push: %v, want a 401", err)
	}
	if err := pushIndex(t, host+"/wutong/app:1.0", idx, remoteOpts(t, p, &authn.Basic{Username: "wutong", Password: pass})...); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}
	got, err := remote.Index(mustRef(t, host+"/wutong/app:1.0"), remoteOpts(t, p, nil)...)
	if err != nil {
		t.Fatalf("anonymous pull: %v", err)
	}
	want, _ := idx.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("anonymous pull got %s, want %s", d, want)
	}
	// A wrong password is still refused, rather than quietly served as anonymous.
	if _, err := remote.Index(mustRef(t, host+"/wutong/app:1.0"), remoteOpts(t, p, &authn.Basic{Username: "wutong", Password: "nope"})...); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("pull with a wrong password: %v, want a 401", err)
	}
	// A delete without credentials is refused.
	req, _ := http.NewRequest(http.MethodDelete, "https://"+host+"/v2/wutong/app/manifests/"+want.String(), nil)
	resp, err := (&http.Client{Transport: p.transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous delete: %d, want 401", resp.StatusCode)
	}
}

func TestReadOnly(t *testing.T) {
	p := newTestPKI(t)
	ctx, _ := logContext(t, slog.LevelInfo)
	root := mkdirRoot(t)
	idx := randomIndex(t)
	writable := startTLS(t, ctx, p, Options{Root: root})
	if err := pushIndex(t, writable+"/wutong/app:1.0", idx, remoteOpts(t, p, nil)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	ro := startTLS(t, ctx, p, Options{Root: root, ReadOnly: true})
	got, err := remote.Index(mustRef(t, ro+"/wutong/app:1.0"), remoteOpts(t, p, nil)...)
	if err != nil {
		t.Fatalf("pull from the read-only registry: %v", err)
	}
	if mustDigest(t, got) != mustDigest(t, idx) {
		t.Error("read-only registry serves another index")
	}
	err = pushIndex(t, ro+"/wutong/other:1.0", randomIndex(t), remoteOpts(t, p, nil)...)
	if !isStatus(err, http.StatusMethodNotAllowed) {
		t.Fatalf("push to the read-only registry: %v, want 405", err)
	}
	if _, err := remote.Index(mustRef(t, ro+"/wutong/other:1.0"), remoteOpts(t, p, nil)...); err == nil {
		t.Error("the refused push is visible")
	}
}

func TestHealthz(t *testing.T) {
	p := newTestPKI(t)
	ctx, _ := logContext(t, slog.LevelInfo)
	root := mkdirRoot(t)
	host := startTLS(t, ctx, p, Options{Root: root})
	client := &http.Client{Transport: p.transport()}
	get := func() int {
		resp, err := client.Get("https://" + host + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != 200 {
		t.Fatalf("healthz: %d, want 200", code)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz without a root: %d, want 503", code)
	}
}

func TestNewHandlerErrors(t *testing.T) {
	ctx, _ := logContext(t, slog.LevelInfo)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no root", Options{}, "no storage root"},
		{"root is a file", Options{Root: file}, "create registry root"},
		{"missing htpasswd", Options{Root: t.TempDir(), Htpasswd: filepath.Join(t.TempDir(), "nope")}, "htpasswd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := NewHandler(ctx, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewHandler: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// serveTLS runs Serve on a 127.0.0.1 listener with the test PKI's files; cancel stops it, and done yields its result.
func serveTLS(t *testing.T, p *testPKI, opts Options) (host string, cancel func(), done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, _ := logContext(t, slog.LevelInfo)
	ctx, cancelCtx := context.WithCancel(ctx)
	opts.Listener, opts.TLSCert, opts.TLSKey = ln, p.certFile, p.keyFile
	errc, finished := make(chan error, 1), make(chan struct{})
	go func() {
		errc <- Serve(ctx, opts)
		close(finished)
	}()
	t.Cleanup(func() {
		cancelCtx()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("Serve still running at the end of the test")
		}
	})
	return ln.Addr().String(), cancelCtx, errc
}

func TestServeGracefulShutdown(t *testing.T) {
	p := newTestPKI(t)
	host, cancel, done := serveTLS(t, p, Options{Root: mkdirRoot(t), ShutdownTimeout: 5 * time.Second})
	idx := randomIndex(t)
	if err := pushIndex(t, host+"/wutong/app:1.0", idx, remoteOpts(t, p, nil)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		t.Error("still listening after shutdown")
	}
}

func TestServeErrors(t *testing.T) {
	p := newTestPKI(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ctx, _ := logContext(t, slog.LevelInfo)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"address in use", Options{Root: t.TempDir(), Addr: busy.Addr().String()}, "address already in use"},
		{"bad address", Options{Root: t.TempDir(), Addr: "127.0.0.1:http-nope"}, "listen on 127.0.0.1:http-nope"},
		{"cert without key", Options{Root: t.TempDir(), Addr: "127.0.0.1:0", TLSCert: p.certFile}, "both a certificate and a key"},
		{"key of another cert", Options{Root: t.TempDir(), Addr: "127.0.0.1:0", TLSCert: p.caFile, TLSKey: p.keyFile}, "TLS key pair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errc := make(chan error, 1)
			go func() { errc <- Serve(ctx, tt.opts) }()
			select {
			case err := <-errc:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Serve: %v, want an error containing %q", err, tt.want)
				}
				if tt.name == "address in use" && !strings.Contains(err.Error(), busy.Addr().String()) {
					t.Errorf("Serve: %v, want the address in the message", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not fail")
			}
		})
	}
}

// TestSkopeoInspect cross-checks the TLS registry with Debian's skopeo, trusting the test CA through --cert-dir.
func TestSkopeoInspect(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed (apt-get install skopeo): skipping the cross-check")
	}
	p := newTestPKI(t)
	const pass = "skopeo-pass"
	host, _, _ := serveTLS(t, p, Options{Root: mkdirRoot(t), Htpasswd: writeTestHtpasswd(t, "wutong", pass)})
	idx := randomIndex(t)
	if err := pushIndex(t, host+"/wutong/app:1.0", idx, remoteOpts(t, p, &authn.Basic{Username: "wutong", Password: pass})...); err != nil {
		t.Fatalf("push: %v", err)
	}
	certDir := filepath.Dir(p.caFile) // holds only ca.crt
	tests := []struct {
		name    string
		creds   string
		certDir string
		wantErr string
	}{
		{"trusted", "wutong:" + pass, certDir, ""},
		{"wrong password", "wutong:nope", certDir, "unauthorized"},
		{"untrusted CA", "wutong:" + pass, t.TempDir(), "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), skopeo, "inspect", "--raw", "--tls-verify=true", "--cert-dir", tt.certDir,
				"--creds", tt.creds, "docker://"+host+"/wutong/app:1.0")
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user registries.conf or auth files
			out, err := cmd.CombinedOutput()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(strings.ToLower(string(out)), tt.wantErr) {
					t.Fatalf("skopeo: %v, want a failure mentioning %q:\n%s", err, tt.wantErr, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("skopeo inspect: %v\n%s", err, out)
			}
			got, _, err := v1.SHA256(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if want := mustDigest(t, idx); got != want {
				t.Fatalf("skopeo sees manifest %s, pushed %s:\n%s", got, want, out)
			}
		})
	}
}

func mustRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func isStatus(err error, code int) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == code
}

// TestLogBridge checks that distribution's logrus lines reach the slog logger of the context, routine ones at Debug.
func TestLogBridge(t *testing.T) {
	p := newTestPKI(t)
	ctx, logs := logContext(t, slog.LevelDebug)
	host := startTLS(t, ctx, p, Options{Root: mkdirRoot(t)})
	_, err := remote.Index(mustRef(t, host+"/wutong/app:404"), remoteOpts(t, p, nil)...)
	if !isStatus(err, http.StatusNotFound) {
		t.Fatalf("pull of an unknown tag: %v, want 404", err)
	}
	var found bool
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "code=MANIFEST_UNKNOWN") {
			found = true
			for _, want := range []string{"level=DEBUG", "repo=wutong/app", "status=404", "path=/v2/wutong/app/manifests/404"} {
				if !strings.Contains(l, want) {
					t.Errorf("log line lacks %q: %s", want, l)
				}
			}
		}
	}
	if !found {
		t.Fatalf("no MANIFEST_UNKNOWN line in the log:\n%s", logs)
	}
}

// TestLogBridgeAuth checks the Info-level log of an authenticated registry: a wrong password is there, with the user
// but without the password; routine authorized requests are not.
func TestLogBridgeAuth(t *testing.T) {
	p := newTestPKI(t)
	ctx, logs := logContext(t, slog.LevelInfo)
	const pass = "log-pass-1"
	host := startTLS(t, ctx, p, Options{Root: mkdirRoot(t), Htpasswd: writeTestHtpasswd(t, "wutong", pass)})
	ref := mustRef(t, host+"/wutong/app:1")
	if _, err := remote.Index(ref, remoteOpts(t, p, &authn.Basic{Username: "wutong", Password: pass})...); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("authorized pull of an unknown tag: %v, want 404", err)
	}
	if _, err := remote.Index(ref, remoteOpts(t, p, &authn.Basic{Username: "wutong", Password: "bad-pass-2"})...); !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("pull with a wrong password: %v, want 401", err)
	}
	out := logs.String()
	for _, tt := range []struct {
		text string
		want bool
	}{
		{"user failed to authenticate", true},
		{"user=wutong", true},
		{"authorized request", false},
		{"authentication challenge", false},
		{"bad-pass-2", false},
		{pass, false},
	} {
		if strings.Contains(out, tt.text) != tt.want {
			t.Errorf("log contains %q: %v, want %v\n%s", tt.text, !tt.want, tt.want, out)
		}
	}
}
