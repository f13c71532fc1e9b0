package store_test

import (
	"reflect"
	"testing"

	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

func TestUsers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		n, err := s.CountUsers(ctx)
		must(t, err)
		if n != 0 {
			t.Fatalf("CountUsers on a fresh store = %d, want 0", n)
		}
		bob := &store.User{Name: "bob", DisplayName: "Bob", PasswordHash: "$argon2id$x", Admin: true}
		must(t, s.CreateUser(ctx, bob))
		if bob.ID == 0 {
			t.Fatal("CreateUser left ID 0")
		}
		recent(t, "CreatedAt", bob.CreatedAt)
		alice := mkUser(t, s, "alice")
		if alice.ID == bob.ID {
			t.Fatal("two users share an ID")
		}

		got, err := s.User(ctx, bob.ID)
		must(t, err)
		if !reflect.DeepEqual(got, bob) {
			t.Errorf("User = %+v, want %+v", got, bob)
		}
		got, err = s.UserByName(ctx, "alice")
		must(t, err)
		if !reflect.DeepEqual(got, alice) {
			t.Errorf("UserByName = %+v, want %+v", got, alice)
		}

		err = s.CreateUser(ctx, &store.User{Name: "bob"})
		wantConflict(t, err, "user", "bob", "taken")
		if err := s.CreateUser(ctx, &store.User{}); err == nil {
			t.Error("CreateUser with an empty name succeeded")
		}

		_, err = s.User(ctx, 999)
		wantNotFound(t, err, "user 999")
		_, err = s.UserByName(ctx, "carol")
		wantNotFound(t, err, `user "carol"`)

		bob.DisplayName, bob.PasswordHash, bob.Admin, bob.Disabled = "Robert", "$argon2id$y", false, true
		bob.Name = "ignored" // the name never changes
		must(t, s.UpdateUser(ctx, bob))
		bob.Name = "bob"
		got, err = s.User(ctx, bob.ID)
		must(t, err)
		if !reflect.DeepEqual(got, bob) {
			t.Errorf("after UpdateUser: %+v, want %+v", got, bob)
		}
		wantNotFound(t, s.UpdateUser(ctx, &store.User{ID: 999}), "user 999")

		all, err := s.Users(ctx)
		must(t, err)
		if want := []store.User{*alice, *bob}; !reflect.DeepEqual(all, want) {
			t.Errorf("Users = %+v, want %+v", all, want)
		}
		n, err = s.CountUsers(ctx)
		must(t, err)
		if n != 2 {
			t.Errorf("CountUsers = %d, want 2", n)
		}
	})
}

func TestTeamsAndMembers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		teams, err := s.Teams(ctx)
		must(t, err)
		if len(teams) != 0 {
			t.Fatalf("Teams on a fresh store = %v", teams)
		}
		ops := mkTeam(t, s, "ops")
		dev := mkTeam(t, s, "dev-a")
		recent(t, "CreatedAt", ops.CreatedAt)
		wantConflict(t, s.CreateTeam(ctx, &store.Team{Name: "ops"}), "team", "ops", "taken")

		got, err := s.Team(ctx, ops.ID)
		must(t, err)
		if !reflect.DeepEqual(got, ops) {
			t.Errorf("Team = %+v, want %+v", got, ops)
		}
		got, err = s.TeamByName(ctx, "dev-a")
		must(t, err)
		if !reflect.DeepEqual(got, dev) {
			t.Errorf("TeamByName = %+v, want %+v", got, dev)
		}
		_, err = s.Team(ctx, 999)
		wantNotFound(t, err, "team 999")
		_, err = s.TeamByName(ctx, "qa")
		wantNotFound(t, err, `team "qa"`)
		teams, err = s.Teams(ctx)
		must(t, err)
		if want := []store.Team{*dev, *ops}; !reflect.DeepEqual(teams, want) {
			t.Errorf("Teams = %+v, want %+v", teams, want)
		}

		ann, bob := mkUser(t, s, "ann"), mkUser(t, s, "bob")
		must(t, s.SetMember(ctx, ops.ID, bob.ID, store.RoleViewer))
		must(t, s.SetMember(ctx, ops.ID, ann.ID, store.RoleMember))
		must(t, s.SetMember(ctx, dev.ID, bob.ID, store.RoleMember))
		must(t, s.SetMember(ctx, ops.ID, bob.ID, store.RoleTeamAdmin)) // upsert

		for _, bad := range []store.Role{store.RoleAdmin, "", "owner"} {
			if err := s.SetMember(ctx, ops.ID, ann.ID, bad); err == nil {
				t.Errorf("SetMember with role %q succeeded", bad)
			}
		}
		wantNotFound(t, s.SetMember(ctx, 999, ann.ID, store.RoleMember), "team 999")
		wantNotFound(t, s.SetMember(ctx, ops.ID, 999, store.RoleMember), "user 999")

		members, err := s.Members(ctx, ops.ID)
		must(t, err)
		want := []store.Member{
			{TeamID: ops.ID, TeamName: "ops", UserID: ann.ID, UserName: "ann", Role: store.RoleMember},
			{TeamID: ops.ID, TeamName: "ops", UserID: bob.ID, UserName: "bob", Role: store.RoleTeamAdmin},
		}
		if !reflect.DeepEqual(members, want) {
			t.Errorf("Members = %+v, want %+v", members, want)
		}
		of, err := s.MembershipsOf(ctx, bob.ID)
		must(t, err)
		wantOf := []store.Member{
			{TeamID: dev.ID, TeamName: "dev-a", UserID: bob.ID, UserName: "bob", Role: store.RoleMember},
			{TeamID: ops.ID, TeamName: "ops", UserID: bob.ID, UserName: "bob", Role: store.RoleTeamAdmin},
		}
		if !reflect.DeepEqual(of, wantOf) {
			t.Errorf("MembershipsOf = %+v, want %+v", of, wantOf)
		}

		must(t, s.RemoveMember(ctx, ops.ID, ann.ID))
		wantNotFound(t, s.RemoveMember(ctx, ops.ID, ann.ID), "member")
		members, err = s.Members(ctx, ops.ID)
		must(t, err)
		if len(members) != 1 || members[0].UserID != bob.ID {
			t.Errorf("Members after RemoveMember = %+v", members)
		}
		members, err = s.Members(ctx, 999)
		must(t, err)
		if len(members) != 0 {
			t.Errorf("Members of a missing team = %+v", members)
		}
	})
}
