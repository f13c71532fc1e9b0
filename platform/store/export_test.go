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
