package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/labtest"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// lab is this package's lab: three Debian hosts in 10.99.1.0/24.
func lab(t *testing.T) *labtest.Lab {
	return labtest.Up(t, labtest.Options{ID: "rm", Subnet: 1, N: 3})
}

func rootCfg(l *labtest.Lab, h labtest.Host) remote.Config {
	return remote.Config{Host: h.Name, Address: h.IP, Password: l.RootPassword, DialTimeout: 5 * time.Second,
		HostKeys: remote.HostKeys{Files: []string{l.KnownHosts}}}
}

func dial(t *testing.T, cfg remote.Config) *remote.Client {
	t.Helper()
	c, err := remote.Dial(t.Context(), cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", cfg.Host, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLabAuth(t *testing.T) {
	l := lab(t)
	h := l.Host(t, "lab1")
	dir := t.TempDir()

	// A passphrase-protected key, authorised on the host.
	enc := filepath.Join(dir, "enc")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret-phrase", "-f", enc).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(enc + ".pub")
	l.SSH(t, h, "echo '"+strings.TrimSpace(string(pub))+"' >> /root/.ssh/authorized_keys")

	// An ssh-agent holding the lab key.
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	add := exec.Command("ssh-add", l.Key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}

	base := remote.Config{Host: h.Name, Address: h.IP, DialTimeout: 5 * time.Second, HostKeys: remote.HostKeys{Files: []string{l.KnownHosts}}}
	with := func(f func(*remote.Config)) remote.Config { c := base; f(&c); return c }
	for _, tc := range []struct {
		name string
		cfg  remote.Config
	}{
		{"password", with(func(c *remote.Config) { c.Password = l.RootPassword })},
		{"key", with(func(c *remote.Config) { c.KeyFile = l.Key })},
		{"key with passphrase", with(func(c *remote.Config) { c.KeyFile = enc; c.Passphrase = "s3cret-phrase" })},
		{"agent", with(func(c *remote.Config) { c.Agent = true; c.AgentSocket = sock })},
		{"sudo user with password", with(func(c *remote.Config) { c.User = l.User; c.Password = l.UserPassword })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tc.cfg)
			got, err := c.Output(t.Context(), "hostname")
			if err != nil || got != h.Name {
				t.Fatalf("hostname = %q, %v; want %q", got, err, h.Name)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		_, err := remote.Dial(t.Context(), with(func(c *remote.Config) { c.Password = "not-the-password" }))
		var ae *remote.AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v (%T), want *AuthError", err, err)
		}
		if strings.Contains(err.Error(), "not-the-password") {
			t.Fatalf("error shows the password: %v", err)
		}
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		_, err := remote.Dial(t.Context(), with(func(c *remote.Config) { c.KeyFile = enc; c.Passphrase = "nope" }))
		if err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
			t.Fatalf("err = %v, want a wrong-passphrase error", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		cfg := with(func(c *remote.Config) {
			c.Address = strings.TrimSuffix(l.JumpIP, ".1") + ".250" // on the lab bridge, but nobody is there
			c.Password = l.RootPassword
			c.DialTimeout = 2 * time.Second
			c.Retries = 1
			c.RetryDelay = 100 * time.Millisecond
		})
		start := time.Now()
		_, err := remote.Dial(t.Context(), cfg)
		var de *remote.DialError
		if !errors.As(err, &de) {
			t.Fatalf("err = %v (%T), want *DialError", err, err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("an unreachable node took %s to fail; the bound is 2 tries of 2s", took)
		}
	})
}

func TestLabHostKeys(t *testing.T) {
	l := lab(t)
	h := l.Host(t, "lab2")
	work := filepath.Join(t.TempDir(), "workdir", "known_hosts")
	cfg := rootCfg(l, h)
	cfg.HostKeys = remote.HostKeys{Record: work}

	var he *remote.HostKeyError
	if _, err := remote.Dial(t.Context(), cfg); !errors.As(err, &he) || he.Changed() {
		t.Fatalf("unknown host: err = %v, want an unknown-host *HostKeyError", err)
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Fatalf("a refused host was recorded: %v", err)
	}

	cfg.HostKeys.AcceptNew = true
	dial(t, cfg).Close()
	st, err := os.Stat(work)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("recorded known_hosts: %v, mode %v; want 0600", err, st.Mode())
	}
	// Now known: strict mode accepts it from the record.
	cfg.HostKeys.AcceptNew = false
	dial(t, cfg).Close()

	// Another key on record for this address: refused, even with AcceptNew, showing both fingerprints.
	other := filepath.Join(t.TempDir(), "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(other + ".pub")
	f := strings.Fields(string(pub))
	forged := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(forged, []byte(h.IP+" "+f[0]+" "+f[1]+"\n"), 0o600)
	cfg.HostKeys = remote.HostKeys{Files: []string{forged}, Record: filepath.Join(t.TempDir(), "rec"), AcceptNew: true}
	_, err = remote.Dial(t.Context(), cfg)
	if !errors.As(err, &he) || !he.Changed() {
		t.Fatalf("changed key: err = %v, want a changed *HostKeyError", err)
	}
	fp, _ := exec.Command("ssh-keygen", "-lf", other+".pub").Output()
	if !strings.Contains(err.Error(), strings.Fields(string(fp))[1]) || !strings.Contains(err.Error(), he.Got) || he.Got == he.Known[0] {
		t.Fatalf("changed-key error must show both fingerprints: %v", err)
	}
}

func TestLabBastion(t *testing.T) {
	l := lab(t)
	jump, target := l.Host(t, "lab1"), l.Host(t, "lab3")
	// The target can no longer answer the jump host directly; only the bastion reaches it.
	if out, err := exec.Command("ip", "-n", target.NetNS, "route", "add", "blackhole", l.JumpIP+"/32").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "-n", target.NetNS, "route", "del", "blackhole", l.JumpIP+"/32").Run() })

	direct := rootCfg(l, target)
	direct.DialTimeout = time.Second
	direct.Retries = -1
	if _, err := remote.Dial(t.Context(), direct); err == nil {
		t.Fatal("the target is reachable without the bastion; the test proves nothing")
	}
	b := rootCfg(l, jump)
	b.KeyFile, b.Password = l.Key, ""
	via := rootCfg(l, target)
	via.Bastion = &b
	c := dial(t, via)
	if got, err := c.Output(t.Context(), "hostname"); err != nil || got != target.Name {
		t.Fatalf("via bastion: hostname = %q, %v", got, err)
	}
	// The session really came through the bastion.
	if got, err := c.Output(t.Context(), "echo $SSH_CONNECTION"); err != nil || !strings.HasPrefix(got, jump.IP+" ") {
		t.Fatalf("SSH_CONNECTION = %q, %v; want it to start with the bastion's %s", got, err, jump.IP)
	}
}

