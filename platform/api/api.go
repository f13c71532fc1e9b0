// Package api holds the wire types of the platform's HTTP API (/api/v1): the JSON bodies that the server writes and
// the client reads, and RFC 9457 problem details for errors. It has no behaviour, so both sides share one definition.
package api

import (
	"fmt"
	"strings"
	"time"
)

// Prefix is the path prefix of every API route.
const Prefix = "/api/v1"

// Media types.
const (
	MediaJSON    = "application/json"
	MediaProblem = "application/problem+json"
	MediaPackage = "application/vnd.wutong.app-package"
)

// SessionCookie is the cookie that carries a session token from POST /login.
const SessionCookie = "wutong_session"

// HeaderFilename carries an uploaded package's file name.
const HeaderFilename = "X-Wutong-Filename"

// Roles.
const (
	RoleAdmin     = "admin"      // platform-wide
	RoleTeamAdmin = "team-admin" // manages a team's members and everything of the team
	RoleMember    = "member"     // imports packages and uses the team's apps
	RoleViewer    = "viewer"     // reads only
)

// Login is the body of POST /login.
type Login struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Session is the answer to a login: a token to send as "Authorization: Bearer TOKEN" (also set as a cookie).
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	User      User      `json:"user"`
}

// User is a person who can log in.
type User struct {
	Name        string       `json:"name"`
	DisplayName string       `json:"displayName,omitempty"`
	Admin       bool         `json:"admin,omitempty"`
	Disabled    bool         `json:"disabled,omitempty"`
	Teams       []Membership `json:"teams,omitempty"`
	CreatedAt   time.Time    `json:"createdAt"`
}

// NewUser is the body of POST /users. An empty password makes the server generate one and return it once.
type NewUser struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName,omitempty"`
	Password    string `json:"password,omitempty"`
	Admin       bool   `json:"admin,omitempty"`
}

// CreatedUser answers POST /users; Password is set only when the server generated it.
type CreatedUser struct {
	User
	Password string `json:"password,omitempty"`
}

// PasswordChange is the body of POST /me/password.
type PasswordChange struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// Membership is one user's role in one team.
type Membership struct {
	Team string `json:"team"`
	User string `json:"user"`
	Role string `json:"role"`
}

// Team groups users; it maps to a Kubernetes namespace when apps are installed.
type Team struct {
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
}

// SetMember is the body of PUT /teams/{team}/members/{user}.
type SetMember struct {
	Role string `json:"role"`
}

// NewToken is the body of POST /tokens.
type NewToken struct {
	Name string `json:"name"`
	// TTLHours is the token's lifetime, at most MaxTokenTTLHours; 0 means it does not expire.
	TTLHours int `json:"ttlHours,omitempty"`
}

// MaxTokenTTLHours is the longest token lifetime accepted (ten years).
const MaxTokenTTLHours = 10 * 365 * 24

// Revoked answers DELETE /users/{user}/tokens: how many sessions and API tokens were revoked.
type Revoked struct {
	Revoked int `json:"revoked"`
}

// Token is an API token. Secret is returned only when the token is created.
type Token struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Kind       string     `json:"kind"`
	Secret     string     `json:"secret,omitempty"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
}

// App is one application of the market.
type App struct {
	Key           string    `json:"key"`
	Name          string    `json:"name"`
	Description   string    `json:"description,omitempty"`
	Team          string    `json:"team"`
	LatestVersion string    `json:"latestVersion,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// Image is one image of a version: its name in the package, its name in the cluster registry, and its digest.
type Image struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Digest string `json:"digest"`
}

// Version is one imported version of an app. Model is the canonical app model, returned by the single-version route.
type Version struct {
	App           string    `json:"app"`
	Version       string    `json:"version"`
	ContentDigest string    `json:"contentDigest"`
	PackageDigest string    `json:"packageDigest"`
	Signer        string    `json:"signer,omitempty"`
	Size          int64     `json:"size"`
	Images        []Image   `json:"images"`
	Import        string    `json:"import,omitempty"`
	CreatedBy     string    `json:"createdBy,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	Model         any       `json:"model,omitempty"`
}

// Import states.
const (
	ImportUploading = "uploading"
	ImportVerifying = "verifying"
	ImportPushing   = "pushing"
	ImportRecording = "recording"
	ImportDone      = "done"
	ImportFailed    = "failed"
)

// Import is one package import and where it stands.
type Import struct {
	ID       string `json:"id"`
	Team     string `json:"team"`
	User     string `json:"user"`
	FileName string `json:"fileName,omitempty"`
	Size     int64  `json:"size"`
	Received int64  `json:"received"`
	State    string `json:"state"`
	Error    string `json:"error,omitempty"`
	App      string `json:"app,omitempty"`
	Version  string `json:"version,omitempty"`
	// Unchanged is true when the same version with the same content was already there: the import did nothing.
	Unchanged bool      `json:"unchanged,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Terminal reports whether the import has finished, well or not.
func (i *Import) Terminal() bool { return i.State == ImportDone || i.State == ImportFailed }

// Health is the body of GET /healthz.
type Health struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// Problem is an RFC 9457 problem details body, sent as application/problem+json for every error.
type Problem struct {
	Type     string `json:"type,omitempty"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists each problem of an invalid input, with its field path and how to fix it.
	Errors []FieldError `json:"errors,omitempty"`
	// RetryAfter is set (seconds) when the request may be retried later, e.g. after the login rate limit.
	RetryAfter int `json:"retryAfter,omitempty"`
}

// FieldError is one problem of an invalid input.
type FieldError struct {
	Path    string `json:"path,omitempty"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d)", p.Title, p.Status)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		b.WriteString("\n  ")
		if e.Path != "" {
			b.WriteString(e.Path + ": ")
		}
		b.WriteString(e.Message)
		if e.Fix != "" {
			b.WriteString(" (fix: " + e.Fix + ")")
		}
	}
	return b.String()
}
