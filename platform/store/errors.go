package store

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is wrapped by every error that reports a missing row, together with what was looked for
// (`user "bob": not found`). Test it with errors.Is.
var ErrNotFound = errors.New("not found")

// ConflictError reports a clash with what is already stored: a name that is taken, an app owned by another team, a
// version recorded before with other content. Test it with errors.As.
type ConflictError struct {
	What   string // the kind of thing: "user", "team", "app", "version", …
	Key    string // its name or key
	Detail string // why it clashes and what to do instead
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.What, e.Key, e.Detail)
}

// constraint is the kind of integrity violation a database error reports.
type constraint int

const (
	noViolation constraint = iota
	uniqueViolation
	foreignKeyViolation
	checkViolation
)

// violation classifies err from either driver.
func violation(err error) constraint {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return uniqueViolation
		case "23503":
			return foreignKeyViolation
		case "23514":
			return checkViolation
		}
		return noViolation
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return uniqueViolation
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return foreignKeyViolation
		case sqlite3.SQLITE_CONSTRAINT_CHECK:
			return checkViolation
		}
	}
	return noViolation
}
