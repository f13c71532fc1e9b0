package kubeadm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

func TestCACertHash(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubernetes"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	// Computed independently: the DER SubjectPublicKeyInfo of the public key.
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	want := "sha256:" + hex.EncodeToString(sum[:])

	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	got, err := CACertHash(certPEM)
	if err != nil || got != want {
		t.Errorf("CACertHash = %q, %v; want %q", got, err, want)
	}
	// A leading non-certificate block (as in a file holding a key too) is skipped.
	withKey := append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), certPEM...)
	if got, err := CACertHash(withKey); err != nil || got != want {
		t.Errorf("CACertHash after a key block = %q, %v; want %q", got, err, want)
	}
	if err := ValidateJoin(Join{Token: testToken, CACertHashes: []string{got}}); err != nil {
		t.Errorf("CACertHash output is not a valid Join hash: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("not pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})} {
		if h, err := CACertHash(bad); err == nil {
			t.Errorf("CACertHash(%q) = %q, want an error", bad, h)
		}
	}
}

func TestNewCertificateKey(t *testing.T) {
	a, err := NewCertificateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewCertificateKey()
	raw, err := hex.DecodeString(a)
	if err != nil || len(a) != 64 || len(raw) != 32 || a == b {
		t.Errorf("NewCertificateKey = %q, %q (%v)", a, b, err)
	}
	if err := validateCertificateKey(a, "key"); err != nil {
		t.Error(err)
	}
}

func TestNewToken(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if !bootstraputil.IsValidBootstrapToken(a) || a == b {
		t.Errorf("NewToken = %q, %q", a, b)
	}
}

func TestTokenSecret(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
	s, err := TokenSecret(testToken, 2*time.Hour, now, "wutong installer")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != bootstrapapi.BootstrapTokenSecretPrefix+"abcdef" {
		t.Errorf("name %q", s.Name)
	}
	if s.Namespace != "kube-system" {
		t.Errorf("namespace %q", s.Namespace)
	}
	if s.Type != bootstrapapi.SecretTypeBootstrapToken {
		t.Errorf("type %q", s.Type)
	}
	want := map[string]string{
		bootstrapapi.BootstrapTokenIDKey:               "abcdef",
		bootstrapapi.BootstrapTokenSecretKey:           "0123456789abcdef",
		bootstrapapi.BootstrapTokenDescriptionKey:      "wutong installer",
		bootstrapapi.BootstrapTokenExpirationKey:       "2026-03-01T04:00:00Z", // now+2h in UTC, RFC 3339
		bootstrapapi.BootstrapTokenUsageAuthentication: "true",
		bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
		bootstrapapi.BootstrapTokenExtraGroupsKey:      "system:bootstrappers:kubeadm:default-node-token",
	}
	if len(s.Data) != len(want) || len(s.StringData) != 0 {
		t.Errorf("data has %d keys, string data %d; want %d and 0: %q", len(s.Data), len(s.StringData), len(want), s.Data)
	}
	for k, v := range want {
		if got := string(s.Data[k]); got != v {
			t.Errorf("data[%s] = %q, want %q", k, got, v)
		}
	}
	if err := bootstraputil.ValidateBootstrapGroupName(string(s.Data[bootstrapapi.BootstrapTokenExtraGroupsKey])); err != nil {
		t.Error(err)
	}

	forever, err := TokenSecret(testToken, 0, now, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{bootstrapapi.BootstrapTokenExpirationKey, bootstrapapi.BootstrapTokenDescriptionKey} {
		if _, ok := forever.Data[k]; ok {
			t.Errorf("ttl 0 and no description: data has %s", k)
		}
	}
	for _, bad := range []string{"", "abcdef", "ABCDEF.0123456789abcdef", "abcdef.0123456789abcde"} {
		if _, err := TokenSecret(bad, time.Hour, now, ""); err == nil {
			t.Errorf("TokenSecret(%q) accepted", bad)
		}
	}
}

func TestTokenExpired(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	s, _ := TokenSecret(testToken, time.Hour, now, "")
	forever, _ := TokenSecret(testToken, 0, now, "")
	garbled, _ := TokenSecret(testToken, time.Hour, now, "")
	garbled.Data[bootstrapapi.BootstrapTokenExpirationKey] = []byte("tomorrow")
	for _, tc := range []struct {
		name   string
		secret *corev1.Secret
		at     time.Time
		want   bool
	}{
		{"fresh", s, now, false},
		{"just before", s, now.Add(time.Hour - time.Second), false},
		{"at expiry", s, now.Add(time.Hour), true},
		{"after", s, now.Add(2 * time.Hour), true},
		{"no expiration", forever, now.Add(1000 * time.Hour), false},
		{"unparseable", garbled, now, true},
		{"nil", nil, now, true},
	} {
		if got := TokenExpired(tc.secret, tc.at); got != tc.want {
			t.Errorf("%s: TokenExpired = %v, want %v", tc.name, got, tc.want)
		}
	}
}
