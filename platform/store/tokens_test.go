package store_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		bob, ann := mkUser(t, s, "bob"), mkUser(t, s, "ann")
		// A local, sub-microsecond time: it must come back in UTC, cut to the microsecond.
		t0 := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CST", 8*3600))
		sess := &store.Token{UserID: bob.ID, Name: "login", Kind: store.TokenSession, Hash: "aa11", ExpiresAt: t0}
		must(t, s.CreateToken(ctx, sess))
		if sess.ID == 0 {
			t.Fatal("CreateToken left ID 0")
		}
		recent(t, "CreatedAt", sess.CreatedAt)
		if want := time.Date(2030, 1, 1, 19, 4, 5, 123456000, time.UTC); sess.ExpiresAt != want {
			t.Errorf("ExpiresAt = %v, want %v", sess.ExpiresAt, want)
		}
		api := &store.Token{UserID: bob.ID, Name: "ci", Kind: store.TokenAPI, Hash: "bb22"} // never expires
		must(t, s.CreateToken(ctx, api))
		other := &store.Token{UserID: ann.ID, Name: "x", Kind: store.TokenAPI, Hash: "cc33"}
		must(t, s.CreateToken(ctx, other))

		wantConflict(t, s.CreateToken(ctx, &store.Token{UserID: ann.ID, Name: "dup", Kind: store.TokenAPI, Hash: "aa11"}),
			"token", "dup", "same secret")
		wantNotFound(t, s.CreateToken(ctx, &store.Token{UserID: 999, Kind: store.TokenAPI, Hash: "dd44"}), "user 999")
		if err := s.CreateToken(ctx, &store.Token{UserID: bob.ID, Kind: "cookie", Hash: "ee55"}); err == nil {
			t.Error("CreateToken of kind cookie succeeded")
		}
		if err := s.CreateToken(ctx, &store.Token{UserID: bob.ID, Kind: store.TokenAPI}); err == nil {
			t.Error("CreateToken without a hash succeeded")
		}

		before := t0.Add(-time.Millisecond)
		got, err := s.TokenByHash(ctx, "aa11", before)
		must(t, err)
		if !reflect.DeepEqual(got, sess) {
			t.Errorf("TokenByHash = %+v, want %+v", got, sess)
		}
		// Expiry is exact to the millisecond: at ExpiresAt the token is gone.
		_, err = s.TokenByHash(ctx, "aa11", t0.Truncate(time.Microsecond))
		wantNotFound(t, err, "token")
		_, err = s.TokenByHash(ctx, "ffff", before)
		wantNotFound(t, err, "token")
		got, err = s.TokenByHash(ctx, "bb22", t0.AddDate(100, 0, 0))
		must(t, err)
		if !got.ExpiresAt.IsZero() || !got.LastUsedAt.IsZero() {
			t.Errorf("never-expiring, unused token read back as %+v", got)
		}

		used := time.Date(2029, 5, 6, 7, 8, 9, 987000000, time.UTC)
		must(t, s.TouchToken(ctx, api.ID, used))
		wantNotFound(t, s.TouchToken(ctx, 999, used), "token 999")
		api.LastUsedAt = used
		list, err := s.TokensOf(ctx, bob.ID)
		must(t, err)
		if want := []store.Token{*api, *sess}; !reflect.DeepEqual(list, want) {
			t.Errorf("TokensOf = %+v\nwant %+v", list, want)
		}

		wantNotFound(t, s.DeleteToken(ctx, ann.ID, api.ID), "token") // not ann's
		must(t, s.DeleteToken(ctx, bob.ID, api.ID))
		wantNotFound(t, s.DeleteToken(ctx, bob.ID, api.ID), "token")

		n, err := s.DeleteExpiredTokens(ctx, before)
		must(t, err)
		if n != 0 {
			t.Errorf("DeleteExpiredTokens before expiry deleted %d", n)
		}
		n, err = s.DeleteExpiredTokens(ctx, t0)
		must(t, err)
		if n != 1 {
			t.Errorf("DeleteExpiredTokens at expiry deleted %d, want 1", n)
		}
		left, err := s.TokensOf(ctx, bob.ID)
		must(t, err)
		if len(left) != 0 {
			t.Errorf("bob still has %+v", left)
		}
		left, err = s.TokensOf(ctx, ann.ID)
		must(t, err)
		if len(left) != 1 || left[0].Hash != "cc33" {
			t.Errorf("ann's tokens = %+v, want her one token", left)
		}

		// DeleteTokensOf: every token of the user but the one kept; other users' untouched.
		var bobs []*store.Token
		for i, h := range []string{"k1", "k2", "k3"} {
			tk := &store.Token{UserID: bob.ID, Name: h, Kind: []string{store.TokenSession, store.TokenAPI}[i%2], Hash: h}
			must(t, s.CreateToken(ctx, tk))
			bobs = append(bobs, tk)
		}
		n, err = s.DeleteTokensOf(ctx, bob.ID, bobs[1].ID)
		must(t, err)
		if n != 2 {
			t.Errorf("DeleteTokensOf deleted %d, want 2", n)
		}
		left, err = s.TokensOf(ctx, bob.ID)
		must(t, err)
		if len(left) != 1 || left[0].ID != bobs[1].ID {
			t.Errorf("bob's tokens after DeleteTokensOf = %+v, want only %d", left, bobs[1].ID)
		}
		n, err = s.DeleteTokensOf(ctx, bob.ID, 0)
		must(t, err)
		if n != 1 {
			t.Errorf("DeleteTokensOf(keep none) deleted %d, want 1", n)
		}
		left, err = s.TokensOf(ctx, ann.ID)
		must(t, err)
		if len(left) != 1 {
			t.Errorf("ann lost tokens: %+v", left)
		}
	})
}
