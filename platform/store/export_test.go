package store

import "context"

// DSNForTest returns the DSN s was opened with, so a test can open the same database again.
func DSNForTest(s *Store) string { return s.dsn }

// MarkSchemaVersionForTest records schema version v as applied, as a newer wutong would have.
func MarkSchemaVersionForTest(ctx context.Context, s *Store, v int) error {
	_, err := s.exec(ctx, s.db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", v, "future.sql", 0)
	return err
}

// CountRowsForTest returns the number of rows in table.
func CountRowsForTest(ctx context.Context, s *Store, table string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n)
	return n, err
}

// OpenAtVersionForTest opens the database dsn names and migrates it to schema version v only, as an older wutong
// would have left it.
func OpenAtVersionForTest(ctx context.Context, dsn string, v int) (*Store, error) {
	s, err := open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	ms, err := migrations(s.dialect)
	if err != nil {
		s.db.Close()
		return nil, err
	}
	for {
		done, err := s.migrateOne(ctx, ms[:v])
		if err != nil {
			s.db.Close()
			return nil, err
		}
		if done {
			return s, nil
		}
	}
}

// ExecForTest runs query (with '?' placeholders) on s's database, bypassing the store's methods.
func ExecForTest(ctx context.Context, s *Store, query string, args ...any) error {
	_, err := s.exec(ctx, s.db, query, args...)
	return err
}

// ViolationForTest classifies err as "unique", "foreign key", "check" or "".
func ViolationForTest(err error) string {
	switch violation(err) {
	case uniqueViolation:
		return "unique"
	case foreignKeyViolation:
		return "foreign key"
	case checkViolation:
		return "check"
	}
	return ""
}
