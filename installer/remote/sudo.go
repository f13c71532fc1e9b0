package remote

import (
	"context"
	"errors"
	"io"
	"strings"
)

type sudoMode int

const (
	sudoUnknown  sudoMode = iota
	sudoNoPasswd          // NOPASSWD in sudoers
	sudoPassword          // sudo asks for SudoPassword, fed on stdin
)

// Quote makes s one word for a POSIX shell.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// wrapSudo turns cmd into the line and stdin to send. For a non-root user and cmd.Sudo, the line runs under
// `sudo -- sh -c LINE`; the password, when sudo needs one, is the first line on stdin (-S), so it never appears on
// a command line, in the process list or in a log. sudo -k ignores cached credentials, so every command is
// authenticated the same way.
func (c *Client) wrapSudo(ctx context.Context, cmd Cmd) (string, io.Reader, error) {
	stdin := cmd.Stdin
	if !cmd.Sudo || c.cfg.User == "root" {
		return cmd.Line, stdin, nil
	}
	mode, err := c.sudo(ctx)
	if err != nil {
		return "", nil, err
	}
	if mode == sudoNoPasswd {
		return "sudo -n -- sh -c " + Quote(cmd.Line), stdin, nil
	}
	pw := strings.NewReader(c.cfg.SudoPassword + "\n")
	if stdin == nil {
		stdin = pw
	} else {
		stdin = io.MultiReader(pw, stdin)
	}
	return "sudo -k -S -p '' -- sh -c " + Quote(cmd.Line), stdin, nil
}

// sudo finds out once per client whether sudo needs a password and, if so, that SudoPassword is right, so that
// a wrong password is a *SudoError before any real command and never eats a command's stdin.
func (c *Client) sudo(ctx context.Context) (sudoMode, error) {
	c.sudoOnce.Lock()
	defer c.sudoOnce.Unlock()
	if c.sudoMode != sudoUnknown {
		return c.sudoMode, nil
	}
	if _, err := c.Run(ctx, Cmd{Line: "sudo -n -k true"}); err == nil {
		c.sudoMode = sudoNoPasswd
		return c.sudoMode, nil
	} else if !isExit(err) {
		return 0, err
	} else if ce := (*CommandError)(nil); errors.As(err, &ce) && strings.Contains(ce.Stderr, "not in the sudoers") {
		return 0, &SudoError{Host: c.cfg.Host, User: c.cfg.User, Stderr: ce.Stderr}
	}
	if c.cfg.SudoPassword == "" {
		return 0, &SudoError{Host: c.cfg.Host, User: c.cfg.User, Stderr: "sudo needs a password and none was given (sudoPassword or password)"}
	}
	_, err := c.Run(ctx, Cmd{Line: "sudo -k -S -p '' true", Stdin: strings.NewReader(c.cfg.SudoPassword + "\n")})
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) && ce.ExitCode > 0 {
			return 0, &SudoError{Host: c.cfg.Host, User: c.cfg.User, Stderr: ce.Stderr}
		}
		return 0, err
	}
	c.sudoMode = sudoPassword
	return c.sudoMode, nil
}

// isExit reports whether err is a command that ran and exited non-zero.
func isExit(err error) bool {
	var ce *CommandError
	return errors.As(err, &ce) && ce.ExitCode > 0
}
