package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/importer"
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

// maxFileNameHeader refuses an absurd X-Wutong-Filename outright; a name within it is recorded cut to
// importer.MaxFileNameLength.
const maxFileNameHeader = 1024

// createImport receives a package as the request body. The reply comes once the whole package has arrived and
// checked out (202 with the import in state pushing, or 200 when the version was already there); the push and
// the record happen in the background, and GET /imports/{id} shows where they stand. At most Options.MaxImports
// imports run at once, from upload to record; more are refused with 429.
func (s *Server) createImport(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	t, err := s.importTeam(r, p)
	if err != nil {
		return err
	}
	ctx := r.Context()
	hname := r.Header.Get(api.HeaderFilename)
	if len(hname) > maxFileNameHeader {
		return badRequest(fmt.Sprintf("the %s header is %d bytes; give the file's base name, at most %d bytes", api.HeaderFilename, len(hname), importer.MaxFileNameLength))
	}
	select {
	case s.imports <- struct{}{}:
	default:
		return &api.Problem{Status: http.StatusTooManyRequests, Title: "Too many imports",
			Detail: fmt.Sprintf("%d imports are running, the most this server takes at once; try again when one has finished", cap(s.imports)), RetryAfter: 10}
	}
	held := true
	defer func() {
		if held {
			<-s.imports
		}
	}()
	rec, err := s.importer.Begin(ctx, t.ID, p.User.ID, hname, r.ContentLength)
	if err != nil {
		return err
	}
	w.Header().Set("Location", api.Prefix+"/imports/"+rec.ID)
	rc := http.NewResponseController(w)
	body := &stallReader{r: http.MaxBytesReader(w, r.Body, s.importer.MaxBytes()), rc: rc, every: s.opts.StallTimeout}
	st, err := s.importer.Receive(ctx, rec, body)
	s.metrics.importBytes.Add(float64(rec.Received))
	rc.SetWriteDeadline(time.Now().Add(s.opts.RequestTimeout)) // the body is in: the answer gets the usual time
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
	held = false // the background push gives the slot back
	s.work.Go(func() {
		defer func() { <-s.imports }()
		if err := s.importer.Finish(bg, rec, st); err != nil {
			s.metrics.imports.WithLabelValues("failed").Inc()
			return
		}
		s.metrics.imports.WithLabelValues("done").Inc()
	})
	return reply(w, http.StatusAccepted, s.apiImport(r, snapshot, t.Name, p.User.Name))
}

// StalledError says that an upload sent too little for too long, and was cut.
type StalledError struct {
	Received int64
	Window   time.Duration
}

func (e *StalledError) Error() string {
	return fmt.Sprintf("the upload stalled after %d bytes: less than %d KiB arrived in %s; check the network and import again",
		e.Received, transferChunk>>10, e.Window)
}

// stallReader holds an upload to a minimum rate: the connection's read deadline is StallTimeout away, and moves on
// each time another transferChunk bytes have arrived. A read cut by the deadline is a *StalledError.
type stallReader struct {
	r     io.Reader
	rc    *http.ResponseController
	every time.Duration
	n     int64 // bytes read
	mark  int64 // n when the deadline last moved
}

func (s *stallReader) Read(p []byte) (int, error) {
	k, err := s.r.Read(p)
	s.n += int64(k)
	if s.n-s.mark >= transferChunk {
		s.mark = s.n
		s.rc.SetReadDeadline(time.Now().Add(s.every))
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		err = &StalledError{Received: s.n, Window: s.every}
	}
	return k, err
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

// maxListedImports is how many imports a list shows, newest first.
const maxListedImports = 200

func (s *Server) listImports(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	teams := p.Teams()
	out := []api.Import{}
	if teams != nil && len(teams) == 0 {
		return reply(w, http.StatusOK, out)
	}
	list, err := s.store.Imports(r.Context(), teams, maxListedImports)
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
