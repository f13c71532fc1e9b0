// Package registry is the embedded image registry: distribution/distribution v3 as a library over its filesystem
// storage driver, served over HTTPS with optional htpasswd basic auth and a read-only mode, plus /healthz. It is what
// `wtctl registry serve` runs as a systemd service on the registry hosts.
//
// Content lives where distribution's filesystem driver puts it, under Options.Root/docker/registry/v2, so a registry
// seeded straight into that directory serves the seeded images.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd" // access controller "htpasswd"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // storage driver "filesystem"

	"github.com/wutong-paas/wutong-offline/internal/logctx"
)

// Defaults applied to a zero Options field.
const (
	DefaultAddr            = ":5000"
	DefaultShutdownTimeout = 30 * time.Second
	// Realm is the basic-auth realm the registry announces.
	Realm = "wutong-registry"
)

// Options configure the registry.
type Options struct {
	// Root is the storage root directory (distribution's filesystem driver "rootdirectory"). Required; created 0755.
	Root string
	// Addr is the listen address HOST:PORT; DefaultAddr (":5000") when empty. Ignored when Listener is set.
	Addr string
	// TLSCert and TLSKey are PEM files; the registry serves HTTPS (TLS 1.2 or later) when both are set. Setting only
	// one of them is an error.
	TLSCert, TLSKey string
	// Htpasswd is a bcrypt htpasswd file (see WriteHtpasswd). When set, every registry request needs basic auth as a
	// user in it; the file must exist (distribution would otherwise invent a user and log its password). The file is
	// re-read when it changes. /healthz needs no auth.
	Htpasswd string
	// ReadOnly refuses pushes and deletes (distribution's maintenance read-only mode); pulls still work.
	ReadOnly bool
	// AnonymousPull serves pulls (GET and HEAD without an Authorization header) with no credentials, from a
	// read-only view of the same storage, while pushes and deletes still need Htpasswd. The cluster's nodes pull
	// this way: they hold no registry password.
	AnonymousPull bool
	// Listener, when set, is served instead of listening on Addr (tests). Serve closes it.
	Listener net.Listener
	// ShutdownTimeout bounds the graceful stop after ctx is cancelled; DefaultShutdownTimeout (30s) when 0. Requests
	// still running after it are cut off.
	ShutdownTimeout time.Duration
}

// Serve runs the registry until ctx is cancelled, then stops gracefully: it stops accepting, lets running requests
// finish for up to ShutdownTimeout, and returns nil. A bad option, an unusable certificate or a failed listen (address
// in use, permission denied) is returned at once with the address in the message.
func Serve(ctx context.Context, opts Options) error {
	log := logctx.From(ctx)
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	var tlsConf *tls.Config
	if opts.TLSCert != "" || opts.TLSKey != "" {
		if opts.TLSCert == "" || opts.TLSKey == "" {
			return errors.New("serve registry: TLS needs both a certificate and a key")
		}
		pair, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return fmt.Errorf("load registry TLS key pair: %w", err)
		}
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	}
	h, closeApp, err := NewHandler(ctx, opts)
	if err != nil {
		return err
	}
	defer closeApp()

	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", opts.Addr); err != nil {
			return fmt.Errorf("listen on %s: %w", opts.Addr, err)
		}
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No read or write timeout: blobs are large and links on site can be slow.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug), // TLS handshake failures of probes and scanners
	}
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
	}
	log.Info("registry serving", "addr", ln.Addr().String(), "scheme", scheme, "root", opts.Root,
		"auth", opts.Htpasswd != "", "readOnly", opts.ReadOnly)

	errc := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve registry on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("registry stopping", "timeout", opts.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("stop registry: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve registry on %s: %w", ln.Addr(), err)
	}
	log.Info("registry stopped")
	return nil
}

// NewHandler returns the registry as an http.Handler: distribution's app, and /healthz answering 200 "ok" while the
// storage root is readable (503 otherwise), without auth. close stops the app's background work. The app's own logs
// (logrus, a process global) go to logctx.From(ctx), see bridgeLogrus. NewHandler creates Root when missing.
func NewHandler(ctx context.Context, opts Options) (h http.Handler, close func() error, err error) {
	if opts.Root == "" {
		return nil, nil, errors.New("new registry: no storage root")
	}
	if err := os.MkdirAll(opts.Root, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create registry root: %w", err)
	}
	if opts.Htpasswd != "" {
		if _, err := os.Stat(opts.Htpasswd); err != nil {
			return nil, nil, fmt.Errorf("check htpasswd file: %w", err)
		}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, nil, fmt.Errorf("generate upload secret: %w", err)
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": opts.Root},
			"cache":      configuration.Parameters{"blobdescriptor": "inmemory"},
			// The purger would delete uploads older than a week, logging each sweep; restarts are rare and an
			// abandoned upload costs only disk until the next garbage collection.
			"maintenance": configuration.Parameters{
				"uploadpurging": map[any]any{"enabled": false},
				"readonly":      map[any]any{"enabled": opts.ReadOnly},
			},
		},
	}
	// The secret signs upload state between the requests of one push; a single process needs no shared one.
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	cfg.Catalog.MaxEntries = 1000 // distribution returns an empty /v2/_catalog when this is 0
	if opts.Htpasswd != "" {
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": Realm, "path": opts.Htpasswd}}
	}
	bridgeLogrus(logctx.From(ctx))
	app, err := newApp(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	var main http.Handler = app
	closeAll := app.Shutdown
	if opts.AnonymousPull && opts.Htpasswd != "" {
		anon := *cfg
		anon.Auth = nil
		anon.Storage = configuration.Storage{}
		for k, v := range cfg.Storage {
			anon.Storage[k] = v
		}
		anon.Storage["maintenance"] = configuration.Parameters{
			"uploadpurging": map[any]any{"enabled": false},
			"readonly":      map[any]any{"enabled": true},
		}
		reader, err := newApp(ctx, &anon)
		if err != nil {
			_ = app.Shutdown()
			return nil, nil, err
		}
		main = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("Authorization") == "" {
				reader.ServeHTTP(w, r)
				return
			}
			app.ServeHTTP(w, r)
		})
		closeAll = func() error { return errors.Join(app.Shutdown(), reader.Shutdown()) }
	}
	mux := http.NewServeMux()
	mux.Handle("/", main)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := checkRoot(opts.Root); err != nil {
			logctx.From(r.Context()).Warn("registry unhealthy", "err", err)
			http.Error(w, "storage root not readable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok")
	})
	return mux, closeAll, nil
}

// newApp is handlers.NewApp with its panics on a bad configuration turned into an error.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("configure registry: %v", r)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// checkRoot reports whether the storage root can be listed.
func checkRoot(root string) error {
	f, err := os.Open(root)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
