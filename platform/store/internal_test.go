package store

import (
	"sort"
	"strings"
	"testing"
)

func TestSemverOrder(t *testing.T) {
	// Ascending, as semverLess must sort them.
	want := []string{"", "not-semver", "zzz", "0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0", "1.2.0", "1.10.0", "2.0.0"}
	got := append([]string(nil), want...)
	for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
		got[i], got[j] = got[j], got[i]
	}
	sort.SliceStable(got, func(i, j int) bool { return semverLess(got[i], got[j]) })
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("sorted:\n got %q\nwant %q", got, want)
	}
	for _, v := range want {
		if semverLess(v, v) {
			t.Errorf("semverLess(%q, %q) = true", v, v)
		}
	}
}

func TestRebind(t *testing.T) {
	tests := []struct{ dialect, in, want string }{
		{DialectSQLite, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = ? AND c = ?"},
		{DialectPostgres, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{DialectPostgres, "SELECT 1", "SELECT 1"},
		{DialectPostgres, "IN (?, ?, ?)", "IN ($1, $2, $3)"},
	}
	for _, tt := range tests {
		s := &Store{dialect: tt.dialect}
		if got := s.rebind(tt.in); got != tt.want {
			t.Errorf("%s rebind(%q) = %q, want %q", tt.dialect, tt.in, got, tt.want)
		}
	}
}

func TestMigrationsNumbered(t *testing.T) {
	sq, err := migrations(DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := migrations(DialectPostgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(sq) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d: every schema change needs a file in both", len(sq), len(pg))
	}
	for i := range sq {
		if sq[i].name != pg[i].name {
			t.Errorf("migration %d is %s for sqlite but %s for postgres", i+1, sq[i].name, pg[i].name)
		}
	}
}
