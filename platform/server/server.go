// Package server is the platform's HTTP server, `wutong serve`: the JSON API under /api/v1 with problem+json errors
// and an OpenAPI document, /healthz and /metrics. It wires the store, authentication and the importer together;
// the work itself lives in those packages.
package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images/push"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/importer"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// DataDir holds the SQLite database, import staging and the generated admin password. Default /var/lib/wutong.
	DataDir string
	// StoreDSN selects the store: empty for SQLite in DataDir, "sqlite:PATH", or "postgres://…".
	StoreDSN string
	// Store, when set, is used instead of opening StoreDSN; the caller keeps it and closes it.
	Store *store.Store
	// Registry is the cluster registry that imported images are pushed to (Target HOST:PORT, credentials, CA).
	Registry push.Options
	// TrustedKeys are the package signers accepted; when empty the keys in TrustDir are used.
	TrustedKeys []ed25519.PublicKey
	// TrustDir holds trusted *.pem/*.pub keys. Default bundle.DefaultTrustDir.
	TrustDir string
	// InsecureSkipVerify accepts unsigned packages and unknown signers (integrity is still checked). Logged loudly.
	InsecureSkipVerify bool
	// ExportKey signs exported packages; nil exports unsigned ones, which importers refuse unless told otherwise.
	ExportKey ed25519.PrivateKey
	// MaxUploadBytes refuses larger packages. Default importer.DefaultMaxBytes (64 GiB).
	MaxUploadBytes int64
	// AdminUser and AdminPassword bootstrap the first admin when the store has no users. AdminUser defaults to
	// "admin". With no password one is generated and written to DataDir/admin-password (0600); it is never logged.
	AdminUser, AdminPassword string
	// SessionTTL is how long a login lasts. Default 12 h.
	SessionTTL time.Duration
	// Hasher hashes passwords. Default auth.DefaultHasher.
	Hasher auth.Hasher
	// Limiter limits login attempts. Default 5 failures, then one per 12 s, per user name and per client address.
	Limiter *auth.Limiter
	// SecureCookie marks the session cookie Secure (set when serving TLS or behind a TLS proxy).
	SecureCookie bool
}

// Server serves the platform API. Create it with New; close it with Close.
type Server struct {
	opts     Options
	store    *store.Store
	ownStore bool
	importer *importer.Importer
	limiter  *auth.Limiter
	metrics  *metrics
	registry *prometheus.Registry
	mux      *http.ServeMux
	routes   []route
	// work tracks background imports so that Close can wait for them; importCtx ends when Close is called.
	work      sync.WaitGroup
	importCtx context.Context
	stop      context.CancelFunc
}

// New opens the store, applies its migrations, bootstraps the first admin and readies the importer.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		opts.DataDir = "/var/lib/wutong"
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.AdminUser == "" {
		opts.AdminUser = "admin"
	}
	if opts.Limiter == nil {
		opts.Limiter = &auth.Limiter{}
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("make data directory: %w", err)
	}
	st, owned := opts.Store, false
	if st == nil {
		dsn := opts.StoreDSN
		if dsn == "" {
			dsn = "sqlite:" + filepath.Join(opts.DataDir, "wutong.db")
		}
		var err error
		if st, err = store.Open(ctx, dsn); err != nil {
			return nil, err
		}
		owned = true
	}
	closeStore := func() {
		if owned {
			st.Close()
		}
	}
	trust := bundle.ReadOptions{Keys: opts.TrustedKeys, TrustDir: opts.TrustDir, InsecureSkipVerify: opts.InsecureSkipVerify}
	if opts.InsecureSkipVerify {
		logctx.From(ctx).Warn("INSECURE: package signatures are not checked (--insecure-skip-verify); anyone who can upload can put images into the registry")
	}
	imp, err := importer.New(importer.Options{Store: st, Dir: filepath.Join(opts.DataDir, "imports"), Trust: trust,
		Registry: opts.Registry, MaxBytes: opts.MaxUploadBytes})
	if err != nil {
		closeStore()
		return nil, err
	}
	if err := imp.Recover(ctx); err != nil {
		closeStore()
		return nil, err
	}
	s := &Server{opts: opts, store: st, ownStore: owned, importer: imp, limiter: opts.Limiter}
	s.importCtx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	if err := s.bootstrap(ctx); err != nil {
		closeStore()
		return nil, err
	}
	s.registry = prometheus.NewRegistry()
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newMetrics(s.registry)
	s.mux = http.NewServeMux()
	s.routes = s.routeTable()
	for _, r := range s.routes {
		s.mux.Handle(r.method+" "+r.pattern, s.instrument(r, s.wrap(r)))
	}
	return s, nil
}

// bootstrap makes the first admin when there are no users yet.
func (s *Server) bootstrap(ctx context.Context) error {
	n, err := s.store.CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return nil
	}
	pw, where := s.opts.AdminPassword, ""
	if pw == "" {
		pw = auth.GeneratePassword()
		where = filepath.Join(s.opts.DataDir, "admin-password")
		if err := os.WriteFile(where, []byte(pw+"\n"), 0o600); err != nil {
			return fmt.Errorf("write generated admin password: %w", err)
		}
	}
	hash, err := s.opts.Hasher.Hash(pw)
	if err != nil {
		return fmt.Errorf("admin password: %w", err)
	}
	u := &store.User{Name: s.opts.AdminUser, DisplayName: "Administrator", PasswordHash: hash, Admin: true}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	t := &store.Team{Name: "default", DisplayName: "Default team"}
	if err := s.store.CreateTeam(ctx, t); err != nil {
		return fmt.Errorf("create default team: %w", err)
	}
	if err := s.store.SetMember(ctx, t.ID, u.ID, store.RoleTeamAdmin); err != nil {
		return fmt.Errorf("add admin to default team: %w", err)
	}
	if where != "" {
		logctx.From(ctx).Info("first admin created; its generated password is in the file", "user", u.Name, "file", where)
	} else {
		logctx.From(ctx).Info("first admin created with the given password", "user", u.Name)
	}
	return nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves on ln until ctx ends, then shuts down gracefully (in-flight requests get 10 s).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// Close stops background imports (they are marked failed and can be run again) and closes the store.
func (s *Server) Close() error {
	s.stop()
	s.work.Wait()
	if !s.ownStore {
		return nil
	}
	return s.store.Close()
}
