package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wutong-paas/wutong-offline/internal/clip"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/deploy"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// errNoCluster answers deploy operations of a server that reaches no cluster.
var errNoCluster = &api.Problem{Status: http.StatusServiceUnavailable, Title: "No cluster",
	Detail: "this server does not reach a Kubernetes cluster: run it inside the cluster, or give it --kubeconfig"}

func (s *Server) userName(ctx context.Context, id int64) string {
	if id == 0 {
		return ""
	}
	if u, err := s.store.User(ctx, id); err == nil {
		return u.Name
	}
	return ""
}

func (s *Server) apiInstall(ctx context.Context, in store.Install) api.Install {
	return api.Install{Name: in.Name, Team: in.Team, Cluster: in.Cluster, Namespace: in.Namespace, App: in.AppKey,
		Version: in.Version, Revision: in.Revision, Deployed: in.Deployed, State: string(in.State), Message: in.Message,
		CreatedBy: s.userName(ctx, in.CreatedBy), CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt}
}

func (s *Server) apiRevision(ctx context.Context, r store.Revision) api.Revision {
	out := api.Revision{Number: r.Number, Version: r.Version, Reason: string(r.Reason), From: r.From, Digest: r.Digest,
		Outcome: string(r.Outcome), Message: r.Message, CreatedBy: s.userName(ctx, r.CreatedBy), CreatedAt: r.CreatedAt}
	_ = json.Unmarshal(r.Values, &out.Values) // stored by the deployer from this same type
	if !r.FinishedAt.IsZero() {
		t := r.FinishedAt
		out.FinishedAt = &t
	}
	return out
}

func (s *Server) listInstalls(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	teams := p.Teams()
	if name := r.PathValue("team"); name != "" {
		t, err := s.team(r, p, auth.Read)
		if err != nil {
			return err
		}
		teams = []int64{t.ID}
	}
	ins, err := s.store.Installs(r.Context(), teams)
	if err != nil {
		return err
	}
	out := []api.Install{}
	for _, in := range ins {
		out = append(out, s.apiInstall(r.Context(), in))
	}
	return reply(w, http.StatusOK, out)
}

// install finds the install in the path and checks that p may do act in its team.
func (s *Server) install(r *http.Request, p *auth.Principal, act auth.Action) (*store.Install, error) {
	t, err := s.team(r, p, act)
	if err != nil {
		return nil, err
	}
	return s.store.InstallByName(r.Context(), t.ID, r.PathValue("install"))
}

// appVersion finds a version p may read: the given one, or the app's latest.
func (s *Server) appVersion(ctx context.Context, p *auth.Principal, key, version string) (*store.Version, error) {
	a, err := s.store.AppByKey(ctx, key)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !p.Can(auth.Read, a.TeamID)) {
		return nil, &api.Problem{Status: http.StatusNotFound, Title: "Not found",
			Detail: fmt.Sprintf("app %s: no such app in your teams; import its package first (wtctl app import)", clip.Quote(key, 64))}
	}
	if err != nil {
		return nil, err
	}
	if version == "" {
		version = a.LatestVersion
	}
	return s.store.Version(ctx, a.Key, version)
}

func (s *Server) createInstall(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	t, err := s.team(r, p, auth.Deploy)
	if err != nil {
		return err
	}
	if s.deployer == nil {
		return errNoCluster
	}
	var in api.NewInstall
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.App == "" {
		return badRequest("say which app to install: {\"app\": \"KEY\"}")
	}
	v, err := s.appVersion(r.Context(), p, in.App, in.Version)
	if err != nil {
		return err
	}
	req := deploy.InstallRequest{Team: *t, Name: in.Name, Cluster: in.Cluster, Version: v, User: p.User.ID}
	if in.Values != nil {
		req.Values = *in.Values
	}
	inst, rev, err := s.deployer.Install(r.Context(), req)
	if err != nil {
		return err
	}
	s.runRevision(inst.ID, rev.Number)
	return reply(w, http.StatusAccepted, api.Change{Install: s.apiInstall(r.Context(), *inst), Revision: s.apiRevision(r.Context(), *rev)})
}

func (s *Server) getInstall(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	inst, err := s.install(r, p, auth.Read)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, s.apiInstall(r.Context(), *inst))
}

