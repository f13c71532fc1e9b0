package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/app"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/importer"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// route is one API operation: its method and pattern, its name (the OpenAPI operationId and the metrics label),
// whether it needs a logged-in user, and its handler. A handler returns an error instead of writing one.
type route struct {
	method, pattern, name string
	public                bool
	handle                func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error
}

type principalKey struct{}

// wrap authenticates the request (unless the route is public) and turns a returned error into problem+json.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p *auth.Principal
		if !rt.public {
			var err error
			if p, err = s.authenticate(r); err != nil {
				s.problem(w, r, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		if err := rt.handle(w, r, p); err != nil {
			s.problem(w, r, err)
		}
	})
}

// authenticate finds the user behind a bearer token or the session cookie.
func (s *Server) authenticate(r *http.Request) (*auth.Principal, error) {
	secret := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, unauthorized("the Authorization header must be \"Bearer TOKEN\"")
		}
		secret = strings.TrimSpace(tok)
	} else if c, err := r.Cookie(api.SessionCookie); err == nil {
		secret = c.Value
	}
	if secret == "" {
		return nil, unauthorized("log in first: POST " + api.Prefix + "/login, or send an API token as \"Authorization: Bearer TOKEN\"")
	}
	ctx := r.Context()
	now := time.Now()
	tok, err := s.store.TokenByHash(ctx, auth.HashToken(secret), now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthorized("the token is unknown, revoked or expired: log in again")
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	u, err := s.store.User(ctx, tok.UserID)
	if err != nil {
		return nil, fmt.Errorf("look up token's user: %w", err)
	}
	if u.Disabled {
		return nil, &api.Problem{Status: http.StatusForbidden, Title: "Account disabled", Detail: "this account is disabled; ask an administrator"}
	}
	p, err := s.principal(ctx, u)
	if err != nil {
		return nil, err
	}
	p.TokenID = tok.ID
	if now.Sub(tok.LastUsedAt) > time.Minute {
		if err := s.store.TouchToken(ctx, tok.ID, now); err != nil {
			logctx.From(ctx).Warn("record token use", "err", err)
		}
	}
	return p, nil
}

func (s *Server) principal(ctx context.Context, u *store.User) (*auth.Principal, error) {
	ms, err := s.store.MembershipsOf(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("look up memberships: %w", err)
	}
	p := &auth.Principal{User: *u, Roles: map[int64]store.Role{}}
	for _, m := range ms {
		p.Roles[m.TeamID] = m.Role
	}
	return p, nil
}

func unauthorized(detail string) *api.Problem {
	return &api.Problem{Status: http.StatusUnauthorized, Title: "Not logged in", Detail: detail}
}

func forbidden(detail string) *api.Problem {
	return &api.Problem{Status: http.StatusForbidden, Title: "Forbidden", Detail: detail}
}

func badRequest(detail string) *api.Problem {
	return &api.Problem{Status: http.StatusBadRequest, Title: "Bad request", Detail: detail}
}

// problem writes err as application/problem+json, choosing the status from its type. Unexpected errors are logged
// and answered with a generic message, so that internals do not leak.
func (s *Server) problem(w http.ResponseWriter, r *http.Request, err error) {
	p := toProblem(err)
	if p.Status >= 500 {
		logctx.From(r.Context()).Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p.Instance = r.URL.Path
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wutong"`)
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.Header().Set("Content-Type", api.MediaProblem)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func toProblem(err error) *api.Problem {
	var (
		p     *api.Problem
		conf  *store.ConflictError
		inv   *app.ValidationError
		trust *bundle.TrustError
		integ *bundle.IntegrityError
		large *importer.TooLargeError
		maxb  *http.MaxBytesError
		full  *bundle.DiskFullError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, store.ErrNotFound):
		return &api.Problem{Status: http.StatusNotFound, Title: "Not found", Detail: err.Error()}
	case errors.As(err, &conf):
		return &api.Problem{Status: http.StatusConflict, Title: "Conflict", Detail: conf.Error()}
	case errors.As(err, &inv):
		out := &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Invalid app model", Detail: "the package's app model has errors"}
		for _, pr := range inv.Problems {
			out.Errors = append(out.Errors, api.FieldError{Path: pr.Path, Line: pr.Line, Message: pr.Message, Fix: pr.Fix})
		}
		return out
	case errors.As(err, &trust):
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Package not trusted", Detail: err.Error()}
	case errors.As(err, &integ):
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Package damaged or incomplete", Detail: err.Error()}
	case errors.As(err, &large):
		return &api.Problem{Status: http.StatusRequestEntityTooLarge, Title: "Package too large", Detail: err.Error()}
	case errors.As(err, &maxb):
		return &api.Problem{Status: http.StatusRequestEntityTooLarge, Title: "Request too large", Detail: fmt.Sprintf("the body may be at most %d bytes", maxb.Limit)}
	case errors.As(err, &full):
		return &api.Problem{Status: http.StatusInsufficientStorage, Title: "Server disk full", Detail: err.Error()}
	case errors.Is(err, context.Canceled):
		return &api.Problem{Status: 499, Title: "Request cancelled"}
	}
	return &api.Problem{Status: http.StatusInternalServerError, Title: "Internal error", Detail: "the server failed; its log has the details"}
}

// decode reads a JSON body of at most 1 MiB into v, refusing unknown fields.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != api.MediaJSON {
			return &api.Problem{Status: http.StatusUnsupportedMediaType, Title: "Unsupported media type", Detail: "send " + api.MediaJSON}
		}
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("read JSON body: " + err.Error())
	}
	return nil
}

// reply writes v as JSON with the given status.
func reply(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", api.MediaJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// clientIP is the peer address (proxies are not trusted for the rate limit).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// metrics are the server's Prometheus series.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	imports     *prometheus.CounterVec
	importBytes prometheus.Counter
	logins      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wutong_http_requests_total",
			Help: "API requests by operation and status code."}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wutong_http_request_duration_seconds",
			Help: "API request latency by operation.", Buckets: prometheus.DefBuckets}, []string{"operation"}),
		imports: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wutong_imports_total",
			Help: "Finished package imports by result: done, unchanged or failed."}, []string{"result"}),
		importBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "wutong_import_received_bytes_total",
			Help: "Package bytes received by imports."}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wutong_logins_total",
			Help: "Login attempts by result: ok, wrong, limited."}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.duration, m.imports, m.importBytes, m.logins)
	return m
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts and times each request under its operation name.
func (s *Server) instrument(rt route, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(rt.name, strconv.Itoa(sw.code)).Inc()
		s.metrics.duration.WithLabelValues(rt.name).Observe(time.Since(start).Seconds())
	})
}
