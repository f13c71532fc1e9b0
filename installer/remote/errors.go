package remote

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels for errors.Is.
var (
	// ErrDiskFull: the node's file system has no room for the file.
	ErrDiskFull = errors.New("no space left on the node")
	// ErrPermission: the node refused access to the path.
	ErrPermission = errors.New("permission denied on the node")
)

// DialError is a node that could not be reached: no route, refused, or a timeout.
type DialError struct {
	Host    string // the host's name in cluster.yaml
	Address string // host:port that was dialled
	Via     string // the bastion's address, if any
	Err     error
}

func (e *DialError) Error() string {
	via := ""
	if e.Via != "" {
		via = " via bastion " + e.Via
	}
	return fmt.Sprintf("%s: cannot reach %s%s: %v", e.Host, e.Address, via, e.Err)
}
func (e *DialError) Unwrap() error { return e.Err }

// AuthError is a node that refused every authentication method offered.
type AuthError struct {
	Host    string
	User    string
	Methods []string // what was tried: password, publickey, agent
	Err     error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("%s: the node refused login as %q (tried %s): %v", e.Host, e.User, strings.Join(e.Methods, ", "), e.Err)
}
func (e *AuthError) Unwrap() error { return e.Err }

// HostKeyError is a host key that is not trusted: unknown, or different from the one recorded.
type HostKeyError struct {
	Host    string
	Address string   // as written in known_hosts
	Got     string   // fingerprint the node offered (SHA256:…)
	Known   []string // fingerprints recorded for this address; empty when the host is unknown
	Files   []string // known_hosts files consulted
}

// Changed reports whether the node offered a different key from the recorded one: a possible man in the middle.
func (e *HostKeyError) Changed() bool { return len(e.Known) > 0 }

func (e *HostKeyError) Error() string {
	if e.Changed() {
		return fmt.Sprintf("%s: HOST KEY CHANGED for %s: recorded %s, the node now offers %s (known_hosts: %s)",
			e.Host, e.Address, strings.Join(e.Known, ", "), e.Got, strings.Join(e.Files, ", "))
	}
	return fmt.Sprintf("%s: unknown host key for %s: %s is not in %s", e.Host, e.Address, e.Got, strings.Join(e.Files, ", "))
}

// CommandError is a remote command that failed: a non-zero exit, a signal, a timeout or a lost connection.
type CommandError struct {
	Host     string
	Cmd      string // the command as the caller gave it (without sudo wrapping); "<redacted>" for secret commands
	ExitCode int    // -1 when the command did not exit normally
	Stderr   string // the last lines of its stderr
	Err      error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: ", e.Host, e.Cmd)
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, "exit status %d", e.ExitCode)
	} else {
		fmt.Fprintf(&b, "%v", e.Err)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		fmt.Fprintf(&b, ": %s", s)
	}
	return b.String()
}
func (e *CommandError) Unwrap() error { return e.Err }

// SudoError is sudo refusing to run a command: a wrong password, or a user not allowed to sudo.
type SudoError struct {
	Host   string
	User   string
	Stderr string
}

func (e *SudoError) Error() string {
	return fmt.Sprintf("%s: sudo refused user %q: %s", e.Host, e.User, strings.TrimSpace(e.Stderr))
}

// TransferError is a file transfer that failed. errors.Is(err, ErrDiskFull) and errors.Is(err, ErrPermission) tell
// the common causes apart.
type TransferError struct {
	Host string
	Path string // the remote path
	Op   string // what was being done: stat, write, rename, verify
	Need int64  // for a full disk: bytes still to write
	Free int64  // for a full disk: bytes free on the node, -1 when unknown
	Err  error
}

func (e *TransferError) Error() string {
	if errors.Is(e.Err, ErrDiskFull) && e.Free >= 0 {
		return fmt.Sprintf("%s: %s %s: no space left on the node (%d bytes still to write, %d free)", e.Host, e.Op, e.Path, e.Need, e.Free)
	}
	return fmt.Sprintf("%s: %s %s: %v", e.Host, e.Op, e.Path, e.Err)
}
func (e *TransferError) Unwrap() error { return e.Err }

// tail keeps the last n lines of s, at most 2 KiB.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if len(s) > 2048 {
		s = s[len(s)-2048:]
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}
func (t *tailBuffer) String() string { return string(t.b) }
