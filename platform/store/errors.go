package store

import (
	"errors"
	"fmt"
	"strings"

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
		case sqlite3.SQLITE_CONSTRAINT_TRIGGER:
			// SQLite enforces ON DELETE/UPDATE RESTRICT as a trigger; the store defines no triggers of its own.
			if strings.Contains(se.Error(), "FOREIGN KEY") {
				return foreignKeyViolation
			}
		case sqlite3.SQLITE_CONSTRAINT_CHECK:
			return checkViolation
		}
	}
	return noViolation
}

// ErrBusy is wrapped (or matched, see BusyError) by the error of an attempt to begin a revision of an install that
// already has a pending one. Test it with errors.Is.
var ErrBusy = errors.New("busy")

// BusyError reports that an install already has a pending revision, so no other may begin until it finishes.
// errors.Is(err, ErrBusy) holds for it.
type BusyError struct {
	InstallID int64
	Install   string // the install's name
	Pending   int    // the number of its pending revision (0 if it finished meanwhile)
}

func (e *BusyError) Error() string {
	if e.Pending == 0 {
		return fmt.Sprintf("install %q is busy: another revision was begun at the same time; try again", e.Install)
	}
	return fmt.Sprintf("install %q is busy: revision %d is still pending; wait for it to finish", e.Install, e.Pending)
}

// Is makes errors.Is(err, ErrBusy) hold.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }
