package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/store"
)

var ctx = context.Background()

// wantNotFound fails t unless err wraps store.ErrNotFound and its message names what.
func wantNotFound(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want one wrapping ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), what) {
		t.Errorf("err = %q, want it to name %q", err, what)
	}
}

// wantConflict fails t unless err is a *store.ConflictError about what/key whose message holds detail.
func wantConflict(t *testing.T, err error, what, key, detail string) *store.ConflictError {
	t.Helper()
	var ce *store.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want a *store.ConflictError", err, err)
	}
	if ce.What != what || ce.Key != key {
		t.Errorf("conflict on %s %q, want %s %q", ce.What, ce.Key, what, key)
	}
	if !strings.Contains(err.Error(), detail) {
		t.Errorf("err = %q, want it to say %q", err, detail)
	}
	return ce
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mkUser(t *testing.T, s *store.Store, name string) *store.User {
	t.Helper()
	u := &store.User{Name: name, DisplayName: strings.ToUpper(name), PasswordHash: "hash-" + name}
	must(t, s.CreateUser(ctx, u))
	return u
}

func mkTeam(t *testing.T, s *store.Store, name string) *store.Team {
	t.Helper()
	tm := &store.Team{Name: name, DisplayName: strings.ToUpper(name)}
	must(t, s.CreateTeam(ctx, tm))
	return tm
}

// recent fails t unless at is in UTC and within a minute of now.
func recent(t *testing.T, name string, at time.Time) {
	t.Helper()
	if at.Location() != time.UTC {
		t.Errorf("%s = %v, not in UTC", name, at)
	}
	if d := time.Since(at); d < -time.Minute || d > time.Minute {
		t.Errorf("%s = %v, not near now", name, at)
	}
}
