package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "''",
		"/opt/wutong/bin":     "/opt/wutong/bin",
		"a b":                 "'a b'",
		"it's":                `'it'\''s'`,
		"$(reboot)":           "'$(reboot)'",
		"x;rm -rf /":          "'x;rm -rf /'",
		"key=value,other:1@x": "key=value,other:1@x",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func edKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHostKeys(t *testing.T) {
	dir := t.TempDir()
	known, other := edKey(t), edKey(t)
	addr := &net.TCPAddr{IP: net.ParseIP("10.99.0.11"), Port: 22}
	file := filepath.Join(dir, "known_hosts")
	os.WriteFile(file, []byte(knownhosts.Line([]string{"10.99.0.11"}, known)+"\n"), 0o600)

	check := func(p HostKeys, host string, key ssh.PublicKey) error {
		cb, _, err := p.callback("node1", host)
		if err != nil {
			t.Fatal(err)
		}
		return cb(host, addr, key)
	}
	strict := HostKeys{Files: []string{file}}
	if err := check(strict, "10.99.0.11:22", known); err != nil {
		t.Fatalf("known key refused: %v", err)
	}
	var he *HostKeyError
	err := check(strict, "10.99.0.11:22", other)
	if !errors.As(err, &he) || !he.Changed() || he.Known[0] != Fingerprint(known) || he.Got != Fingerprint(other) {
		t.Fatalf("changed key: %v", err)
	}
	if !strings.Contains(err.Error(), Fingerprint(known)) || !strings.Contains(err.Error(), Fingerprint(other)) {
		t.Fatalf("message must show both fingerprints: %v", err)
	}
	// Accepting new keys never accepts a changed one.
	rec := filepath.Join(dir, "work", "known_hosts")
	if err := check(HostKeys{Files: []string{file}, Record: rec, AcceptNew: true}, "10.99.0.11:22", other); !errors.As(err, &he) || !he.Changed() {
		t.Fatalf("AcceptNew with a changed key: %v", err)
	}
	// Unknown: refused when strict, recorded (0600) when accepting new keys, then known.
	if err := check(strict, "10.99.0.12:22", other); !errors.As(err, &he) || he.Changed() {
		t.Fatalf("unknown host: %v", err)
	}
	if err := check(HostKeys{Record: rec, AcceptNew: true}, "10.99.0.12:22", other); err != nil {
		t.Fatalf("accept new: %v", err)
	}
	if st, err := os.Stat(rec); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("record file: %v %v", st, err)
	}
	if err := check(HostKeys{Record: rec}, "10.99.0.12:22", other); err != nil {
		t.Fatalf("recorded key refused: %v", err)
	}
	// A port other than 22 is its own entry.
	if err := check(HostKeys{Record: rec}, "10.99.0.12:2222", other); !errors.As(err, &he) {
		t.Fatalf("other port: %v", err)
	}
	// No files at all: everything is refused, and the message says so.
	if err := check(HostKeys{}, "10.99.0.11:22", known); !errors.As(err, &he) || !strings.Contains(err.Error(), "no known_hosts") {
		t.Fatalf("empty policy: %v", err)
	}
}

func TestKnownAlgorithms(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rk, _ := ssh.NewPublicKey(&priv.PublicKey)
	file := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(file, []byte(knownhosts.Line([]string{"[10.99.0.11]:2222"}, rk)+"\n"), 0o600)
	_, algos, err := HostKeys{Files: []string{file}}.callback("n", "10.99.0.11:2222")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}; fmt.Sprint(algos) != fmt.Sprint(want) {
		t.Fatalf("algorithms = %v, want %v", algos, want)
	}
	if _, algos, _ := (HostKeys{Files: []string{file}}).callback("n", "10.99.0.12:22"); algos != nil {
		t.Fatalf("unknown host algorithms = %v, want none (the defaults)", algos)
	}
}

func TestConfigRedacts(t *testing.T) {
	c := Config{Host: "n1", Address: "10.99.0.11", User: "wt", Password: "pw-SECRET", Passphrase: "pp-SECRET",
		SudoPassword: "sudo-SECRET", Bastion: &Config{Address: "10.99.0.2", Password: "b-SECRET"}}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("dial", "cfg", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", &c), b.String()} {
		if strings.Contains(s, "SECRET") {
			t.Errorf("a secret leaked: %s", s)
		}
		if !strings.Contains(s, "10.99.0.11") {
			t.Errorf("the address is missing: %s", s)
		}
	}
}

func TestCommandErrorMessage(t *testing.T) {
	e := &CommandError{Host: "n1", Cmd: "systemctl start containerd", ExitCode: 1, Stderr: tail("a\nb\nc\nJob failed\n", 2)}
	if got := e.Error(); got != "n1: systemctl start containerd: exit status 1: c\nJob failed" {
		t.Fatalf("got %q", got)
	}
	tb := &tailBuffer{max: 4}
	fmt.Fprint(tb, "hello world")
	if tb.String() != "orld" {
		t.Fatalf("tail buffer = %q", tb.String())
	}
}

func TestLinkLost(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&DialError{Err: errors.New("x")}, true},
		{fmt.Errorf("write: %w", net.ErrClosed), true},
		{&CommandError{ExitCode: 1}, false},
		{&CommandError{ExitCode: -1, Err: errors.New("wait: remote command exited without exit status")}, true},
		{&TransferError{Err: ErrDiskFull}, false},
		{&AuthError{}, false},
	} {
		if got := linkLost(tc.err); got != tc.want {
			t.Errorf("linkLost(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
