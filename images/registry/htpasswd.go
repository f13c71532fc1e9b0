package registry

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
)

// WriteHtpasswd sets user's password in the htpasswd file at path, as a bcrypt hash (the only kind distribution
// accepts): it replaces the user's line or appends one, keeps the other lines, and writes the file atomically with
// mode 0600, creating missing directories 0755. A user name may not be empty or hold ':' or white space.
func WriteHtpasswd(path, user, password string) error {
	if user == "" || strings.ContainsAny(user, ": \t\r\n") {
		return fmt.Errorf("write htpasswd: invalid user name %q", user)
	}
	if password == "" {
		return errors.New("write htpasswd: empty password")
	}
	if len(password) > 72 {
		return errors.New("write htpasswd: password longer than 72 bytes (bcrypt's limit)")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read htpasswd: %w", err)
	}
	var out bytes.Buffer
	replaced := false
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		line := sc.Text()
		if name, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && name == user {
			if replaced {
				continue // a duplicate line for the user; keep one
			}
			line, replaced = user+":"+string(hash), true
		}
		out.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read htpasswd: %w", err)
	}
	if !replaced {
		out.WriteString(user + ":" + string(hash) + "\n")
	}
	if err := atomicfile.Write(path, out.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write htpasswd: %w", err)
	}
	return nil
}
