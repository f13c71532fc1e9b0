package remote

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeys is the host-key policy. It is strict: a host must be in one of Files, or in Record when AcceptNew is
// set and it is seen for the first time. A changed key is always refused.
type HostKeys struct {
	// Files are known_hosts files to trust, such as ~/.ssh/known_hosts. Missing files are ignored.
	Files []string
	// Record is the cluster workdir's known_hosts. It is trusted too, and new keys are appended to it when
	// AcceptNew is set. Created 0600 when needed.
	Record string
	// AcceptNew records the key of a host seen for the first time instead of refusing it
	// (--accept-new-host-keys). It never accepts a key that differs from a recorded one.
	AcceptNew bool
}

// recordMu serialises appends to Record files within this process.
var recordMu sync.Mutex

func (p HostKeys) files() []string {
	var fs []string
	for _, f := range append(append([]string(nil), p.Files...), p.Record) {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err == nil {
			fs = append(fs, f)
		}
	}
	return fs
}

// consulted lists the files named in errors.
func (p HostKeys) consulted() []string {
	var fs []string
	for _, f := range append(append([]string(nil), p.Files...), p.Record) {
		if f != "" {
			fs = append(fs, f)
		}
	}
	if len(fs) == 0 {
		fs = []string{"(no known_hosts file given)"}
	}
	return fs
}

// Fingerprint is the SHA256 fingerprint of a key, as OpenSSH prints it.
func Fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// callback returns the ssh.HostKeyCallback for host (a name for errors) and the algorithms to prefer, so that a
// node offering several key types is asked for the type on record.
func (p HostKeys) callback(host, addr string) (ssh.HostKeyCallback, []string, error) {
	files := p.files()
	var check ssh.HostKeyCallback
	if len(files) > 0 {
		cb, err := knownhosts.New(files...)
		if err != nil {
			return nil, nil, fmt.Errorf("read known_hosts: %w", err)
		}
		check = cb
	}
	algos := p.knownAlgorithms(check, addr)
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if check != nil {
			err := check(hostname, remote, key)
			if err == nil {
				return nil
			}
			var ke *knownhosts.KeyError
			if !errors.As(err, &ke) {
				return err
			}
			if len(ke.Want) > 0 {
				known := make([]string, len(ke.Want))
				for i, w := range ke.Want {
					known[i] = Fingerprint(w.Key)
				}
				return &HostKeyError{Host: host, Address: knownhosts.Normalize(hostname), Got: Fingerprint(key), Known: known, Files: p.consulted()}
			}
		}
		if !p.AcceptNew || p.Record == "" {
			return &HostKeyError{Host: host, Address: knownhosts.Normalize(hostname), Got: Fingerprint(key), Files: p.consulted()}
		}
		return p.record(hostname, key)
	}, algos, nil
}

// knownAlgorithms asks the known_hosts files which key types are on record for addr: a probe with a key that can
// never match yields the recorded keys in KeyError.Want.
func (p HostKeys) knownAlgorithms(check ssh.HostKeyCallback, addr string) []string {
	if check == nil {
		return nil
	}
	err := check(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var algos []string
	for _, w := range ke.Want {
		for _, a := range algorithmsFor(w.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// algorithmsFor lists the signature algorithms a host key of type t can be negotiated with.
func algorithmsFor(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

func (p HostKeys) record(hostname string, key ssh.PublicKey) error {
	recordMu.Lock()
	defer recordMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(p.Record), 0o700); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	f, err := os.OpenFile(p.Record, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("record host key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("record host key: %w", err)
	}
	return f.Close()
}

// probeKey is a fixed ed25519 public key that no host has; see knownAlgorithms.
var probeKey = func() ssh.PublicKey {
	k, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize))) // the zero key is no host's key
	if err != nil {
		panic(err)
	}
	return k
}()
