package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/appkg"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

func apiApp(a store.App) api.App {
	return api.App{Key: a.Key, Name: a.Name, Description: a.Description, Team: a.TeamName, LatestVersion: a.LatestVersion,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	teams := p.Teams()
	if teams != nil && len(teams) == 0 {
		return reply(w, http.StatusOK, []api.App{})
	}
	as, err := s.store.Apps(r.Context(), teams)
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	out := []api.App{}
	for _, a := range as {
		out = append(out, apiApp(a))
	}
	return reply(w, http.StatusOK, out)
}

// app finds the app in the path and checks that p may read its team's apps.
func (s *Server) app(r *http.Request, p *auth.Principal) (*store.App, error) {
	a, err := s.store.AppByKey(r.Context(), r.PathValue("app"))
	if err != nil {
		return nil, err
	}
	if !p.Can(auth.Read, a.TeamID) {
		return nil, forbidden(fmt.Sprintf("app %q belongs to another team", a.Key))
	}
	return a, nil
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.app(r, p)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, apiApp(*a))
}

func (s *Server) apiVersion(r *http.Request, v store.Version) (api.Version, error) {
	out := api.Version{App: v.AppKey, Version: v.Version, ContentDigest: v.ContentDigest, PackageDigest: v.PackageDigest,
		Signer: v.Signer, Size: v.Size, Import: v.ImportID, CreatedAt: v.CreatedAt, Images: []api.Image{}}
	for _, im := range v.Images {
		out.Images = append(out.Images, api.Image{Name: im.Name, Target: im.Target, Digest: im.Digest})
	}
	if u, err := s.store.User(r.Context(), v.CreatedBy); err == nil {
		out.CreatedBy = u.Name
	} else if !errors.Is(err, store.ErrNotFound) {
		return out, fmt.Errorf("look up version's importer: %w", err)
	}
	if v.Model != nil {
		out.Model = json.RawMessage(v.Model)
	}
	return out, nil
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	a, err := s.app(r, p)
	if err != nil {
		return err
	}
	vs, err := s.store.Versions(r.Context(), a.ID)
	if err != nil {
		return fmt.Errorf("list versions: %w", err)
	}
	out := []api.Version{}
	for _, v := range vs {
		av, err := s.apiVersion(r, v)
		if err != nil {
			return err
		}
		out = append(out, av)
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) version(r *http.Request, p *auth.Principal) (*store.Version, error) {
	a, err := s.app(r, p)
	if err != nil {
		return nil, err
	}
	return s.store.Version(r.Context(), a.Key, r.PathValue("version"))
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	v, err := s.version(r, p)
	if err != nil {
		return err
	}
	av, err := s.apiVersion(r, *v)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, av)
}

// exportVersion streams the version as an app package, read back from the registry by digest.
func (s *Server) exportVersion(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	v, err := s.version(r, p)
	if err != nil {
		return err
	}
	ropts, err := s.opts.Registry.Remote()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var imgs []appkg.ExportImage
	for _, im := range v.Images {
		repo := im.Target
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		imgs = append(imgs, appkg.ExportImage{Name: im.Name, Ref: repo + "@" + im.Digest})
	}
	w.Header().Set("Content-Type", api.MediaPackage)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.wtapp"`, v.AppKey, v.Version))
	sw := &startedWriter{w: w, rc: http.NewResponseController(w), every: s.opts.StallTimeout}
	if _, err := appkg.Export(r.Context(), sw, v.Model, imgs, appkg.ExportOptions{Remote: ropts, Key: s.opts.ExportKey}); err != nil {
		err = fmt.Errorf("export %s %s: %w", v.AppKey, v.Version, err)
		if !sw.started {
			return err
		}
		// Bytes are out: abort the response so the client sees a cut transfer, never a short archive that ends well.
		logctx.From(r.Context()).Error("export cut", "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// startedWriter notes whether anything was written, and holds the download to a minimum rate: each write must
// finish within every (the connection's write deadline moves before each one).
type startedWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	every   time.Duration
	moved   time.Time
	started bool
}

func (s *startedWriter) Write(b []byte) (int, error) {
	s.started = true
	if now := time.Now(); now.Sub(s.moved) > time.Second {
		s.moved = now
		s.rc.SetWriteDeadline(now.Add(s.every))
	}
	return s.w.Write(b)
}