func TestLabSudo(t *testing.T) {
	l := lab(t)
	h := l.Host(t, "lab1")
	cfg := rootCfg(l, h)
	cfg.User, cfg.Password = l.User, l.UserPassword
	c := dial(t, cfg)
	ctx := t.Context()

	if got, err := c.Output(ctx, "id -un"); err != nil || got != l.User {
		t.Fatalf("without sudo: %q, %v", got, err)
	}
	r, err := c.Run(ctx, remote.Cmd{Line: "id -u; cat", Sudo: true, Stdin: strings.NewReader("payload on stdin\n")})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Stdout); got != "0\npayload on stdin\n" {
		t.Fatalf("sudo with stdin = %q; the password must not reach the command", got)
	}
	// The password appears in no process's command line on the node while sudo runs.
	bg := make(chan error, 1)
	go func() { _, err := c.Run(ctx, remote.Cmd{Line: "sleep 2", Sudo: true}); bg <- err }()
	time.Sleep(700 * time.Millisecond)
	if ps := l.SSH(t, h, "ps -eo args"); strings.Contains(ps, l.UserPassword) {
		t.Fatalf("the sudo password is visible in the process list:\n%s", ps)
	}
	if err := <-bg; err != nil {
		t.Fatal(err)
	}

	// A root-owned destination through sudo.
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("root's file\n"), 0o640)
	if _, err := c.Upload(ctx, src, "/root/sudo-upload/f", remote.UploadOptions{Sudo: true}); err != nil {
		t.Fatal(err)
	}
	if got := l.SSH(t, h, "stat -c '%U %a' /root/sudo-upload/f"); got != "root 640" {
		t.Fatalf("owner and mode = %q, want root 640", got)
	}

	bad := cfg
	bad.SudoPassword = "wrong-sudo-password"
	cb := dial(t, bad)
	_, err = cb.Run(ctx, remote.Cmd{Line: "true", Sudo: true})
	var se *remote.SudoError
	if !errors.As(err, &se) {
		t.Fatalf("wrong sudo password: err = %v (%T), want *SudoError", err, err)
	}
	if strings.Contains(err.Error(), "wrong-sudo-password") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestLabCommands(t *testing.T) {
	l := lab(t)
	c := dial(t, rootCfg(l, l.Host(t, "lab2")))
	ctx := t.Context()

	_, err := c.Run(ctx, remote.Cmd{Line: "echo first >&2; echo 'the real reason' >&2; exit 7"})
	var ce *remote.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 7 || !strings.Contains(ce.Stderr, "the real reason") || ce.Host != "lab2" {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "exit 7") {
		t.Fatalf("the message must carry the command: %v", err)
	}
	_, err = c.Run(ctx, remote.Cmd{Line: "echo hunter2 | cat; exit 1", Redact: true})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a redacted command shows up in its error: %v", err)
	}

	start := time.Now()
	_, err = c.Run(ctx, remote.Cmd{Line: "sleep 30", Timeout: time.Second})
	if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("timeout: err = %v after %s", err, time.Since(start))
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(300*time.Millisecond, cancel)
	if _, err = c.Run(cctx, remote.Cmd{Line: "sleep 30"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: err = %v", err)
	}
	// The connection still works after both.
	if got, err := c.Output(ctx, "echo ok"); err != nil || got != "ok" {
		t.Fatalf("after cancel: %q %v", got, err)
	}
}

