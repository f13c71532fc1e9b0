package server

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wutong-paas/wutong-offline/internal/clip"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// nameRE is what user and team names look like; a team name becomes part of a Kubernetes namespace later.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

func checkName(what, n string) error {
	if !nameRE.MatchString(n) {
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Invalid " + what + " name",
			Errors: []api.FieldError{{Path: "name", Message: fmt.Sprintf("%s is not a valid %s name", clip.Quote(n, 64), what),
				Fix: "use 1-40 lower-case letters, digits and '-', starting and ending with a letter or digit"}}}
	}
	return nil
}

// maxDisplayName is the longest display name, in characters.
const maxDisplayName = 100

// checkDisplayName refuses display names that are too long or hold control characters.
func checkDisplayName(d string) error {
	if utf8.RuneCountInString(d) > maxDisplayName || strings.IndexFunc(d, unicode.IsControl) >= 0 {
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Invalid display name",
			Errors: []api.FieldError{{Path: "displayName", Message: fmt.Sprintf("a display name has at most %d characters and no control characters", maxDisplayName),
				Fix: "shorten it"}}}
	}
	return nil
}

// wrongLogin is the one answer for an unknown user, a disabled one and a wrong password, so names cannot be probed.
func wrongLogin() error { return unauthorized("wrong user name or password") }

// checkPassword checks password for the user called name, as a login does: the attempt is rate-limited by name
// and client address (taken before hashing, so concurrent guesses cannot all pass), runs through the gate that
// bounds concurrent hashes, and takes as long for an unknown name as for a known one. It returns the user, or an
// error to answer with: 401 for a wrong name or password, 429 when limited or busy.
func (s *Server) checkPassword(r *http.Request, name, password string) (*store.User, error) {
	// A name that cannot exist is refused before the limiter sees it, so that made-up names cost no memory.
	if !nameRE.MatchString(name) || len(password) > auth.MaxPasswordLength {
		s.metrics.logins.WithLabelValues("wrong").Inc()
		return nil, wrongLogin()
	}
	addr := clientIP(r)
	res, wait, ok := s.limiter.Reserve(name, addr)
	if !ok {
		s.metrics.logins.WithLabelValues("limited").Inc()
		return nil, &api.Problem{Status: http.StatusTooManyRequests, Title: "Too many failed logins",
			Detail: fmt.Sprintf("wait %s before trying again", wait), RetryAfter: int(wait.Seconds())}
	}
	release, err := s.gate.Enter(r.Context(), addr, s.lane(addr, res.Clean))
	if err != nil {
		res.Cancel()
		s.metrics.logins.WithLabelValues("busy").Inc()
		return nil, err
	}
	u, err := s.store.UserByName(r.Context(), name)
	hash := s.dummy
	switch {
	case err == nil && !u.Disabled:
		hash = u.PasswordHash
	case err != nil && !errors.Is(err, store.ErrNotFound):
		release()
		res.Cancel()
		return nil, fmt.Errorf("look up user: %w", err)
	}
	err = auth.Check(hash, password)
	release()
	if errors.Is(err, auth.ErrMismatch) || (err == nil && hash == s.dummy) {
		res.Failed()
		s.metrics.logins.WithLabelValues("wrong").Inc()
		return nil, wrongLogin()
	}
	if err != nil {
		res.Cancel()
		return nil, fmt.Errorf("check password: %w", err)
	}
	res.Succeeded()
	s.known.Add(addr)
	return u, nil
}

// lane is the gate lane of a password check from addr: known addresses first, then clean ones (no failure on
// record), then the rest.
func (s *Server) lane(addr string, clean bool) auth.Lane {
	switch {
	case s.known.Has(addr):
		return auth.LaneKnown
	case clean:
		return auth.LaneClean
	}
	return auth.LaneSuspect
}

