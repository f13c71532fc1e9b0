package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Role is what a user may do. RoleAdmin is platform-wide (User.Admin); the other three are team roles.
type Role string

const (
	RoleAdmin     Role = "admin"
	RoleTeamAdmin Role = "team-admin"
	RoleMember    Role = "member"
	RoleViewer    Role = "viewer"
)

// IsTeamRole reports whether r may be given to a team member (team-admin, member or viewer).
func (r Role) IsTeamRole() bool {
	return r == RoleTeamAdmin || r == RoleMember || r == RoleViewer
}

// User is a person who signs in to the platform.
type User struct {
	ID           int64
	Name         string // unique login name
	DisplayName  string
	PasswordHash string // an encoded hash (platform/auth); never the password
	Admin        bool   // platform administrator (RoleAdmin)
	Disabled     bool
	CreatedAt    time.Time
}

// Team owns apps and has members; a team maps to a Kubernetes namespace later.
type Team struct {
	ID          int64
	Name        string // unique
	DisplayName string
	CreatedAt   time.Time
}

// Member is a user's role in a team.
type Member struct {
	TeamID   int64
	TeamName string
	UserID   int64
	UserName string
	Role     Role
}

const userColumns = "id, name, display_name, password_hash, admin, disabled, created_at"

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	var created int64
	if err := row.Scan(&u.ID, &u.Name, &u.DisplayName, &u.PasswordHash, &u.Admin, &u.Disabled, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = goTime(created)
	return &u, nil
}

// CreateUser stores u and sets its ID and CreatedAt. A taken name is a *ConflictError.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	if u.Name == "" {
		return errors.New("create user: the name is empty")
	}
	created := now()
	err := s.queryRow(ctx, s.db,
		"INSERT INTO users (name, display_name, password_hash, admin, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
		u.Name, u.DisplayName, u.PasswordHash, u.Admin, u.Disabled, dbTime(created)).Scan(&u.ID)
	if violation(err) == uniqueViolation {
		return &ConflictError{What: "user", Key: u.Name, Detail: "the name is taken; choose another"}
	}
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, err)
	}
	u.CreatedAt = created
	return nil
}

// User returns the user with id.
func (s *Store) User(ctx context.Context, id int64) (*User, error) {
	u, err := scanUser(s.queryRow(ctx, s.db, "SELECT "+userColumns+" FROM users WHERE id = ?", id))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("user %d", id))
	}
	return u, nil
}

// UserByName returns the user called name.
func (s *Store) UserByName(ctx context.Context, name string) (*User, error) {
	u, err := scanUser(s.queryRow(ctx, s.db, "SELECT "+userColumns+" FROM users WHERE name = ?", name))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("user %q", name))
	}
	return u, nil
}

// Users returns every user, sorted by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+userColumns+" FROM users ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UpdateUser saves u's display name, password hash, admin and disabled flags (the name and ID never change).
func (s *Store) UpdateUser(ctx context.Context, u *User) error {
	res, err := s.exec(ctx, s.db,
		"UPDATE users SET display_name = ?, password_hash = ?, admin = ?, disabled = ? WHERE id = ?",
		u.DisplayName, u.PasswordHash, u.Admin, u.Disabled, u.ID)
	if err != nil {
		return fmt.Errorf("update user %d: %w", u.ID, err)
	}
	return rowsAffected(res, fmt.Sprintf("user %d", u.ID))
}

// CountUsers returns how many users there are (zero on a fresh install, before the first admin is made).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.queryRow(ctx, s.db, "SELECT COUNT(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

const teamColumns = "id, name, display_name, created_at"

func scanTeam(row interface{ Scan(...any) error }) (*Team, error) {
	var t Team
	var created int64
	if err := row.Scan(&t.ID, &t.Name, &t.DisplayName, &created); err != nil {
		return nil, err
	}
	t.CreatedAt = goTime(created)
	return &t, nil
}

