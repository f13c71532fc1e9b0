package store_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// Opening a migrated database again applies nothing and keeps the data.
func TestReopen(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		mkUser(t, s, "bob")
		want, err := store.SchemaVersion(s.Dialect())
		must(t, err)
		dsns := []string{store.DSNForTest(s), store.DSNForTest(s)}
		if s.Dialect() == store.DialectPostgres {
			dsns[1] = strings.Replace(dsns[1], "postgres://", "postgresql://", 1)
		}
		for _, dsn := range dsns {
			again, err := store.Open(ctx, dsn)
			must(t, err)
			if again.Dialect() != s.Dialect() {
				t.Errorf("Dialect = %q, want %q", again.Dialect(), s.Dialect())
			}
			if _, err := again.UserByName(ctx, "bob"); err != nil {
				t.Errorf("after reopening: %v", err)
			}
			n, err := store.CountRowsForTest(ctx, again, "schema_migrations")
			must(t, err)
			if n != want {
				t.Errorf("schema_migrations has %d rows, want %d", n, want)
			}
			must(t, again.Ping(ctx))
			must(t, again.Close())
		}
	})
}

func TestRefuseNewerSchema(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		known, err := store.SchemaVersion(s.Dialect())
		must(t, err)
		must(t, store.MarkSchemaVersionForTest(ctx, s, known+1))
		again, err := store.Open(ctx, store.DSNForTest(s))
		if err == nil {
			again.Close()
			t.Fatal("Open of a database with a newer schema succeeded")
		}
		for _, want := range []string{"newer wutong", "knows versions up to"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to say %q", err, want)
			}
		}
	})
}

func TestOpenSQLiteDSNs(t *testing.T) {
	dir := t.TempDir()
	for _, dsn := range []string{filepath.Join(dir, "bare.db"), "sqlite:" + filepath.Join(dir, "prefixed.db")} {
		s, err := store.Open(ctx, dsn)
		must(t, err)
		if s.Dialect() != store.DialectSQLite {
			t.Errorf("%s: Dialect = %q", dsn, s.Dialect())
		}
		if _, err := os.Stat(strings.TrimPrefix(dsn, "sqlite:") + "-wal"); err != nil {
			t.Errorf("%s is not in WAL mode: %v", dsn, err)
		}
		must(t, s.Close())
	}
	for _, name := range []string{"bare.db", "prefixed.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("database file: %v", err)
		}
	}
	t.Run("empty DSN", func(t *testing.T) {
		t.Chdir(t.TempDir())
		s, err := store.Open(ctx, "")
		must(t, err)
		must(t, s.Close())
		if _, err := os.Stat(store.DefaultSQLitePath); err != nil {
			t.Errorf("empty DSN: %v", err)
		}
	})
	for dsn, want := range map[string]string{
		"sqlite:" + filepath.Join(dir, "missing", "x.db"): "create it first",
		"sqlite:" + filepath.Join(dir, "odd?.db"):         "may not contain",
	} {
		if _, err := store.Open(ctx, dsn); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want an error saying %q", dsn, err, want)
		}
	}
}

func TestStoretestOpen(t *testing.T) {
	s := storetest.Open(t, store.DialectSQLite)
	if s.Dialect() != store.DialectSQLite {
		t.Errorf("Dialect = %q", s.Dialect())
	}
}
