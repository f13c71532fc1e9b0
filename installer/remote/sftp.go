package remote

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/pkg/sftp"
)

// sftp request sizing: OpenSSH's sftp-server accepts writes up to 256 KiB; 64 requests of 32 KiB in flight keep a
// 1 Gbit/s, few-ms link full.
const (
	sftpPacket   = 32 << 10
	sftpInFlight = 64
	sftpWindow   = sftpPacket * sftpInFlight
)

// sftpServers are where distributions put OpenSSH's sftp-server: Debian/Ubuntu/UOS, the RHEL family
// (openEuler, Kylin, Anolis, Rocky), Arch, and others.
var sftpServers = []string{
	"/usr/lib/openssh/sftp-server",
	"/usr/libexec/openssh/sftp-server",
	"/usr/lib/ssh/sftp-server",
	"/usr/libexec/sftp-server",
	"/usr/lib/sftp-server",
}

// sftpClient opens an SFTP session. With sudo and a non-root login, sftp-server itself runs under sudo, so files
// are written as root without a second copy through /tmp.
func (c *Client) sftpClient(ctx context.Context, sudo bool) (*sftp.Client, func(), error) {
	opts := []sftp.ClientOption{
		sftp.MaxPacket(sftpPacket),
		sftp.MaxConcurrentRequestsPerFile(sftpInFlight),
		sftp.UseConcurrentWrites(true),
	}
	if sudo && c.cfg.User != "root" {
		return c.sudoSFTP(ctx, opts)
	}
	s, release, err := c.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		s.Close()
		release()
		return nil, nil, &TransferError{Host: c.cfg.Host, Op: "start sftp", Err: err}
	}
	w, err := s.StdinPipe()
	if err != nil {
		s.Close()
		release()
		return nil, nil, fmt.Errorf("%s: sftp stdin: %w", c.cfg.Host, err)
	}
	r, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		release()
		return nil, nil, fmt.Errorf("%s: sftp stdout: %w", c.cfg.Host, err)
	}
	sc, err := sftp.NewClientPipe(r, w, opts...)
	if err != nil {
		s.Close()
		release()
		return nil, nil, &TransferError{Host: c.cfg.Host, Op: "start sftp", Err: err}
	}
	return sc, closeOnce(func() { sc.Close(); s.Close(); release() }), nil
}

func (c *Client) sudoSFTP(ctx context.Context, opts []sftp.ClientOption) (*sftp.Client, func(), error) {
	mode, err := c.sudo(ctx)
	if err != nil {
		return nil, nil, err
	}
	server, err := c.sftpServer(ctx)
	if err != nil {
		return nil, nil, err
	}
	s, release, err := c.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*sftp.Client, func(), error) {
		s.Close()
		release()
		return nil, nil, &TransferError{Host: c.cfg.Host, Op: "start sftp under sudo", Err: err}
	}
	w, err := s.StdinPipe()
	if err != nil {
		return fail(err)
	}
	r, err := s.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	errTail := &tailBuffer{max: 4 << 10}
	s.Stderr = errTail
	line := "sudo -n -- " + Quote(server)
	if mode == sudoPassword {
		line = "sudo -k -S -p '' -- " + Quote(server)
	}
	if err := s.Start(line); err != nil {
		return fail(err)
	}
	if mode == sudoPassword {
		if _, err := io.WriteString(w, c.cfg.SudoPassword+"\n"); err != nil {
			return fail(err)
		}
	}
	sc, err := sftp.NewClientPipe(r, w, opts...)
	if err != nil {
		return fail(fmt.Errorf("%w: %s", err, strings.TrimSpace(errTail.String())))
	}
	return sc, closeOnce(func() { sc.Close(); s.Close(); release() }), nil
}

// sftpServer finds the node's sftp-server binary.
func (c *Client) sftpServer(ctx context.Context) (string, error) {
	var b strings.Builder
	b.WriteString("for p in")
	for _, p := range sftpServers {
		b.WriteString(" " + p)
	}
	b.WriteString(`; do if [ -x "$p" ]; then echo "$p"; exit 0; fi; done; exit 1`)
	out, err := c.Output(ctx, b.String())
	if err != nil {
		return "", fmt.Errorf("%s: no sftp-server found in %s: %w", c.cfg.Host, strings.Join(sftpServers, ", "), err)
	}
	return out, nil
}

// closeOnce makes f safe to call more than once (a deferred close and a ctx watcher).
func closeOnce(f func()) func() {
	var once sync.Once
	return func() { once.Do(f) }
}
