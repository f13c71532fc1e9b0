package remote

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/wutong-paas/wutong-offline/internal/logctx"
)

// Client is a connection to one node that redials when the link drops. It is safe for concurrent use; at most
// Config.MaxSessions commands and transfers run at once.
type Client struct {
	cfg      Config
	bastion  *Client
	sessions chan struct{}

	mu      sync.Mutex
	conn    *ssh.Client
	closers []func() error
	closed  bool

	sudoOnce sync.Mutex
	sudoMode sudoMode
}

// Dial connects to the node now, so that a wrong address, password or host key shows at once.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, sessions: make(chan struct{}, cfg.MaxSessions)}
	if cfg.Bastion != nil {
		b, err := Dial(ctx, *cfg.Bastion)
		if err != nil {
			return nil, err
		}
		c.bastion = b
	}
	if _, err := c.client(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Host is the node's name.
func (c *Client) Host() string { return c.cfg.Host }

// User is the login user.
func (c *Client) User() string { return c.cfg.User }

// Close drops the connection (and the bastion's).
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	conn := c.conn
	c.conn = nil
	closers := c.closers
	c.closers = nil
	c.mu.Unlock()
	var err error
	if conn != nil {
		err = conn.Close()
	}
	for _, f := range closers {
		_ = f()
	}
	if c.bastion != nil {
		_ = c.bastion.Close()
	}
	return err
}

// client returns the live connection, redialling with backoff when there is none.
func (c *Client) client(ctx context.Context) (*ssh.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%s: connection closed", c.cfg.Host)
	}
	if c.conn != nil {
		return c.conn, nil
	}
	delay := c.cfg.RetryDelay
	for attempt := 0; ; attempt++ {
		conn, err := c.dial(ctx)
		if err == nil {
			c.conn = conn
			go c.keepAlive(conn)
			return conn, nil
		}
		if !transient(err) || attempt >= c.cfg.Retries || ctx.Err() != nil {
			return nil, err
		}
		logctx.From(ctx).Warn("redial", "host", c.cfg.Host, "attempt", attempt+1, "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
		delay = min(delay*2, 8*time.Second)
	}
}

// drop forgets conn if it is still the current one, so that the next use redials.
func (c *Client) drop(conn *ssh.Client) {
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
	}
	c.mu.Unlock()
	_ = conn.Close()
}

// transient reports whether redialling may help.
func transient(err error) bool {
	var ae *AuthError
	var he *HostKeyError
	if errors.As(err, &ae) || errors.As(err, &he) || errors.Is(err, context.Canceled) {
		return false
	}
	var de *DialError
	return errors.As(err, &de)
}

