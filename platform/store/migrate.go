package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFS holds one directory per dialect of numbered migrations: NNNN_what.sql, numbered 1, 2, 3, … with no gap.
// A migration is never edited once released; a schema change is a new file in both directories.
//
//go:embed migrations
var migrationFS embed.FS

// migration is one embedded schema step.
type migration struct {
	version int
	name    string // file name, for messages
	sql     string
}

// migrations returns dialect's migrations in order, checking their numbering.
func migrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations %s: %w", dir, err)
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("embedded migration %s/%s: name must be NNNN_what.sql", dir, e.Name())
		}
		data, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read embedded migration %s/%s: %w", dir, e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(data)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("embedded migrations %s: %s is number %d, want %d (numbers run 1, 2, 3, … without gaps or repeats)",
				dir, m.name, m.version, i+1)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("embedded migrations %s: none found", dir)
	}
	return out, nil
}

// SchemaVersion is the newest schema version this code knows for dialect (the number of its last migration).
func SchemaVersion(dialect string) (int, error) {
	ms, err := migrations(dialect)
	if err != nil {
		return 0, err
	}
	return len(ms), nil
}

// migrationLockKey is the PostgreSQL advisory lock that serialises servers migrating the same database at once.
const migrationLockKey = 0x77757467 // "wutg"

// migrate applies the migrations the database lacks, each in its own transaction, and refuses a database whose
// schema is newer than this code knows.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations(s.dialect)
	if err != nil {
		return err
	}
	for {
		done, err := s.migrateOne(ctx, ms)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateOne applies the next missing migration, or reports done when the schema is current.
func (s *Store) migrateOne(ctx context.Context, ms []migration) (done bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == DialectPostgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
				return fmt.Errorf("lock schema for migration: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at BIGINT  NOT NULL
)`); err != nil {
			return fmt.Errorf("create schema_migrations table: %w", err)
		}
		var current sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		have := int(current.Int64)
		if have > len(ms) {
			return fmt.Errorf("database schema is at version %d but this wutong knows versions up to %d only: "+
				"it was used by a newer wutong; run that version (or restore a backup made before the upgrade)", have, len(ms))
		}
		if have == len(ms) {
			done = true
			return nil
		}
		m := ms[have]
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("apply migration %s/%s: %w", s.dialect, m.name, err)
		}
		if _, err := s.exec(ctx, tx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.version, m.name, dbTime(now())); err != nil {
			return fmt.Errorf("record migration %s/%s: %w", s.dialect, m.name, err)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("migrate %s database: %w", s.dialect, err)
	}
	return done, nil
}
