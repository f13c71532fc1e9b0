package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/wutong-paas/wutong-offline/internal/logctx"
)

// Runner runs commands on a node. *Client implements it; remotetest.Fake is a scripted one for unit tests.
type Runner interface {
	Host() string
	Run(ctx context.Context, cmd Cmd) (Result, error)
}

// Cmd is one remote command.
type Cmd struct {
	// Line is run by the login user's shell.
	Line string
	// Sudo runs Line as root, through sudo when the login user is not root.
	Sudo bool
	// Stdin feeds the command. Default: nothing.
	Stdin io.Reader
	// Stdout, when set, receives stdout as it arrives instead of Result.Stdout.
	Stdout io.Writer
	// Stderr, when set, also receives stderr as it arrives; Result.Stderr keeps its tail either way.
	Stderr io.Writer
	// Timeout overrides Config.CommandTimeout.
	Timeout time.Duration
	// Redact hides Line from errors and logs because it holds a secret.
	Redact bool
}

func (c Cmd) shown() string {
	if c.Redact {
		return "<redacted>"
	}
	return c.Line
}

// Result is what a command printed.
type Result struct {
	Stdout []byte // all of stdout, unless Cmd.Stdout was set
	Stderr string // the last 16 KiB of stderr
}

// Output runs line as the login user and returns its trimmed stdout.
func (c *Client) Output(ctx context.Context, line string) (string, error) {
	r, err := c.Run(ctx, Cmd{Line: line})
	return strings.TrimSpace(string(r.Stdout)), err
}

// Run runs cmd and waits for it. A non-zero exit, a timeout, a cancelled ctx and a dropped link are all
// *CommandError, with the exit code (or -1) and the stderr tail.
func (c *Client) Run(ctx context.Context, cmd Cmd) (Result, error) {
	line, stdin, err := c.wrapSudo(ctx, cmd)
	if err != nil {
		return Result{}, err
	}
	timeout := cmd.Timeout
	if timeout == 0 {
		timeout = c.cfg.CommandTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	s, release, err := c.session(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	defer s.Close()

	var out bytes.Buffer
	errTail := &tailBuffer{max: 16 << 10}
	// A command abandoned after a timeout may still print: the gate drops what arrives after Run returns.
	g := &gate{}
	defer g.close()
	s.Stdout = g.writer(&out)
	if cmd.Stdout != nil {
		s.Stdout = g.writer(cmd.Stdout)
	}
	s.Stderr = g.writer(errTail)
	if cmd.Stderr != nil {
		s.Stderr = g.writer(io.MultiWriter(errTail, cmd.Stderr))
	}
	s.Stdin = stdin
	start := time.Now()
	if err := s.Start(line); err != nil {
		return Result{}, &CommandError{Host: c.cfg.Host, Cmd: cmd.shown(), ExitCode: -1, Err: fmt.Errorf("start: %w", err)}
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Ask the node to stop the command, then stop waiting: sshd may keep a command that ignores the signal
		// until it ends, but the caller is free now.
		_ = s.Signal(ssh.SIGTERM)
		_ = s.Close()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		err = ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
	}
	g.close()
	res := Result{Stdout: out.Bytes(), Stderr: errTail.String()}
	logctx.From(ctx).Debug("run", "host", c.cfg.Host, "cmd", cmd.shown(), "sudo", cmd.Sudo, "took", time.Since(start).Round(time.Millisecond), "err", err)
	if err == nil {
		return res, nil
	}
	ce := &CommandError{Host: c.cfg.Host, Cmd: cmd.shown(), ExitCode: -1, Stderr: tail(res.Stderr, 20), Err: err}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		ce.ExitCode = ee.ExitStatus()
		if ee.Signal() != "" {
			ce.ExitCode = -1
		}
	}
	return res, ce
}

// gate serialises writes from a session's output copiers and shuts them out once closed.
type gate struct {
	mu     sync.Mutex
	closed bool
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *gate) writer(w io.Writer) io.Writer { return gatedWriter{g, w} }

type gatedWriter struct {
	g *gate
	w io.Writer
}

func (gw gatedWriter) Write(p []byte) (int, error) {
	gw.g.mu.Lock()
	defer gw.g.mu.Unlock()
	if gw.g.closed {
		return len(p), nil
	}
	return gw.w.Write(p)
}
