// Package server is the platform's HTTP server, `wutong serve`: the JSON API under /api/v1 with problem+json errors
// and an OpenAPI document, /healthz and /metrics. It wires the store, authentication and the importer together;
// the work itself lives in those packages.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/wutong-paas/wutong-offline/platform/deploy"
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
	// Limiter limits login attempts: per user name and client address, and per client address, with backoff.
	// Default auth.Limiter's defaults (5 failures per user and address, 20 per address, then one per 12 s, doubling).
	Limiter *auth.Limiter
	// Gate bounds concurrent password checks, each of which holds the hash's memory. Default auth.Gate's defaults
	// (half the CPUs, 1 or 2, at once; 1 per client address; 16 waiting per lane for up to 3 s; beyond that 429).
	// Addresses that logged in successfully in the last 7 days wait first, then addresses with no failure on record.
	Gate *auth.Gate
	// SecureCookie marks the session cookie Secure (set when serving TLS or behind a TLS proxy).
	SecureCookie bool
	// TLS, when set, makes Serve speak HTTPS with it, and marks the session cookie Secure.
	TLS *tls.Config
	// AllowedOrigins are further origins (scheme://host[:port]) whose pages may send cookie-authenticated writes,
	// for a server behind a proxy that rewrites the Host header. The server's own origin is always allowed.
	AllowedOrigins []string
	// MaxImports is how many imports may run at once, from upload to recorded version; more are refused with 429.
	// Default 4.
	MaxImports int
	// MaxConns caps the open connections, and MaxConnsPerAddr those from one client address. Defaults 1024 and 64.
	MaxConns, MaxConnsPerAddr int
	// RequestTimeout bounds reading a request (and twice it, writing its answer), for every operation but uploads
	// and downloads. Default 30 s.
	RequestTimeout time.Duration
	// StallTimeout cuts an upload or a download that moves less than transferChunk bytes in this long. Default 30 s.
	StallTimeout time.Duration
	// Deploy configures the app deployer; its Store is set by New. With no Deploy.Clusters the server deploys
	// nothing and answers deploy operations with 503.
	Deploy deploy.Options
}

// Server serves the platform API. Create it with New; close it with Close.
type Server struct {
	opts     Options
	store    *store.Store
	ownStore bool
	importer *importer.Importer
	deployer *deploy.Deployer // nil when no cluster is reachable
	limiter  *auth.Limiter
	gate     *auth.Gate
	known    auth.KnownAddrs // addresses with a recent successful login: the gate's priority lane
	dummy    string          // a hash nobody's password matches, checked for unknown users
	imports  chan struct{}   // one token per running import
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
	if opts.Gate == nil {
		opts.Gate = &auth.Gate{}
	}
	if opts.TLS != nil {
		opts.SecureCookie = true
	}
	if opts.MaxImports <= 0 {
		opts.MaxImports = 4
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 1024
	}
	if opts.MaxConnsPerAddr <= 0 {
		opts.MaxConnsPerAddr = 64
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = 30 * time.Second
	}
	if !nameRE.MatchString(opts.AdminUser) {
		return nil, fmt.Errorf("admin user name %q: use 1-40 lower-case letters, digits and '-', starting and ending with a letter or digit", opts.AdminUser)
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
	s := &Server{opts: opts, store: st, ownStore: owned, importer: imp, limiter: opts.Limiter, gate: opts.Gate,
		dummy: opts.Hasher.DummyHash(), imports: make(chan struct{}, opts.MaxImports)}
	s.importCtx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	if err := s.bootstrap(ctx); err != nil {
		closeStore()
		return nil, err
	}
	if len(opts.Deploy.Clusters) > 0 {
		if err := s.startDeployer(ctx); err != nil {
			s.stop()
			closeStore()
			return nil, err
		}
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

// startDeployer makes the deployer, starts its watches and resumes the revisions a previous run left pending.
func (s *Server) startDeployer(ctx context.Context) error {
	o := s.opts.Deploy
	o.Store = s.store
	d, err := deploy.New(ctx, o)
	if err != nil {
		return err
	}
	if err := d.Start(s.importCtx); err != nil {
		return err
	}
	s.deployer = d
	pending, err := d.Pending(ctx)
	if err != nil {
		return fmt.Errorf("find unfinished revisions: %w", err)
	}
	for _, r := range pending {
		logctx.From(ctx).Info("resuming an unfinished revision", "install", r.InstallID, "revision", r.Number, "reason", r.Reason)
		s.runRevision(r.InstallID, r.Number)
	}
	return nil
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

// Serve serves on ln until ctx ends, then shuts down gracefully (in-flight requests get 10 s). It caps the open
// connections (Options.MaxConns, MaxConnsPerAddr), speaks HTTPS when Options.TLS is set, and gives every request
// deadlines: 10 s for the headers (and the TLS handshake), then those of its route (see wrap).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ln = newLimitListener(ln, s.opts.MaxConns, s.opts.MaxConnsPerAddr)
	if s.opts.TLS != nil {
		cfg := s.opts.TLS.Clone()
		cfg.NextProtos = []string{"http/1.1"} // HTTP/1.1 only: per-request deadlines, and no HTTP/2 attack surface
		ln = tls.NewListener(ln, cfg)
	}
	// Handshake failures and such from clients are the clients' problem: debug level, so an attack cannot flood the log.
	errLog := slog.NewLogLogger(logctx.From(ctx).Handler(), slog.LevelDebug)
	hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: errLog, BaseContext: func(net.Listener) context.Context { return ctx }}
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
