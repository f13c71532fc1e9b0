package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestWriteHtpasswd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth", "htpasswd")
	steps := []struct {
		name, user, pass string
		wantErr          bool
		want             map[string]string // user -> password that must match afterwards
	}{
		{"create", "wutong", "pass-one-1", false, map[string]string{"wutong": "pass-one-1"}},
		{"add user", "ci", "pass-two-2", false, map[string]string{"wutong": "pass-one-1", "ci": "pass-two-2"}},
		{"change password", "wutong", "pass-three-3", false, map[string]string{"wutong": "pass-three-3", "ci": "pass-two-2"}},
		{"colon in user", "a:b", "x", true, map[string]string{"wutong": "pass-three-3", "ci": "pass-two-2"}},
		{"space in user", "a b", "x", true, map[string]string{"wutong": "pass-three-3", "ci": "pass-two-2"}},
		{"empty user", "", "x", true, map[string]string{"wutong": "pass-three-3", "ci": "pass-two-2"}},
		{"empty password", "ci", "", true, map[string]string{"wutong": "pass-three-3", "ci": "pass-two-2"}},
		{"too long", "ci", strings.Repeat("x", 73), true, map[string]string{"wutong": "pass-three-3", "ci": "pass-two-2"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := WriteHtpasswd(path, st.user, st.pass)
			if (err != nil) != st.wantErr {
				t.Fatalf("WriteHtpasswd: %v, wantErr %v", err, st.wantErr)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) != len(st.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(st.want), data)
			}
			for _, l := range lines {
				user, hash, _ := strings.Cut(l, ":")
				pass, ok := st.want[user]
				if !ok {
					t.Fatalf("unexpected user %q", user)
				}
				if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)); err != nil {
					t.Errorf("user %s: %v", user, err)
				}
				if strings.Contains(l, pass) {
					t.Errorf("user %s: the password is in the file", user)
				}
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files next to htpasswd, want none (temp files left?)", len(entries)-1)
	}
}
