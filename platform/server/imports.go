package server

import (
	"errors"
	"fmt"
	"net/http"
	"path"

	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// importTeam is the team an import goes into: ?team=NAME, or the caller's only team where they may import.
func (s *Server) importTeam(r *http.Request, p *auth.Principal) (*store.Team, error) {
	name := r.URL.Query().Get("team")
	if name == "" {
		var ids []int64
		for id := range p.Roles {
			if p.Can(auth.Import, id) {
				ids = append(ids, id)
			}
		}
		if len(ids) != 1 {
			return nil, badRequest("say which team to import into: ?team=NAME (wtctl app import --team NAME)")
		}
		return s.store.Team(r.Context(), ids[0])
	}
	r.SetPathValue("team", name)
	return s.team(r, p, auth.Import)
}

// createImport receives a package as the request body. The reply comes once the whole package has arrived and
// checked out (201 with the import in state pushing, or done when the version was already there); the push and
// the record happen in the background, and GET /imports/{id} shows where they stand.
func (s *Server) createImport(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	t, err := s.importTeam(r, p)
	if err != nil {
		return err
	}
	ctx := r.Context()
	name := path.Base(r.Header.Get(api.HeaderFilename))
	if name == "." || name == "/" {
		name = ""
	}
	rec, err := s.importer.Begin(ctx, t.ID, p.User.ID, name, r.ContentLength)
	if err != nil {
		return err
	}
	w.Header().Set("Location", api.Prefix+"/imports/"+rec.ID)
	body := http.MaxBytesReader(w, r.Body, s.importer.MaxBytes())
	st, err := s.importer.Receive(ctx, rec, body)
	s.metrics.importBytes.Add(float64(rec.Received))
	if err != nil {
		s.metrics.imports.WithLabelValues("failed").Inc()
		return fmt.Errorf("import %s: %w", rec.ID, err)
	}
	if st.Unchanged {
		if err := s.importer.Finish(ctx, rec, st); err != nil {
			return err
		}
		s.metrics.imports.WithLabelValues("unchanged").Inc()
		out := s.apiImport(r, *rec, t.Name, p.User.Name)
		out.Unchanged = true
		return reply(w, http.StatusOK, out)
	}
	rec.State = store.ImportPushing
	snapshot := *rec // Finish changes rec from now on
	bg := logctx.With(s.importCtx, logctx.From(ctx))
	s.work.Go(func() {
		if err := s.importer.Finish(bg, rec, st); err != nil {
			s.metrics.imports.WithLabelValues("failed").Inc()
			return
		}
		s.metrics.imports.WithLabelValues("done").Inc()
	})
	return reply(w, http.StatusAccepted, s.apiImport(r, snapshot, t.Name, p.User.Name))
}

func (s *Server) apiImport(r *http.Request, im store.Import, team, user string) api.Import {
	out := api.Import{ID: im.ID, Team: team, User: user, FileName: im.FileName, Size: im.Size, Received: im.Received,
		State: string(im.State), Error: im.Error, App: im.AppKey, Version: im.Version, CreatedAt: im.CreatedAt, UpdatedAt: im.UpdatedAt}
	if im.State == store.ImportDone {
		if v, err := s.store.Version(r.Context(), im.AppKey, im.Version); err == nil && v.ImportID != im.ID {
			out.Unchanged = true
		}
	}
	return out
}

// names caches team and user names for a list of imports.
type names struct {
	s            *Server
	r            *http.Request
	teams, users map[int64]string
}

func (n *names) team(id int64) string {
	if v, ok := n.teams[id]; ok {
		return v
	}
	v := ""
	if t, err := n.s.store.Team(n.r.Context(), id); err == nil {
		v = t.Name
	}
	n.teams[id] = v
	return v
}

func (n *names) user(id int64) string {
	if v, ok := n.users[id]; ok {
		return v
	}
	v := ""
	if u, err := n.s.store.User(n.r.Context(), id); err == nil {
		v = u.Name
	}
	n.users[id] = v
	return v
}

func (s *Server) listImports(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	teams := p.Teams()
	out := []api.Import{}
	if teams != nil && len(teams) == 0 {
		return reply(w, http.StatusOK, out)
	}
	list, err := s.store.Imports(r.Context(), teams)
	if err != nil {
		return fmt.Errorf("list imports: %w", err)
	}
	n := &names{s: s, r: r, teams: map[int64]string{}, users: map[int64]string{}}
	for _, im := range list {
		out = append(out, s.apiImport(r, im, n.team(im.TeamID), n.user(im.UserID)))
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) getImport(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	im, err := s.store.Import(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return &api.Problem{Status: http.StatusNotFound, Title: "Not found", Detail: fmt.Sprintf("no import %q", r.PathValue("id"))}
	}
	if err != nil {
		return err
	}
	if !p.Can(auth.Read, im.TeamID) {
		return forbidden("this import belongs to another team")
	}
	n := &names{s: s, r: r, teams: map[int64]string{}, users: map[int64]string{}}
	return reply(w, http.StatusOK, s.apiImport(r, *im, n.team(im.TeamID), n.user(im.UserID)))
}