// hash hashes a new password through the gate that bounds concurrent hashes.
func (s *Server) hash(r *http.Request, password string) (string, error) {
	if err := auth.CheckPasswordPolicy(password); err != nil {
		return "", &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Password refused", Detail: err.Error()}
	}
	addr := clientIP(r)
	release, err := s.gate.Enter(r.Context(), addr, s.lane(addr, true)) // an authenticated user's new password
	if err != nil {
		return "", err
	}
	defer release()
	return s.opts.Hasher.Hash(password)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in api.Login
	if err := decode(r, &in); err != nil {
		return err
	}
	u, err := s.checkPassword(r, in.Username, in.Password)
	if err != nil {
		return err
	}
	ctx := r.Context()
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

// changePassword checks the current password like a login does (rate-limited, gated), sets the new one, and revokes
// every other session and API token of the user: whoever else held one must log in with the new password.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in api.PasswordChange
	if err := decode(r, &in); err != nil {
		return err
	}
	if _, err := s.checkPassword(r, p.User.Name, in.Current); err != nil {
		var pr *api.Problem
		if errors.As(err, &pr) && pr.Status == http.StatusUnauthorized {
			return forbidden("the current password is wrong")
		}
		return err
	}
	hash, err := s.hash(r, in.New)
	if err != nil {
		return err
	}
	u := p.User
	u.PasswordHash = hash
	if err := s.store.UpdateUser(r.Context(), &u); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	n, err := s.store.DeleteTokensOf(r.Context(), u.ID, p.TokenID)
	if err != nil {
		return fmt.Errorf("revoke the other sessions: %w", err)
	}
	logctx.From(r.Context()).Info("password changed; other sessions and tokens revoked", "user", u.Name, "revoked", n)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeUserTokens revokes every session and API token of a user: an administrator's answer to a lost laptop.
func (s *Server) revokeUserTokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !p.Can(auth.ManageUsers, 0) {
		return forbidden("only administrators may revoke another user's tokens")
	}
	u, err := s.store.UserByName(r.Context(), r.PathValue("user"))
	if err != nil {
		return err
	}
	n, err := s.store.DeleteTokensOf(r.Context(), u.ID, 0)
	if err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	logctx.From(r.Context()).Info("all sessions and tokens of a user revoked", "user", u.Name, "by", p.User.Name, "revoked", n)
	return reply(w, http.StatusOK, api.Revoked{Revoked: n})
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
	if in.Name == "" || len(in.Name) > 100 || checkDisplayName(in.Name) != nil {
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Invalid token",
			Errors: []api.FieldError{{Path: "name", Message: "a token needs a name of 1-100 characters without control characters", Fix: `e.g. {"name": "ci", "ttlHours": 720}`}}}
	}
	if in.TTLHours < 0 || in.TTLHours > api.MaxTokenTTLHours {
		return &api.Problem{Status: http.StatusUnprocessableEntity, Title: "Invalid token",
			Errors: []api.FieldError{{Path: "ttlHours", Message: fmt.Sprintf("ttlHours must be 0 (never expires) to %d (ten years)", api.MaxTokenTTLHours), Fix: `e.g. {"name": "ci", "ttlHours": 720}`}}}
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
	if err := checkDisplayName(in.DisplayName); err != nil {
		return err
	}
	pw, generated := in.Password, in.Password == ""
	if generated {
		pw = auth.GeneratePassword()
	}
	hash, err := s.hash(r, pw)
	if err != nil {
		return err
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
	if err := checkDisplayName(in.DisplayName); err != nil {
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
		return nil, forbidden(fmt.Sprintf("you are not a member of team %s", clip.Quote(name, 64)))
	}
	if err != nil {
		return nil, err
	}
	if !p.Can(act, t.ID) {
		if p.Can(auth.Read, t.ID) {
			return nil, forbidden(fmt.Sprintf("your role in team %s does not allow %s", clip.Quote(name, 64), act))
		}
		return nil, forbidden(fmt.Sprintf("you are not a member of team %s", clip.Quote(name, 64)))
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
