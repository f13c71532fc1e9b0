package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/platform/store"
)

// fast keeps the tests quick; the parameters travel in the hash, so Check needs no configuration.
var fast = Hasher{Time: 1, MemoryKiB: 1024, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h, err := fast.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") || strings.Contains(h, "correct") {
		t.Fatalf("hash %q", h)
	}
	if err := Check(h, "correct horse"); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if err := Check(h, "correct horsE"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password: %v", err)
	}
	h2, _ := fast.Hash("correct horse")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=18$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=0,t=1,p=1$AA$AA", "$argon2id$v=19$m=8,t=1,p=1$!!$AA"} {
		if err := Check(bad, "x"); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("Check(%q) = %v, want a parse error", bad, err)
		}
	}
	if _, err := fast.Hash("short"); err == nil || !strings.Contains(err.Error(), "at least 8") {
		t.Fatalf("short password: %v", err)
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		p := GeneratePassword()
		if len(p) != 20 || strings.ContainsAny(p, "0O1lI") || seen[p] {
			t.Fatalf("generated %q", p)
		}
		seen[p] = true
	}
}

func TestToken(t *testing.T) {
	s, h := NewToken()
	if !strings.HasPrefix(s, TokenPrefix) || len(s) < 26 || HashToken(s) != h || len(h) != 64 {
		t.Fatalf("token %q hash %q", s, h)
	}
	s2, _ := NewToken()
	if s2 == s {
		t.Fatal("tokens repeat")
	}
}

func TestCan(t *testing.T) {
	admin := &Principal{User: store.User{Admin: true}}
	ta := &Principal{Roles: map[int64]store.Role{1: store.RoleTeamAdmin}}
	member := &Principal{Roles: map[int64]store.Role{1: store.RoleMember, 2: store.RoleViewer}}
	viewer := &Principal{Roles: map[int64]store.Role{1: store.RoleViewer}}
	disabled := &Principal{User: store.User{Admin: true, Disabled: true}}
	for _, c := range []struct {
		name string
		p    *Principal
		act  Action
		team int64
		want bool
	}{
		{"admin any team", admin, ManageTeam, 9, true},
		{"admin users", admin, ManageUsers, 0, true},
		{"team-admin manages own team", ta, ManageTeam, 1, true},
		{"team-admin not other team", ta, Read, 2, false},
		{"team-admin not users", ta, ManageUsers, 1, false},
		{"member imports", member, Import, 1, true},
		{"member cannot manage", member, ManageTeam, 1, false},
		{"member is viewer elsewhere", member, Import, 2, false},
		{"member reads elsewhere", member, Read, 2, true},
		{"viewer reads", viewer, Read, 1, true},
		{"viewer cannot import", viewer, Import, 1, false},
		{"disabled admin", disabled, Read, 1, false},
		{"nil", nil, Read, 1, false},
	} {
		if got := c.p.Can(c.act, c.team); got != c.want {
			t.Errorf("%s: Can(%s, %d) = %v", c.name, c.act, c.team, got)
		}
	}
	if admin.Teams() != nil || len(member.Teams()) != 2 {
		t.Fatalf("teams: %v %v", admin.Teams(), member.Teams())
	}
	if ValidTeamRole("member") != nil || ValidTeamRole("admin") == nil {
		t.Fatal("team role check")
	}
}