// CreateTeam stores t and sets its ID and CreatedAt. A taken name is a *ConflictError.
func (s *Store) CreateTeam(ctx context.Context, t *Team) error {
	if t.Name == "" {
		return errors.New("create team: the name is empty")
	}
	created := now()
	err := s.queryRow(ctx, s.db, "INSERT INTO teams (name, display_name, created_at) VALUES (?, ?, ?) RETURNING id",
		t.Name, t.DisplayName, dbTime(created)).Scan(&t.ID)
	if violation(err) == uniqueViolation {
		return &ConflictError{What: "team", Key: t.Name, Detail: "the name is taken; choose another"}
	}
	if err != nil {
		return fmt.Errorf("create team %q: %w", t.Name, err)
	}
	t.CreatedAt = created
	return nil
}

// Team returns the team with id.
func (s *Store) Team(ctx context.Context, id int64) (*Team, error) {
	t, err := scanTeam(s.queryRow(ctx, s.db, "SELECT "+teamColumns+" FROM teams WHERE id = ?", id))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("team %d", id))
	}
	return t, nil
}

// TeamByName returns the team called name.
func (s *Store) TeamByName(ctx context.Context, name string) (*Team, error) {
	t, err := scanTeam(s.queryRow(ctx, s.db, "SELECT "+teamColumns+" FROM teams WHERE name = ?", name))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("team %q", name))
	}
	return t, nil
}

// Teams returns every team, sorted by name.
func (s *Store) Teams(ctx context.Context) ([]Team, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+teamColumns+" FROM teams ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	defer rows.Close()
	out := []Team{}
	for rows.Next() {
		t, err := scanTeam(rows)
		if err != nil {
			return nil, fmt.Errorf("list teams: %w", err)
		}
		out = append(out, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	return out, nil
}

// SetMember gives userID role in teamID, adding the member or changing its role. Only team roles are accepted;
// a missing team or user is ErrNotFound.
func (s *Store) SetMember(ctx context.Context, teamID, userID int64, role Role) error {
	if !role.IsTeamRole() {
		return fmt.Errorf("set member: role %q is not a team role (want %s, %s or %s; platform admin is User.Admin)",
			role, RoleTeamAdmin, RoleMember, RoleViewer)
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO members (team_id, user_id, role) VALUES (?, ?, ?)
ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role`, teamID, userID, string(role))
	if violation(err) == foreignKeyViolation {
		return fmt.Errorf("set member: team %d or user %d: %w", teamID, userID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set member of team %d: %w", teamID, err)
	}
	return nil
}

// RemoveMember takes userID out of teamID; a user who is not a member is ErrNotFound.
func (s *Store) RemoveMember(ctx context.Context, teamID, userID int64) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM members WHERE team_id = ? AND user_id = ?", teamID, userID)
	if err != nil {
		return fmt.Errorf("remove member of team %d: %w", teamID, err)
	}
	return rowsAffected(res, fmt.Sprintf("member %d of team %d", userID, teamID))
}

const memberSelect = `SELECT m.team_id, t.name, m.user_id, u.name, m.role
FROM members m JOIN teams t ON t.id = m.team_id JOIN users u ON u.id = m.user_id `

// Members returns the members of teamID, sorted by user name (none for a team that does not exist).
func (s *Store) Members(ctx context.Context, teamID int64) ([]Member, error) {
	return s.members(ctx, memberSelect+"WHERE m.team_id = ? ORDER BY u.name", teamID)
}

// MembershipsOf returns the teams userID belongs to, sorted by team name.
func (s *Store) MembershipsOf(ctx context.Context, userID int64) ([]Member, error) {
	return s.members(ctx, memberSelect+"WHERE m.user_id = ? ORDER BY t.name", userID)
}

func (s *Store) members(ctx context.Context, query string, id int64) ([]Member, error) {
	rows, err := s.query(ctx, s.db, query, id)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	out := []Member{}
	for rows.Next() {
		var m Member
		var role string
		if err := rows.Scan(&m.TeamID, &m.TeamName, &m.UserID, &m.UserName, &role); err != nil {
			return nil, fmt.Errorf("list members: %w", err)
		}
		m.Role = Role(role)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return out, nil
}