func (c *Client) dial(ctx context.Context) (*ssh.Client, error) {
	cfg := c.cfg
	addr := cfg.addr()
	via := ""
	if cfg.Bastion != nil {
		via = cfg.Bastion.addr()
	}
	auth, methods, err := c.authMethods()
	if err != nil {
		return nil, err
	}
	hostKey, algos, err := cfg.HostKeys.callback(cfg.Host, addr)
	if err != nil {
		return nil, err
	}
	sc := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.DialTimeout,
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	var conn net.Conn
	if c.bastion != nil {
		bc, err := c.bastion.client(ctx)
		if err != nil {
			return nil, err
		}
		conn, err = bc.DialContext(dctx, "tcp", addr)
		if err != nil {
			// The bastion's own link may be what died: let the retry redial it too.
			c.bastion.drop(bc)
			return nil, &DialError{Host: cfg.Host, Address: addr, Via: via, Err: err}
		}
	} else {
		conn, err = cfg.DialContext(dctx, "tcp", addr)
		if err != nil {
			return nil, &DialError{Host: cfg.Host, Address: addr, Err: err}
		}
	}
	// The handshake has no ctx of its own: bound it by the deadline and by ctx.
	_ = conn.SetDeadline(time.Now().Add(cfg.DialTimeout))
	stop := context.AfterFunc(dctx, func() { _ = conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, sc)
	stopped := stop()
	if err != nil {
		_ = conn.Close()
		var he *HostKeyError
		switch {
		case errors.As(err, &he):
			return nil, he
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, &AuthError{Host: cfg.Host, User: cfg.User, Methods: methods, Err: err}
		case !stopped && ctx.Err() != nil:
			return nil, ctx.Err()
		}
		return nil, &DialError{Host: cfg.Host, Address: addr, Via: via, Err: fmt.Errorf("ssh handshake: %w", err)}
	}
	_ = conn.SetDeadline(time.Time{})
	logctx.From(ctx).Debug("connected", "host", cfg.Host, "addr", addr, "via", via)
	return ssh.NewClient(cc, chans, reqs), nil
}

// authMethods builds the offered methods in order: key file, agent, password (also as keyboard-interactive).
func (c *Client) authMethods() ([]ssh.AuthMethod, []string, error) {
	cfg := c.cfg
	var auth []ssh.AuthMethod
	var names []string
	if cfg.KeyFile != "" {
		pem, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: read private key: %w", cfg.Host, err)
		}
		var signer ssh.Signer
		if cfg.Passphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(cfg.Passphrase))
		} else {
			signer, err = ssh.ParsePrivateKey(pem)
		}
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return nil, nil, fmt.Errorf("%s: private key %s is encrypted: give its passphrase", cfg.Host, cfg.KeyFile)
		case errors.Is(err, x509.IncorrectPasswordError):
			return nil, nil, fmt.Errorf("%s: private key %s: wrong passphrase", cfg.Host, cfg.KeyFile)
		case err != nil:
			return nil, nil, fmt.Errorf("%s: parse private key %s: %w", cfg.Host, cfg.KeyFile, err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
		names = append(names, "publickey")
	}
	if cfg.Agent {
		sock := cfg.AgentSocket
		if sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
		}
		if sock == "" {
			return nil, nil, fmt.Errorf("%s: ssh-agent requested but SSH_AUTH_SOCK is not set: start ssh-agent and ssh-add the key", cfg.Host)
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: connect to ssh-agent: %w", cfg.Host, err)
		}
		c.closers = append(c.closers, conn.Close) // dial runs under c.mu

		auth = append(auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
		names = append(names, "agent")
	}
	if cfg.Password != "" {
		pw := cfg.Password
		auth = append(auth, ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			answers := make([]string, len(questions))
			for i := range answers {
				answers[i] = pw
			}
			return answers, nil
		}))
		names = append(names, "password")
	}
	if len(auth) == 0 {
		return nil, nil, fmt.Errorf("%s: no way to log in: give a password, a private key or the ssh-agent", cfg.Host)
	}
	return auth, names, nil
}

// keepAlive pings the node; when it stops answering, the connection is dropped so that the next use redials.
func (c *Client) keepAlive(conn *ssh.Client) {
	if c.cfg.KeepAlive < 0 {
		return
	}
	t := time.NewTicker(c.cfg.KeepAlive)
	defer t.Stop()
	missed := 0
	for range t.C {
		reply := make(chan error, 1)
		go func() {
			_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err != nil { // the connection is gone
				c.drop(conn)
				return
			}
			missed = 0
		case <-time.After(c.cfg.KeepAlive):
			missed++
			if missed >= 3 {
				slog.Warn("node stopped answering keepalives; reconnecting on next use", "host", c.cfg.Host)
				c.drop(conn)
				return
			}
		}
	}
}

// session opens a session under the per-node limit, redialling once if the connection has died.
func (c *Client) session(ctx context.Context) (*ssh.Session, func(), error) {
	select {
	case c.sessions <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	release := func() { <-c.sessions }
	for attempt := 0; ; attempt++ {
		conn, err := c.client(ctx)
		if err != nil {
			release()
			return nil, nil, err
		}
		s, err := conn.NewSession()
		if err == nil {
			return s, release, nil
		}
		c.drop(conn)
		if attempt >= 1 {
			release()
			return nil, nil, &DialError{Host: c.cfg.Host, Address: c.cfg.addr(), Err: fmt.Errorf("open session: %w", err)}
		}
	}
}
