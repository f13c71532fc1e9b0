package seed

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // storage driver "filesystem"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sirupsen/logrus"

	"github.com/wutong-paas/wutong-offline/images"
)

var quiet sync.Once

// writeLayout writes an OCI layout holding each index under its ref.name annotation.
func writeLayout(t *testing.T, dir string, idxs map[string]v1.ImageIndex) {
	t.Helper()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for n, idx := range idxs {
		if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{images.AnnotationRefName: n})); err != nil {
			t.Fatal(err)
		}
	}
}

// served is a distribution registry serving a filesystem storage root over HTTPS.
type served struct {
	host    string // example.com:PORT, which the transport dials to the server (ggcr treats 127.0.0.1 as plain http)
	addr    string // 127.0.0.1:PORT, for skopeo
	rt      http.RoundTripper
	certDir string // holds ca.crt, for skopeo
}

// serveRoot starts a real distribution registry (filesystem driver) on root, with TLS from httptest. Clients trust
// the server's certificate through a RootCAs pool.
func serveRoot(t *testing.T, root string) *served {
	t.Helper()
	quiet.Do(func() { logrus.SetLevel(logrus.FatalLevel) })
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem":  configuration.Parameters{"rootdirectory": root},
			"cache":       configuration.Parameters{"blobdescriptor": "inmemory"},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
	}
	cfg.HTTP.Secret = "seedtest"
	app := handlers.NewApp(context.Background(), cfg)
	srv := httptest.NewTLSServer(app)
	t.Cleanup(func() {
		srv.Close()
		_ = app.Shutdown()
	})
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pool
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	certDir := t.TempDir()
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return &served{host: "example.com:" + port, addr: addr, rt: tr, certDir: certDir}
}

// pullIndex pulls repo:tag and checks that it is want: the index digest, every child's digest, and every config
// and layer readable with the right digest. It returns the error of the first request instead of failing, so that
// callers can accept a 404.
func (s *served) pullIndex(ctx context.Context, ref string, want v1.Hash) error {
	r, err := name.ParseReference(s.host + "/" + ref)
	if err != nil {
		return err
	}
	idx, err := remote.Index(r, remote.WithTransport(s.rt), remote.WithContext(ctx))
	if err != nil {
		return err
	}
	got, err := idx.Digest()
	if err != nil {
		return err
	}
	if got != want {
		return errors.New("index digest " + got.String() + ", want " + want.String())
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		if h, err := img.Digest(); err != nil || h != d.Digest {
			return errors.New("child manifest " + d.Digest.String() + " differs")
		}
		if _, err := img.RawConfigFile(); err != nil {
			return err
		}
		ls, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range ls {
			rc, err := l.Compressed() // ggcr checks the digest at EOF
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// isUnknown reports whether err is the registry saying the manifest or repository does not exist.
func isUnknown(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusNotFound {
		return false
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}

// skopeoDigest returns the sha256 of `skopeo inspect --raw` for ref, or skips when skopeo is missing.
func (s *served) skopeoRaw(t *testing.T, ref string) []byte {
	t.Helper()
	sk, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo is not installed (apt-get install skopeo); skipping the skopeo cross-check")
	}
	out, err := exec.CommandContext(t.Context(), sk, "inspect", "--raw", "--cert-dir", s.certDir, "docker://"+s.addr+"/"+ref).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("skopeo inspect %s: %v: %s", ref, err, strings.TrimSpace(string(ee.Stderr)))
		}
		t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	return out
}

func digestOf(t testing.TB, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	h, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tagLinks lists every tags/*/current/link under root.
func tagLinks(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, filepath.Join("current", "link")) {
			out = append(out, p)
		}
		return nil
	})
	return out
}
