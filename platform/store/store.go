// Package store is the platform server's persistence: users, teams and their members, login and API tokens, apps,
// their imported versions (with the images each version names), the state of package imports, and the clusters
// apps are installed on, the installs and each install's numbered revisions.
//
// One concrete *Store works over database/sql with two dialects: SQLite (modernc.org/sqlite, pure Go; the default,
// a single file) and PostgreSQL (pgx). The schema is kept by numbered migrations embedded in the binary, one
// directory per dialect, applied in order when the store is opened and tracked in the schema_migrations table.
//
// Every time is stored as Unix microseconds in a BIGINT column (identical on both dialects) and returned in UTC.
// A missing row is reported as an error wrapping ErrNotFound; a uniqueness clash as a *ConflictError.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Dialect names returned by (*Store).Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// DefaultSQLitePath is the database file used when Open is given an empty DSN.
const DefaultSQLitePath = "wutong.db"

// sqliteBusyTimeout is how long an SQLite statement waits for a lock held by another process before failing.
const sqliteBusyTimeout = 10 * time.Second

// Store is the platform's database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect string
	dsn     string // kept for tests that reopen the same database; never logged (it may hold a password)
}

// Open connects to the database that dsn names and brings its schema up to date.
//
// An empty dsn is SQLite in DefaultSQLitePath; "sqlite:PATH" or a bare path is SQLite in PATH (created if missing,
// run in WAL mode with foreign keys on); "postgres://…" or "postgresql://…" is PostgreSQL. A database whose schema
// is newer than this code knows is refused.
func Open(ctx context.Context, dsn string) (*Store, error) {
	s, err := open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

func open(ctx context.Context, dsn string) (*Store, error) {
	s := &Store{dsn: dsn}
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres database: %w", err)
		}
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(4)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s.db, s.dialect = db, DialectPostgres
	default:
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			path = DefaultSQLitePath
		}
		if strings.ContainsRune(path, '?') {
			return nil, fmt.Errorf("open sqlite database %q: the path may not contain '?'", path)
		}
		if dir := filepath.Dir(path); dir != "." {
			if _, err := os.Stat(dir); err != nil {
				return nil, fmt.Errorf("open sqlite database %q: directory %s: %w (create it first)", path, dir, err)
			}
		}
		params := "?_txlock=immediate" +
			"&_pragma=busy_timeout(" + strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10) + ")" +
			"&_pragma=journal_mode(WAL)" +
			"&_pragma=foreign_keys(1)" +
			"&_pragma=synchronous(NORMAL)"
		db, err := sql.Open("sqlite", path+params)
		if err != nil {
			return nil, fmt.Errorf("open sqlite database %q: %w", path, err)
		}
		// One connection: SQLite has a single writer anyway, and it keeps transactions free of SQLITE_BUSY.
		db.SetMaxOpenConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s.db, s.dialect = db, DialectSQLite
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", s.dialect, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect is DialectSQLite or DialectPostgres.
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers (for health checks).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", s.dialect, err)
	}
	return nil
}

// rebind turns the '?' placeholders of query into PostgreSQL's $1, $2, … (SQLite takes '?' as written).
// The queries of this package hold no '?' inside string literals.
func (s *Store) rebind(query string) string {
	if s.dialect != DialectPostgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.rebind(query), args...)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.rebind(query), args...)
}

func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.rebind(query), args...)
}

// inTx runs fn in a transaction, committing when it returns nil and rolling back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// inList returns "(?, ?, …)" for n values and the values as arguments.
func inList(ids []int64) (string, []any) {
	args := make([]any, len(ids))
	marks := make([]string, len(ids))
	for i, id := range ids {
		args[i], marks[i] = id, "?"
	}
	return "(" + strings.Join(marks, ", ") + ")", args
}

// teamFilter is the WHERE clause (with a leading space) and its arguments that keep the rows whose column col is
// one of teamIDs; nil teamIDs keep every row. none reports an empty, non-nil teamIDs: no row can match.
func teamFilter(col string, teamIDs []int64) (where string, args []any, none bool) {
	if teamIDs == nil {
		return "", nil, false
	}
	if len(teamIDs) == 0 {
		return "", nil, true
	}
	list, args := inList(teamIDs)
	return " WHERE " + col + " IN " + list, args, false
}

// rowsAffected reports sql.Result's count, turning zero into a not-found error for what.
func rowsAffected(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("count changed rows: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// notFound turns sql.ErrNoRows into an error wrapping ErrNotFound that names what was looked for.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

// now is the store's clock, cut to the precision the database keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// dbTime is t as stored: Unix microseconds.
func dbTime(t time.Time) int64 { return t.UnixMicro() }

// dbTimeOrNull is t as stored, with the zero time as NULL.
func dbTimeOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// goTime is a stored time back in UTC.
func goTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

// goTimeOrZero is a nullable stored time back in UTC, NULL being the zero time.
func goTimeOrZero(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return goTime(us.Int64)
}

// normTime is t as it will read back from the database.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}
