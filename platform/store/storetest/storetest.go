// Package storetest gives tests a fresh *store.Store on each dialect: SQLite in a temporary file and PostgreSQL in a
// database made for the test and dropped after it.
//
// PostgreSQL is reached with the DSN in $WUTONG_TEST_POSTGRES, a role that may CREATE DATABASE
// (scripts/postgres/up.sh starts a local server and prints it). Without it the PostgreSQL tests skip, unless
// $WUTONG_LAB_REQUIRED=1 (as in CI), where they fail.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/store"
)

// Environment variables read by this package.
const (
	EnvPostgres = "WUTONG_TEST_POSTGRES" // DSN of a PostgreSQL role that may create databases
	EnvRequired = "WUTONG_LAB_REQUIRED"  // "1": a missing PostgreSQL fails the test instead of skipping it
)

// Dialects are the dialects Each runs on, in order.
var Dialects = []string{store.DialectSQLite, store.DialectPostgres}

// Each runs fn as one subtest per dialect, "sqlite" and "postgres", each with a fresh store.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh, migrated store of dialect ("sqlite" or "postgres"), closed (and for PostgreSQL dropped)
// when t ends.
func Open(t testing.TB, dialect string) *store.Store {
	t.Helper()
	switch dialect {
	case store.DialectSQLite:
		return openDSN(t, "sqlite:"+filepath.Join(t.TempDir(), "wutong.db"))
	case store.DialectPostgres:
		return openDSN(t, NewPostgresDatabase(t))
	}
	t.Fatalf("storetest: unknown dialect %q (want %q or %q)", dialect, store.DialectSQLite, store.DialectPostgres)
	return nil
}

func openDSN(t testing.TB, dsn string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// NewPostgresDatabase creates an empty PostgreSQL database named wutong_t_<random hex> for t, drops it (WITH
// (FORCE)) when t ends, and returns its DSN. Without $WUTONG_TEST_POSTGRES it skips t, or fails it when
// $WUTONG_LAB_REQUIRED=1.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		msg := "storetest: $" + EnvPostgres + " is not set: start PostgreSQL with scripts/postgres/up.sh and export the DSN it prints"
		if os.Getenv(EnvRequired) == "1" {
			t.Fatal(msg + " ($" + EnvRequired + "=1 makes this required)")
		}
		t.Skip(msg)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("storetest: $%s is not a URL: %v", EnvPostgres, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("storetest: random database name: %v", err)
	}
	name := "wutong_t_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("storetest: open $%s: %v", EnvPostgres, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		t.Fatalf("storetest: create database %s with $%s: %v", name, EnvPostgres, err)
	}
	t.Cleanup(func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}