func (s *Server) upgradeInstall(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	inst, err := s.install(r, p, auth.Deploy)
	if err != nil {
		return err
	}
	if s.deployer == nil {
		return errNoCluster
	}
	var in api.Upgrade
	if err := decode(r, &in); err != nil {
		return err
	}
	v, err := s.appVersion(r.Context(), p, inst.AppKey, in.Version)
	if err != nil {
		return err
	}
	req := deploy.UpgradeRequest{Install: inst, Version: v, Values: in.Values, User: p.User.ID}
	if in.DryRun {
		plan, err := s.deployer.Plan(r.Context(), req)
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, plan)
	}
	now, rev, err := s.deployer.Upgrade(r.Context(), req)
	if err != nil {
		return err
	}
	s.runRevision(now.ID, rev.Number)
	return reply(w, http.StatusAccepted, api.Change{Install: s.apiInstall(r.Context(), *now), Revision: s.apiRevision(r.Context(), *rev)})
}

func (s *Server) rollbackInstall(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	inst, err := s.install(r, p, auth.Deploy)
	if err != nil {
		return err
	}
	if s.deployer == nil {
		return errNoCluster
	}
	var in api.Rollback
	if err := decode(r, &in); err != nil {
		return err
	}
	now, rev, err := s.deployer.Rollback(r.Context(), deploy.RollbackRequest{Install: inst, To: in.Revision, User: p.User.ID})
	if err != nil {
		return err
	}
	s.runRevision(now.ID, rev.Number)
	return reply(w, http.StatusAccepted, api.Change{Install: s.apiInstall(r.Context(), *now), Revision: s.apiRevision(r.Context(), *rev)})
}

func (s *Server) listRevisions(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	inst, err := s.install(r, p, auth.Read)
	if err != nil {
		return err
	}
	revs, err := s.store.Revisions(r.Context(), inst.ID)
	if err != nil {
		return err
	}
	out := []api.Revision{}
	for _, rv := range revs {
		out = append(out, s.apiRevision(r.Context(), rv))
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) installStatus(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	inst, err := s.install(r, p, auth.Read)
	if err != nil {
		return err
	}
	if s.deployer == nil {
		return errNoCluster
	}
	st, err := s.deployer.Status(r.Context(), inst)
	if err != nil {
		return err
	}
	st.Install = s.apiInstall(r.Context(), *inst)
	return reply(w, http.StatusOK, st)
}

// installLogs streams a component's logs as text; with follow=true until the client goes away. Each write must
// finish within StallTimeout, so a reader that stops reading is cut.
func (s *Server) installLogs(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	inst, err := s.install(r, p, auth.Read)
	if err != nil {
		return err
	}
	if s.deployer == nil {
		return errNoCluster
	}
	q := r.URL.Query()
	opts := deploy.LogOptions{Component: q.Get("component"), Pod: q.Get("pod"), Follow: q.Get("follow") == "true"}
	if opts.Component == "" {
		return badRequest("say whose logs: ?component=NAME")
	}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			return badRequest("tail must be a number of lines, such as 100")
		}
		opts.Tail = n
	}
	lw := &logWriter{w: w, rc: http.NewResponseController(w), every: s.opts.StallTimeout}
	err = s.deployer.Logs(r.Context(), inst, opts, lw)
	if err != nil && lw.started {
		logctx.From(r.Context()).Warn("log stream cut", "install", inst.Name, "err", err)
		return nil
	}
	return err
}

// logWriter starts a text/plain answer at the first line and flushes every line, with a write deadline per line.
type logWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	every   time.Duration
	started bool
}

func (l *logWriter) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		l.w.Header().Set("X-Content-Type-Options", "nosniff")
		l.w.WriteHeader(http.StatusOK)
	}
	l.rc.SetWriteDeadline(time.Now().Add(l.every))
	return l.w.Write(b)
}

func (l *logWriter) Flush() { l.rc.Flush() }

func (s *Server) uninstall(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	inst, err := s.install(r, p, auth.Deploy)
	if err != nil {
		return err
	}
	if s.deployer == nil {
		return errNoCluster
	}
	deleteData := r.URL.Query().Get("deleteData") == "true"
	var kept []string
	if !deleteData {
		if kept, err = s.deployer.Kept(r.Context(), inst); err != nil {
			return err
		}
	}
	if err := s.deployer.Uninstall(r.Context(), inst, deleteData); err != nil {
		return err
	}
	if kept == nil {
		kept = []string{}
	}
	return reply(w, http.StatusOK, api.Uninstalled{Install: inst.Name, KeptVolumes: kept})
}

// runRevision carries a pending revision to its outcome in the background; Close waits for it (it stays pending
// when the server stops first, and is resumed at the next start).
func (s *Server) runRevision(installID int64, number int) {
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		if err := s.deployer.Run(s.importCtx, installID, number); err != nil && !errors.Is(err, context.Canceled) {
			logctx.From(s.importCtx).Warn("revision failed", "install", installID, "revision", number, "err", err)
		}
	}()
}
