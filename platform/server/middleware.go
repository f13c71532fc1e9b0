package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/internal/clip"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/app"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/deploy"
	"github.com/wutong-paas/wutong-offline/platform/importer"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// route is one API operation: its method and pattern, its name (the OpenAPI operationId and the metrics label),
// whether it needs a logged-in user, what body it takes, and its handler. A handler returns an error instead of
// writing one.
type route struct {
	method, pattern, name string
	public                bool
	// accepts is the media type the request body must have; "" means the operation takes no body.
	accepts string
	// maxBody caps a JSON body. Default 64 KiB.
	maxBody int64
	// transfer marks an upload (the body streams in) or a download (the answer streams out); both are held to a
	// minimum rate instead of RequestTimeout.
	transfer transfer
	handle   func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error
}

type transfer int

const (
	small    transfer = iota // a JSON request and answer, within RequestTimeout
	upload                   // the request body streams in: at least transferChunk per StallTimeout
	download                 // the answer streams out: every write within StallTimeout
	stream                   // the answer streams out for as long as the client listens (logs): each write within StallTimeout
)

// transferChunk is the least an upload must send per StallTimeout (about 8.5 KiB/s with the 30 s default).
const transferChunk = 256 << 10

type principalKey struct{}

// wrap gives the request its deadlines, refuses cross-site writes and wrong media types, authenticates the request
// (unless the route is public) and turns a returned error into problem+json.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.deadlines(w, rt)
		if err := s.checkRequest(w, r, rt); err != nil {
			s.problem(w, r, err)
			return
		}
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

// deadlines sets the connection's read and write deadlines for this request. Every route sets both, because a
// deadline set for one request would otherwise linger on a kept-alive connection into the next.
func (s *Server) deadlines(w http.ResponseWriter, rt route) {
	rc := http.NewResponseController(w)
	now := time.Now()
	switch rt.transfer {
	case upload: // extended per chunk by the handler's body reader; the answer's deadline is set once it is read
		rc.SetReadDeadline(now.Add(s.opts.StallTimeout))
		rc.SetWriteDeadline(time.Time{})
	case download: // extended per write by the handler
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(now.Add(s.opts.StallTimeout))
	case stream: // the handler sets a write deadline before each write; an idle stream has none
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
	default: // the answer gets a second RequestTimeout, so a request cut while reading still hears why
		rc.SetReadDeadline(now.Add(s.opts.RequestTimeout))
		rc.SetWriteDeadline(now.Add(2 * s.opts.RequestTimeout))
	}
}

// checkRequest refuses what no operation may receive: a cookie-authenticated write from another site's page (CSRF),
// and a body that is not the route's media type. JSON bodies are capped.
func (s *Server) checkRequest(w http.ResponseWriter, r *http.Request, rt route) error {
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
	if !safe && !hasBearer(r) {
		if err := s.checkOrigin(r); err != nil {
			return err
		}
	}
	if rt.accepts == "" {
		if !safe && r.ContentLength != 0 {
			return &api.Problem{Status: http.StatusUnsupportedMediaType, Title: "Unsupported media type", Detail: "this operation takes no request body"}
		}
		return nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != rt.accepts {
		return &api.Problem{Status: http.StatusUnsupportedMediaType, Title: "Unsupported media type",
			Detail: "send the body as " + rt.accepts + " (Content-Type: " + rt.accepts + ")"}
	}
	if rt.accepts == api.MediaJSON {
		limit := rt.maxBody
		if limit <= 0 {
			limit = 64 << 10
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	return nil
}

func hasBearer(r *http.Request) bool {
	scheme, _, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer")
}

// checkOrigin refuses a write that a browser sent from a page of another origin. SameSite cookies do not cover
// this: "site" ignores the port, so an app on a NodePort of the same host counts as same-site. Browsers send
// Origin on every write and Sec-Fetch-Site over HTTPS; a client that sends neither is not a browser.
func (s *Server) checkOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return forbidden("cross-site request refused (Sec-Fetch-Site: " + clip.Quote(site, 40) + "): use the console served by this server, or an API token")
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if strings.EqualFold(origin, scheme+"://"+r.Host) {
		return nil
	}
	for _, o := range s.opts.AllowedOrigins {
		if strings.EqualFold(origin, strings.TrimRight(o, "/")) {
			return nil
		}
	}
	return forbidden("request from another origin (" + clip.Quote(origin, 100) + ") refused: use the console served by this server, or an API token; behind a proxy, add its origin with wutong serve --allowed-origin")
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
	switch {
	case p.Status == http.StatusInsufficientStorage:
		logctx.From(r.Context()).Warn("request failed: disk full", "method", r.Method, "path", r.URL.Path, "err", err)
	case p.Status >= 500:
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
		bad   *bundle.UnsafeEntryError
		stall *StalledError
		dinv  *deploy.InvalidError
		dconf *deploy.ConflictError
		nocl  *deploy.NoClusterError
		dnf   *deploy.NotFoundError
		apply *deploy.ApplyError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, store.ErrBusy):
		return &api.Problem{Status: http.StatusConflict, Title: "Change in progress",
			Detail: err.Error() + ": wait until it finishes (see the install's status), then try again"}
	case errors.As(err, &dinv):
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Cannot deploy as asked", Detail: dinv.Error()}
	case errors.As(err, &dconf):
		return &api.Problem{Status: http.StatusConflict, Title: "Objects in the way", Detail: dconf.Error()}
	case errors.As(err, &nocl):
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Unknown cluster", Detail: nocl.Error()}
	case errors.As(err, &dnf):
		return &api.Problem{Status: http.StatusNotFound, Title: "Not found", Detail: dnf.Error()}
	case errors.As(err, &apply):
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Refused by the cluster", Detail: apply.Error()}
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
	case errors.As(err, &bad):
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Package refused: unsafe entry", Detail: err.Error()}
	case errors.As(err, &stall):
		return &api.Problem{Status: http.StatusRequestTimeout, Title: "Upload stalled", Detail: stall.Error()}
	case errors.Is(err, auth.ErrBusy):
		return &api.Problem{Status: http.StatusTooManyRequests, Title: "Server busy",
			Detail: "the server is checking other logins; try again in a second", RetryAfter: 1}
	case errors.As(err, &large):
		return &api.Problem{Status: http.StatusRequestEntityTooLarge, Title: "Package too large", Detail: err.Error()}
	case errors.As(err, &maxb):
		return &api.Problem{Status: http.StatusRequestEntityTooLarge, Title: "Request too large", Detail: fmt.Sprintf("the body may be at most %d bytes", maxb.Limit)}
	case errors.As(err, &full):
		// Where and how much stay in the server's log: they describe the server, not the request.
		return &api.Problem{Status: http.StatusInsufficientStorage, Title: "Server disk full",
			Detail: "the server has too little free space for this package; ask its administrator to free space (the server log says where)"}
	case errors.Is(err, context.Canceled):
		return &api.Problem{Status: 499, Title: "Request cancelled"}
	}
	return &api.Problem{Status: http.StatusInternalServerError, Title: "Internal error", Detail: "the server failed; its log has the details"}
}

// decode reads the JSON body into v, refusing unknown fields. The route's media type and size cap were checked and
// set by checkRequest.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxb *http.MaxBytesError
		if errors.As(err, &maxb) {
			return err
		}
		return badRequest("read JSON body: " + clip.Text(err.Error(), 200))
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
func clientIP(r *http.Request) string { return hostOf(r.RemoteAddr) }

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
