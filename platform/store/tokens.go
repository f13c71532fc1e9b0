package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Token kinds.
const (
	TokenSession = "session" // made at sign-in, short-lived
	TokenAPI     = "api"     // made by the user for scripts and wtctl
)

// Token is a bearer credential of a user. Only the hash of its secret is stored.
type Token struct {
	ID         int64
	UserID     int64
	Name       string
	Kind       string    // TokenSession or TokenAPI
	Hash       string    // hex sha256 of the secret; unique
	ExpiresAt  time.Time // zero: never
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used
}

const tokenColumns = "id, user_id, name, kind, hash, expires_at, created_at, last_used_at"

func scanToken(row interface{ Scan(...any) error }) (*Token, error) {
	var t Token
	var expires, used sql.NullInt64
	var created int64
	if err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.Kind, &t.Hash, &expires, &created, &used); err != nil {
		return nil, err
	}
	t.ExpiresAt, t.CreatedAt, t.LastUsedAt = goTimeOrZero(expires), goTime(created), goTimeOrZero(used)
	return &t, nil
}

// CreateToken stores t and sets its ID and CreatedAt (ExpiresAt is kept to the microsecond).
// A hash already stored is a *ConflictError; a missing user is ErrNotFound.
func (s *Store) CreateToken(ctx context.Context, t *Token) error {
	if t.Kind != TokenSession && t.Kind != TokenAPI {
		return fmt.Errorf("create token: kind %q is neither %q nor %q", t.Kind, TokenSession, TokenAPI)
	}
	if t.Hash == "" {
		return errors.New("create token: the hash is empty")
	}
	created := now()
	err := s.queryRow(ctx, s.db, `INSERT INTO tokens (user_id, name, kind, hash, expires_at, created_at, last_used_at)
VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		t.UserID, t.Name, t.Kind, t.Hash, dbTimeOrNull(t.ExpiresAt), dbTime(created), dbTimeOrNull(t.LastUsedAt)).Scan(&t.ID)
	switch violation(err) {
	case uniqueViolation:
		return &ConflictError{What: "token", Key: t.Name, Detail: "a token with the same secret exists; mint a new secret"}
	case foreignKeyViolation:
		return fmt.Errorf("create token: user %d: %w", t.UserID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create token for user %d: %w", t.UserID, err)
	}
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = created, normTime(t.ExpiresAt), normTime(t.LastUsedAt)
	return nil
}

// TokenByHash returns the token whose secret hashes to hash, unless it has expired by now (then ErrNotFound, as for
// an unknown hash).
func (s *Store) TokenByHash(ctx context.Context, hash string, now time.Time) (*Token, error) {
	t, err := scanToken(s.queryRow(ctx, s.db,
		"SELECT "+tokenColumns+" FROM tokens WHERE hash = ? AND (expires_at IS NULL OR expires_at > ?)", hash, dbTime(now)))
	if err != nil {
		return nil, notFound(err, "token")
	}
	return t, nil
}

// TokensOf returns userID's tokens, newest first.
func (s *Store) TokensOf(ctx context.Context, userID int64) ([]Token, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+tokenColumns+" FROM tokens WHERE user_id = ? ORDER BY created_at DESC, id DESC", userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
		}
		out = append(out, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens of user %d: %w", userID, err)
	}
	return out, nil
}

// DeleteToken deletes token id if userID owns it; another user's token is ErrNotFound, as is a missing one.
func (s *Store) DeleteToken(ctx context.Context, userID, id int64) error {
	res, err := s.exec(ctx, s.db, "DELETE FROM tokens WHERE id = ? AND user_id = ?", id, userID)
	if err != nil {
		return fmt.Errorf("delete token %d: %w", id, err)
	}
	return rowsAffected(res, fmt.Sprintf("token %d of user %d", id, userID))
}

// DeleteTokensOf deletes every session and API token of userID except the token keep (0: keep none) and returns
// how many went. A password change and an administrator's "revoke all" use it.
func (s *Store) DeleteTokensOf(ctx context.Context, userID, keep int64) (int, error) {
	res, err := s.exec(ctx, s.db, "DELETE FROM tokens WHERE user_id = ? AND id <> ?", userID, keep)
	if err != nil {
		return 0, fmt.Errorf("delete tokens of user %d: %w", userID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete tokens of user %d: %w", userID, err)
	}
	return int(n), nil
}

// TouchToken records that token id was used at at.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	res, err := s.exec(ctx, s.db, "UPDATE tokens SET last_used_at = ? WHERE id = ?", dbTime(at), id)
	if err != nil {
		return fmt.Errorf("touch token %d: %w", id, err)
	}
	return rowsAffected(res, fmt.Sprintf("token %d", id))
}

// DeleteExpiredTokens deletes every token expired by now and returns how many went.
func (s *Store) DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, s.db, "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= ?", dbTime(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired tokens: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired tokens: %w", err)
	}
	return int(n), nil
}
