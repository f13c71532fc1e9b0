package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/internal/pki"
)

// testPKI is a CA and a server certificate for 127.0.0.1, as files in dir.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	server                    tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := pki.NewCA("registry test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &testPKI{dir: dir, caFile: filepath.Join(dir, "ca", "ca.crt"), certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key")}
	if err := ca.WriteFiles(p.caFile, filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteKeyPair(p.certFile, p.keyFile, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	if p.server, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca.Cert)
	return p
}

// transport trusts the test CA, and nothing else.
func (p *testPKI) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	return tr
}

// logBuffer is a concurrency-safe slog sink for checking what the registry logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func logContext(t *testing.T, level slog.Level) (context.Context, *logBuffer) {
	lb := &logBuffer{}
	return logctx.With(t.Context(), slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: level}))), lb
}

// startTLS serves NewHandler(opts) over HTTPS on 127.0.0.1 with the test PKI's server certificate, and returns the
// registry host (127.0.0.1:PORT). It stops when the test ends.
func startTLS(t *testing.T, ctx context.Context, p *testPKI, opts Options) string {
	t.Helper()
	h, closeApp, err := NewHandler(ctx, opts)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		_ = closeApp()
	})
	return strings.TrimPrefix(srv.URL, "https://")
}

func remoteOpts(t *testing.T, p *testPKI, auth authn.Authenticator) []remote.Option {
	if auth == nil {
		auth = authn.Anonymous
	}
	return []remote.Option{remote.WithContext(t.Context()), remote.WithTransport(p.transport()), remote.WithAuth(auth)}
}

func pushIndex(t *testing.T, ref string, idx v1.ImageIndex, opts ...remote.Option) error {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return remote.WriteIndex(r, idx, opts...)
}

func randomIndex(t *testing.T) v1.ImageIndex {
	return imagestest.RandomIndex(t, []string{"amd64", "arm64", "loong64"}, 1, 1, 1024)
}

func mustDigest(t *testing.T, x interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writeTestHtpasswd(t *testing.T, user, pass string) string {
	t.Helper()
	// bcrypt's lowest cost: the registry checks the hash on every request, and DefaultCost under -race makes a push
	// take a minute. WriteHtpasswd (DefaultCost) has its own test.
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(f, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func mkdirRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "registry")
	if _, err := os.Stat(root); err == nil {
		t.Fatal("root exists before the registry creates it")
	}
	return root
}