// cutAfter dials normally but closes the first connection after n bytes have gone out, as a pulled cable would.
func cutAfter(n int64) func(context.Context, string, string) (net.Conn, error) {
	var first atomic.Bool
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil || !first.CompareAndSwap(false, true) {
			return conn, err
		}
		return &cutConn{Conn: conn, left: n}, nil
	}
}

type cutConn struct {
	net.Conn
	left int64
}

func (c *cutConn) Write(p []byte) (int, error) {
	if c.left -= int64(len(p)); c.left < 0 {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func TestLabUploadResume(t *testing.T) {
	l := lab(t)
	h := l.Host(t, "lab3")
	const size = 48 << 20
	src := filepath.Join(t.TempDir(), "payload.bin")
	data := make([]byte, size)
	rand.Read(data)
	data[1000] = 'A' // the damage test writes 'X' here: make sure that is a change
	os.WriteFile(src, data, 0o640)

	cfg := rootCfg(l, h)
	cfg.DialContext = cutAfter(20 << 20)
	cfg.RetryDelay = 50 * time.Millisecond
	c := dial(t, cfg)
	var last atomic.Int64
	res, err := c.Upload(t.Context(), src, "/opt/wutong/test/payload.bin", remote.UploadOptions{
		Progress: func(done, total int64) { last.Store(done) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("upload: %+v", res)
	if res.Attempts != 2 || res.Resumed == 0 {
		t.Fatalf("want a second attempt resuming a prefix: %+v", res)
	}
	// Bytes sent again are what was in flight when the link died (the 2 MiB write window, plus what had been read
	// for sending) and the window kept back on resume because it may have holes: a few MiB, far less than the file.
	if res.Resent > 6<<20 || res.Sent != size-res.Resumed+(res.Resumed+res.Resent) {
		t.Fatalf("resend accounting: %+v", res)
	}
	if last.Load() != size {
		t.Fatalf("progress ended at %d, want %d", last.Load(), size)
	}
	want := exec.Command("sha256sum", src)
	wantOut, _ := want.Output()
	if got := l.SSH(t, h, "sha256sum /opt/wutong/test/payload.bin; stat -c %a /opt/wutong/test/payload.bin; ls -A /opt/wutong/test"); got !=
		strings.Fields(string(wantOut))[0]+"  /opt/wutong/test/payload.bin\n640\npayload.bin" {
		t.Fatalf("on the node:\n%s", got)
	}

	again, err := c.Upload(t.Context(), src, "/opt/wutong/test/payload.bin", remote.UploadOptions{})
	if err != nil || !again.Skipped || again.Sent != 0 {
		t.Fatalf("identical re-upload: %+v, %v", again, err)
	}
	// A damaged copy on the node is replaced.
	l.SSH(t, h, "printf X | dd of=/opt/wutong/test/payload.bin bs=1 seek=1000 conv=notrunc status=none")
	fixed, err := c.Upload(t.Context(), src, "/opt/wutong/test/payload.bin", remote.UploadOptions{})
	if err != nil || fixed.Skipped || fixed.Sent != size {
		t.Fatalf("damaged copy: %+v, %v", fixed, err)
	}
}

func TestLabUploadErrors(t *testing.T) {
	l := lab(t)
	h := l.Host(t, "lab2")
	l.SSH(t, h, "mkdir -p /mnt/small && (mountpoint -q /mnt/small || mount -t tmpfs -o size=1m tmpfs /mnt/small)")
	src := filepath.Join(t.TempDir(), "big")
	os.WriteFile(src, bytes.Repeat([]byte("wutong"), 1<<20), 0o644)

	c := dial(t, rootCfg(l, h))
	_, err := c.Upload(t.Context(), src, "/mnt/small/big", remote.UploadOptions{})
	var te *remote.TransferError
	if !errors.Is(err, remote.ErrDiskFull) || !errors.As(err, &te) || te.Free < 0 {
		t.Fatalf("full disk: err = %v", err)
	}
	t.Logf("full disk reads: %v", err)
	if left := l.SSH(t, h, "ls -A /mnt/small"); left != "" {
		t.Fatalf("a full disk was left with %q", left)
	}

	cfg := rootCfg(l, h)
	cfg.User, cfg.Password = l.User, l.UserPassword
	cu := dial(t, cfg)
	_, err = cu.Upload(t.Context(), src, "/root/not-yours", remote.UploadOptions{})
	if !errors.Is(err, remote.ErrPermission) {
		t.Fatalf("permission: err = %v", err)
	}
}

func TestLabSessionLimit(t *testing.T) {
	l := lab(t)
	cfg := rootCfg(l, l.Host(t, "lab1"))
	cfg.MaxSessions = 2
	c := dial(t, cfg)
	// Each command records when it ran on the node; at most two may overlap.
	type span struct{ start, end int64 }
	spans := make(chan span, 6)
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		go func() {
			out, err := c.Output(t.Context(), "date +%s%N; sleep 0.3; date +%s%N")
			var s span
			if err == nil {
				_, err = fmt.Sscan(out, &s.start, &s.end)
			}
			spans <- s
			errs <- err
		}()
	}
	var all []span
	for i := 0; i < 6; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		all = append(all, <-spans)
	}
	for _, a := range all {
		overlap := 0
		for _, b := range all {
			if b.start <= a.start && a.start < b.end {
				overlap++
			}
		}
		if overlap > 2 {
			t.Fatalf("%d commands ran at once with MaxSessions 2: %v", overlap, all)
		}
	}
}

func TestLabKeepAliveRedial(t *testing.T) {
	l := lab(t)
	h := l.Host(t, "lab2")
	cfg := rootCfg(l, h)
	cfg.KeepAlive = 200 * time.Millisecond
	cfg.RetryDelay = 200 * time.Millisecond
	c := dial(t, cfg)
	before, err := c.Output(t.Context(), "echo $SSH_CONNECTION")
	if err != nil {
		t.Fatal(err)
	}
	// The link goes dark for a while: keepalives go unanswered and the connection is dropped.
	route := []string{"-n", h.NetNS, "route", "add", "blackhole", l.JumpIP + "/32"}
	if out, err := exec.Command("ip", route...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	time.Sleep(2 * time.Second)
	route[3] = "del"
	if out, err := exec.Command("ip", route...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	after, err := c.Output(t.Context(), "echo $SSH_CONNECTION")
	if err != nil {
		t.Fatalf("after the link came back: %v", err)
	}
	if after == before {
		t.Fatalf("still on the old connection (%s): the dead link was not noticed", after)
	}
}

// TestLabForward reaches a port that listens only on the node's loopback through the SSH connection, and names a
// port where nothing listens.
func TestLabForward(t *testing.T) {
	l := lab(t)
	h := l.Host(t, "lab2")
	c := dial(t, rootCfg(l, h))
	// sshd's own port on the node's loopback: the jump host cannot reach 127.0.0.1 of the node any other way.
	conn, err := c.DialContext(t.Context(), "tcp", "127.0.0.1:22")
	if err != nil {
		t.Fatalf("forward to 127.0.0.1:22: %v", err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	banner := make([]byte, 8)
	if _, err := io.ReadFull(conn, banner); err != nil || string(banner) != "SSH-2.0-" {
		t.Fatalf("banner through the forward = %q, %v", banner, err)
	}
	_, err = c.DialContext(t.Context(), "tcp", "127.0.0.1:1")
	var de *remote.DialError
	if !errors.As(err, &de) || de.Address != "127.0.0.1:1" {
		t.Fatalf("forward to a closed port: %v (%T), want a DialError naming 127.0.0.1:1", err, err)
	}
	// The link survives a refused forward.
	if got, err := c.Output(t.Context(), "hostname"); err != nil || got != h.Name {
		t.Fatalf("after a refused forward: %q, %v", got, err)
	}
}
