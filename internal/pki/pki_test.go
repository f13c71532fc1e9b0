package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func TestIssueServerVerifies(t *testing.T) {
	ca := newTestCA(t)
	hosts := []string{"registry.wutong.local", "127.0.0.1", "::1", "10.99.0.5", "*.apps.example"}
	certPEM, keyPEM, err := ca.IssueServer(hosts, 0)
	if err != nil {
		t.Fatalf("IssueServer: %v", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %v is past the CA's %v", leaf.NotAfter, ca.Cert.NotAfter)
	}
	if len(leaf.IPAddresses) != 3 || len(leaf.DNSNames) != 2 {
		t.Errorf("IPs %v DNS %v, want 3 IPs and 2 names", leaf.IPAddresses, leaf.DNSNames)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	other := newTestCA(t)
	otherPool := x509.NewCertPool()
	otherPool.AddCert(other.Cert)

	tests := []struct {
		name    string
		host    string
		pool    *x509.CertPool
		wantErr bool
	}{
		{"dns", "registry.wutong.local", pool, false},
		{"ipv4", "127.0.0.1", pool, false},
		{"ipv6", "::1", pool, false},
		{"lab ip", "10.99.0.5", pool, false},
		{"wildcard", "x.apps.example", pool, false},
		{"unknown name", "evil.example", pool, true},
		{"unknown ip", "10.99.0.6", pool, true},
		{"other CA", "registry.wutong.local", otherPool, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{
				DNSName:   tt.host,
				Roots:     tt.pool,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if (err != nil) != tt.wantErr {
				t.Errorf("Verify(%s): err %v, wantErr %v", tt.host, err, tt.wantErr)
			}
		})
	}
}

func TestIssueServerBadInput(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name     string
		hosts    []string
		validity time.Duration
	}{
		{"no hosts", nil, 0},
		{"space", []string{"a b"}, 0},
		{"url", []string{"https://x"}, 0},
		{"empty label", []string{"a..b"}, 0},
		{"negative validity", []string{"a"}, -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ca.IssueServer(tt.hosts, tt.validity); err == nil {
				t.Errorf("IssueServer(%q) succeeded, want an error", tt.hosts)
			}
		})
	}
}

func TestWriteLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "pki", "ca.crt"), filepath.Join(dir, "pki", "ca.key")
	ca := newTestCA(t)
	if err := ca.WriteFiles(certPath, keyPath); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	checkMode(t, certPath, 0o644)
	checkMode(t, keyPath, 0o600)
	if err := ca.WriteFiles(certPath, keyPath); err != nil {
		t.Errorf("WriteFiles of the same CA again: %v", err)
	}
	loaded, err := LoadCA(certPath, keyPath)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Cert.Equal(ca.Cert) || !publicKeyEqual(loaded.Key.Public(), ca.Key.Public()) {
		t.Fatal("loaded CA differs from the written one")
	}
	// The loaded CA signs certificates that the original verifies.
	certPEM, keyPEM, err := loaded.IssueServer([]string{"127.0.0.1"}, time.Minute)
	if err != nil {
		t.Fatalf("IssueServer: %v", err)
	}
	leaf, err := parseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: pool}); err != nil {
		t.Errorf("verify: %v", err)
	}
	srvCert, srvKey := filepath.Join(dir, "srv", "tls.crt"), filepath.Join(dir, "srv", "tls.key")
	if err := WriteKeyPair(srvCert, srvKey, certPEM, keyPEM); err != nil {
		t.Fatalf("WriteKeyPair: %v", err)
	}
	checkMode(t, srvCert, 0o644)
	checkMode(t, srvKey, 0o600)
	if _, err := tls.LoadX509KeyPair(srvCert, srvKey); err != nil {
		t.Errorf("load written pair: %v", err)
	}
	if err := WriteKeyPair(srvCert, srvKey, certPEM, ca.KeyPEM); err == nil {
		t.Error("WriteKeyPair with a key of another certificate succeeded")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "srv"))
	if len(entries) != 2 {
		t.Errorf("srv dir holds %d entries, want 2 (no temp files left)", len(entries))
	}
}

func TestWriteFilesRefusesOtherCA(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	first, second := newTestCA(t), newTestCA(t)
	if err := first.WriteFiles(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	err := second.WriteFiles(certPath, keyPath)
	if !errors.Is(err, ErrCAExists) {
		t.Fatalf("WriteFiles over another CA: %v, want ErrCAExists", err)
	}
	if got, _ := os.ReadFile(keyPath); string(got) != string(first.KeyPEM) {
		t.Fatal("refused WriteFiles changed the key file")
	}
	if err := second.ReplaceFiles(certPath, keyPath); err != nil {
		t.Fatalf("ReplaceFiles: %v", err)
	}
	loaded, err := LoadCA(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(second.Cert) {
		t.Error("ReplaceFiles did not replace the CA")
	}
}

func TestLoadCAErrors(t *testing.T) {
	dir := t.TempDir()
	a, b := newTestCA(t), newTestCA(t)
	leafPEM, leafKey, err := a.IssueServer([]string{"x"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name      string
		cert, key string
		want      string
	}{
		{"missing cert", filepath.Join(dir, "nope.crt"), write("a.key", a.KeyPEM), "load CA certificate"},
		{"garbage cert", write("g.crt", []byte("hello")), write("a2.key", a.KeyPEM), "no PEM CERTIFICATE"},
		{"key mismatch", write("a.crt", a.CertPEM), write("b.key", b.KeyPEM), "does not belong"},
		{"leaf not CA", write("leaf.crt", leafPEM), write("leaf.key", leafKey), "not a CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCA(tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadCA: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestNewCA(t *testing.T) {
	ca := newTestCA(t)
	if !ca.Cert.IsCA || !ca.Cert.MaxPathLenZero || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate flags: IsCA %v MaxPathLenZero %v KeyUsage %v", ca.Cert.IsCA, ca.Cert.MaxPathLenZero, ca.Cert.KeyUsage)
	}
	if d := time.Until(ca.Cert.NotAfter); d < 59*time.Minute || d > time.Hour {
		t.Errorf("CA valid for another %v, want about an hour", d)
	}
	if _, err := NewCA(" ", 0); err == nil {
		t.Error("NewCA with an empty name succeeded")
	}
	def, err := NewCA("x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(def.Cert.NotAfter); d < DefaultCAValidity-time.Minute {
		t.Errorf("default validity %v, want %v", d, DefaultCAValidity)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}
