package remote

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// Config says how to reach one node. Zero values take the defaults documented on each field.
type Config struct {
	// Host names the node in errors and logs (cluster.yaml's host name). Default: Address.
	Host string
	// Address is the IP or DNS name to dial.
	Address string
	// Port is sshd's port. Default 22.
	Port int
	// User logs in. Default root.
	User string
	// Password for password and keyboard-interactive login. Never logged.
	Password string
	// KeyFile is a private key in OpenSSH or PEM format.
	KeyFile string
	// Passphrase decrypts KeyFile. Never logged.
	Passphrase string
	// Agent uses the ssh-agent at AgentSocket.
	Agent bool
	// AgentSocket is the agent's socket. Default $SSH_AUTH_SOCK.
	AgentSocket string
	// SudoPassword is fed to sudo on stdin when a command asks for root and User is not root. Default Password.
	SudoPassword string
	// Bastion is a jump host to dial through. Its HostKeys default to this Config's.
	Bastion *Config
	// HostKeys is the host-key policy; see HostKeys. With nothing in it, every host is refused.
	HostKeys HostKeys
	// DialTimeout bounds the TCP connect and the SSH handshake. Default 15s.
	DialTimeout time.Duration
	// CommandTimeout is the default per-command timeout. Default 30m; Cmd.Timeout overrides it.
	CommandTimeout time.Duration
	// KeepAlive is the interval of keepalive@openssh.com requests; three unanswered ones drop the connection so
	// that the next use reconnects. Default 15s; negative disables.
	KeepAlive time.Duration
	// Retries is how many times a dropped or refused connection is redialled, with exponential backoff from
	// RetryDelay. Default 4. Authentication and host-key failures are never retried.
	Retries int
	// RetryDelay is the first backoff delay. Default 500ms, doubling up to 8s.
	RetryDelay time.Duration
	// MaxSessions caps concurrent commands and transfers on this node (OpenSSH allows 10 sessions per
	// connection). Default 6.
	MaxSessions int
	// DialContext opens the TCP connection when there is no bastion. Default net.Dialer. Tests use it to cut a
	// link midway.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = 22
	}
	if c.User == "" {
		c.User = "root"
	}
	if c.Host == "" {
		c.Host = c.Address
	}
	if c.SudoPassword == "" {
		c.SudoPassword = c.Password
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 15 * time.Second
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = 30 * time.Minute
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 4
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = 500 * time.Millisecond
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 6
	}
	if c.DialContext == nil {
		d := &net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second}
		c.DialContext = d.DialContext
	}
	if c.Bastion != nil {
		b := *c.Bastion
		if len(b.HostKeys.Files) == 0 && b.HostKeys.Record == "" {
			b.HostKeys = c.HostKeys
		}
		if b.DialTimeout == 0 {
			b.DialTimeout = c.DialTimeout
		}
		b.DialContext = c.DialContext
		c.Bastion = &b
	}
	return c
}

func (c Config) addr() string { return net.JoinHostPort(c.Address, strconv.Itoa(c.Port)) }

// LogValue keeps secrets out of logs.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("host", c.Host), slog.String("addr", c.addr()), slog.String("user", c.User)}
	if c.Password != "" {
		attrs = append(attrs, slog.String("password", "<redacted>"))
	}
	if c.KeyFile != "" {
		attrs = append(attrs, slog.String("key", c.KeyFile))
	}
	if c.Bastion != nil {
		attrs = append(attrs, slog.String("bastion", c.Bastion.addr()))
	}
	return slog.GroupValue(attrs...)
}

// String keeps secrets out of %v.
func (c Config) String() string {
	s := c.User + "@" + c.addr()
	if c.Bastion != nil {
		s += " via " + c.Bastion.User + "@" + c.Bastion.addr()
	}
	return s
}

// GoString keeps secrets out of %#v.
func (c Config) GoString() string { return "remote.Config{" + c.String() + "}" }
