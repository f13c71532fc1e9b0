package imagestest

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd" // access controller "htpasswd"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
)

// NewAuthRegistry starts a registry like NewRegistryWith, but served over TLS and requiring htpasswd basic auth
// as user with password (distribution's "htpasswd" access controller, as the embedded registry uses). It returns
// the registry's host:port and the path of a PEM file holding the CA certificate that a client must trust
// (httptest's certificate for 127.0.0.1). wrap, when not nil, sees every request before the registry does.
func NewAuthRegistry(t testing.TB, user, password string, wrap func(http.Handler) http.Handler) (host, caFile string) {
	t.Helper()
	quiet.Do(func() { logrus.SetLevel(logrus.FatalLevel) })
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt: %v", err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory":    configuration.Parameters{},
			"delete":      configuration.Parameters{"enabled": true},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
		Auth: configuration.Auth{"htpasswd": configuration.Parameters{"realm": "imagestest", "path": htpasswd}},
	}
	cfg.HTTP.Secret = "imagestest"
	app := handlers.NewApp(context.Background(), cfg)
	var h http.Handler = app
	if wrap != nil {
		h = wrap(app)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients that do not trust the CA are expected
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		_ = app.Shutdown()
	})
	caFile = filepath.Join(dir, "ca.crt")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "https://"), caFile
}
