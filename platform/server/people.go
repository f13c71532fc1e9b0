package server

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// nameRE is what user and team names look like; a team name becomes part of a Kubernetes namespace later.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

func checkName(what, n string) error {
	if !nameRE.MatchString(n) {
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Invalid " + what + " name",
			Errors: []api.FieldError{{Path: "name", Message: fmt.Sprintf("%q is not a valid %s name", n, what),
				Fix: "use 1-40 lower-case letters, digits and '-', starting and ending with a letter or digit"}}}
	}
	return nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in api.Login
	if err := decode(r, &in); err != nil {
		return err
	}
	keys := []string{"user:" + in.Username, "ip:" + clientIP(r)}
	if ok, wait := s.limiter.Allow(keys...); !ok {
		s.metrics.logins.WithLabelValues("limited").Inc()
		return &api.Problem{Status: http.StatusTooManyRequests, Title: "Too many failed logins",
			Detail: fmt.Sprintf("wait %s before trying again", wait), RetryAfter: int(wait.Seconds())}
	}
	ctx := r.Context()
	u, err := s.store.UserByName(ctx, in.Username)
	if err == nil && !u.Disabled {
		err = auth.Check(u.PasswordHash, in.Password)
	} else if err == nil {
		err = auth.ErrMismatch
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, auth.ErrMismatch) {
		s.limiter.Fail(keys...)
		s.metrics.logins.WithLabelValues("wrong").Inc()
		// One answer for an unknown user and a wrong password, so names cannot be probed.
		return unauthorized("wrong user name or password")
	}
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	secret, hash := auth.NewToken()
	exp := time.Now().Add(s.opts.SessionTTL)
	if err := s.store.CreateToken(ctx, &store.Token{UserID: u.ID, Name: "session " + clientIP(r), Kind: "session", Hash: hash, ExpiresAt: exp}); err != nil {
		return fmt.Errorf("make session: %w", err)
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	http.SetCookie(w, &http.Cookie{Name: api.SessionCookie, Value: secret, Path: "/", Expires: exp, HttpOnly: true,
		Secure: s.opts.SecureCookie, SameSite: http.SameSiteStrictMode})
	au, err := s.apiUser(r, u)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, api.Session{Token: secret, ExpiresAt: exp.UTC(), User: au})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.store.DeleteToken(r.Context(), p.User.ID, p.TokenID); err != nil {
		return fmt.Errorf("log out: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: api.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiUser describes su for the API, with its teams.
func (s *Server) apiUser(r *http.Request, su *store.User) (api.User, error) {
	u := api.User{Name: su.Name, DisplayName: su.DisplayName, Admin: su.Admin, Disabled: su.Disabled, CreatedAt: su.CreatedAt}
	ms, err := s.store.MembershipsOf(r.Context(), su.ID)
	if err != nil {
		return u, fmt.Errorf("look up memberships: %w", err)
	}
	for _, m := range ms {
		u.Teams = append(u.Teams, api.Membership{Team: m.TeamName, User: m.UserName, Role: string(m.Role)})
	}
	return u, nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	u, err := s.apiUser(r, &p.User)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, u)
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in api.PasswordChange
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := auth.Check(p.User.PasswordHash, in.Current); err != nil {
		if errors.Is(err, auth.ErrMismatch) {
			return forbidden("the current password is wrong")
		}
		return err
	}
	hash, err := s.opts.Hasher.Hash(in.New)
	if err != nil {
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Password refused", Detail: err.Error()}
	}
	u := p.User
	u.PasswordHash = hash
	if err := s.store.UpdateUser(r.Context(), &u); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func apiToken(t store.Token) api.Token {
	out := api.Token{ID: t.ID, Name: t.Name, Kind: t.Kind, CreatedAt: t.CreatedAt}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt
		out.ExpiresAt = &e
	}
	if !t.LastUsedAt.IsZero() {
		l := t.LastUsedAt
		out.LastUsedAt = &l
	}
	return out
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ts, err := s.store.TokensOf(r.Context(), p.User.ID)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	out := []api.Token{}
	for _, t := range ts {
		out = append(out, apiToken(t))
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in api.NewToken
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Name == "" || len(in.Name) > 100 || in.TTLHours < 0 {
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Invalid token",
			Errors: []api.FieldError{{Path: "name", Message: "a token needs a name of 1-100 characters and a ttlHours ≥ 0", Fix: `e.g. {"name": "ci", "ttlHours": 720}`}}}
	}
	secret, hash := auth.NewToken()
	t := store.Token{UserID: p.User.ID, Name: in.Name, Kind: "api", Hash: hash}
	if in.TTLHours > 0 {
		t.ExpiresAt = time.Now().Add(time.Duration(in.TTLHours) * time.Hour)
	}
	if err := s.store.CreateToken(r.Context(), &t); err != nil {
		return fmt.Errorf("make token: %w", err)
	}
	out := apiToken(t)
	out.Secret = secret
	return reply(w, http.StatusCreated, out)
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return badRequest("token id must be a number")
	}
	if err := s.store.DeleteToken(r.Context(), p.User.ID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.Can(auth.ManageUsers, 0) {
		return forbidden("only administrators may list users")
	}
	us, err := s.store.Users(r.Context())
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	out := []api.User{}
	for _, u := range us {
		out = append(out, api.User{Name: u.Name, DisplayName: u.DisplayName, Admin: u.Admin, Disabled: u.Disabled, CreatedAt: u.CreatedAt})
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.Can(auth.ManageUsers, 0) {
		return forbidden("only administrators may create users")
	}
	var in api.NewUser
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := checkName("user", in.Name); err != nil {
		return err
	}
	pw, generated := in.Password, in.Password == ""
	if generated {
		pw = auth.GeneratePassword()
	}
	hash, err := s.opts.Hasher.Hash(pw)
	if err != nil {
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Password refused", Detail: err.Error()}
	}
	u := store.User{Name: in.Name, DisplayName: in.DisplayName, PasswordHash: hash, Admin: in.Admin}
	if err := s.store.CreateUser(r.Context(), &u); err != nil {
		return err
	}
	out := api.CreatedUser{User: api.User{Name: u.Name, DisplayName: u.DisplayName, Admin: u.Admin, CreatedAt: u.CreatedAt}}
	if generated {
		out.Password = pw
	}
	return reply(w, http.StatusCreated, out)
}

func apiTeam(t store.Team) api.Team {
	return api.Team{Name: t.Name, DisplayName: t.DisplayName, CreatedAt: t.CreatedAt}
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ts, err := s.store.Teams(r.Context())
	if err != nil {
		return fmt.Errorf("list teams: %w", err)
	}
	out := []api.Team{}
	for _, t := range ts {
		if p.Can(auth.Read, t.ID) {
			out = append(out, apiTeam(t))
		}
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) createTeam(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.Can(auth.ManageUsers, 0) {
		return forbidden("only administrators may create teams")
	}
	var in api.Team
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := checkName("team", in.Name); err != nil {
		return err
	}
	t := store.Team{Name: in.Name, DisplayName: in.DisplayName}
	if err := s.store.CreateTeam(r.Context(), &t); err != nil {
		return err
	}
	return reply(w, http.StatusCreated, apiTeam(t))
}

// team finds the team in the path and checks that p may do act in it. An unknown team and a team p may not see
// are both 403 for non-admins, so team names cannot be probed.
func (s *Server) team(r *http.Request, p *auth.Principal, act auth.Action) (*store.Team, error) {
	name := r.PathValue("team")
	t, err := s.store.TeamByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) && !p.User.Admin {
		return nil, forbidden(fmt.Sprintf("you are not a member of team %q", name))
	}
	if err != nil {
		return nil, err
	}
	if !p.Can(act, t.ID) {
		if p.Can(auth.Read, t.ID) {
			return nil, forbidden(fmt.Sprintf("your role in team %q does not allow %s", name, act))
		}
		return nil, forbidden(fmt.Sprintf("you are not a member of team %q", name))
	}
	return t, nil
}

func (s *Server) getTeam(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	t, err := s.team(r, p, auth.Read)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, apiTeam(*t))
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	t, err := s.team(r, p, auth.Read)
	if err != nil {
		return err
	}
	ms, err := s.store.Members(r.Context(), t.ID)
	if err != nil {
		return fmt.Errorf("list members: %w", err)
	}
	out := []api.Membership{}
	for _, m := range ms {
		out = append(out, api.Membership{Team: t.Name, User: m.UserName, Role: string(m.Role)})
	}
	return reply(w, http.StatusOK, out)
}

func (s *Server) setMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	t, err := s.team(r, p, auth.ManageTeam)
	if err != nil {
		return err
	}
	var in api.SetMember
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := auth.ValidTeamRole(in.Role); err != nil {
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Invalid role",
			Errors: []api.FieldError{{Path: "role", Message: err.Error()}}}
	}
	u, err := s.store.UserByName(r.Context(), r.PathValue("user"))
	if err != nil {
		return err
	}
	if err := s.store.SetMember(r.Context(), t.ID, u.ID, store.Role(in.Role)); err != nil {
		return fmt.Errorf("set member: %w", err)
	}
	return reply(w, http.StatusOK, api.Membership{Team: t.Name, User: u.Name, Role: in.Role})
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	t, err := s.team(r, p, auth.ManageTeam)
	if err != nil {
		return err
	}
	u, err := s.store.UserByName(r.Context(), r.PathValue("user"))
	if err != nil {
		return err
	}
	if err := s.store.RemoveMember(r.Context(), t.ID, u.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
