// Package pki makes the small private certificate authority of a Wutong cluster and the TLS server certificates it
// signs (the embedded registry's first): ECDSA P-256 keys, PEM files, key files 0600, atomic writes.
//
// P-256 rather than ed25519 because containerd, skopeo, Docker and every Go TLS stack accept it.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"

	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
)

// Defaults for a zero validity.
const (
	DefaultCAValidity     = 10 * 365 * 24 * time.Hour // the cluster CA
	DefaultServerValidity = 5 * 365 * 24 * time.Hour  // a server certificate; never past the CA's own expiry
)

// backdate is how far NotBefore lies in the past, so that nodes whose clocks lag a little accept a fresh certificate.
const backdate = time.Hour

// ErrCAExists is returned by (*CA).WriteFiles when another CA (or half of one) already sits at the paths.
var ErrCAExists = errors.New("a different CA already exists")

// CA is a certificate authority: its certificate, its private key, and both as PEM.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // "CERTIFICATE"
	KeyPEM  []byte // "PRIVATE KEY" (PKCS #8)
}

// NewCA makes a self-signed CA named commonName, valid from an hour ago for validity (DefaultCAValidity when 0).
// It may sign end-entity certificates only (path length 0).
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if strings.TrimSpace(commonName) == "" {
		return nil, errors.New("new CA: empty common name")
	}
	validity, err := pickValidity(validity, DefaultCAValidity)
	if err != nil {
		return nil, fmt.Errorf("new CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Wutong Offline"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// WriteFiles writes the CA's certificate (0644) and key (0600), each atomically (temp file, fsync, rename), creating
// missing directories 0755. The key is written first, so a certificate on disk always has its key next to it.
//
// It is idempotent: when the files already hold exactly this CA it does nothing. When either file exists with other
// content it writes nothing and returns an error wrapping ErrCAExists, because replacing a cluster CA silently would
// break trust on every node; use ReplaceFiles for a deliberate rotation.
func (ca *CA) WriteFiles(certPath, keyPath string) error {
	same := 0
	for _, f := range []struct {
		path, what string
		want       []byte
	}{{certPath, "certificate", ca.CertPEM}, {keyPath, "key", ca.KeyPEM}} {
		got, err := os.ReadFile(f.path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			return fmt.Errorf("read existing CA %s: %w", f.what, err)
		case !bytes.Equal(got, f.want):
			return fmt.Errorf("write CA %s %s: %w (use ReplaceFiles to rotate it)", f.what, f.path, ErrCAExists)
		}
		same++
	}
	if same == 2 {
		return nil
	}
	return ca.ReplaceFiles(certPath, keyPath)
}

// ReplaceFiles is WriteFiles without the check: it overwrites whatever is at the paths.
func (ca *CA) ReplaceFiles(certPath, keyPath string) error {
	return WriteKeyPair(certPath, keyPath, ca.CertPEM, ca.KeyPEM)
}

// LoadCA reads a CA written by WriteFiles (or any PEM CA certificate with a PKCS #8, SEC 1 or PKCS #1 key), and checks
// that the certificate is a CA and that the key belongs to it.
func LoadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load CA key: %w", err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate %s: %w", certPath, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("load CA certificate %s: not a CA certificate", certPath)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA key %s: %w", keyPath, err)
	}
	if !publicKeyEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("load CA: key %s does not belong to certificate %s", keyPath, certPath)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// IssueServer signs a TLS server certificate for hosts: each is an IP address (into IPAddresses) or a DNS name,
// wildcards allowed (into DNSNames); the first is also the common name. It is valid for validity
// (DefaultServerValidity when 0) but never past the CA's own NotAfter. The key is a fresh P-256 key in PKCS #8 PEM.
func (ca *CA) IssueServer(hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("issue server certificate: no hosts")
	}
	validity, err = pickValidity(validity, DefaultServerValidity)
	if err != nil {
		return nil, nil, fmt.Errorf("issue server certificate: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: strings.TrimSpace(hosts[0])},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if err := checkDNSName(h); err != nil {
			return nil, nil, fmt.Errorf("issue server certificate: host %q: %w", h, err)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate server key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("create server certificate: %w", err)
	}
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// WriteKeyPair writes a certificate (0644) and its key (0600), each atomically, key first, creating missing
// directories 0755. It checks that the two belong together before writing anything, and overwrites existing files.
func WriteKeyPair(certPath, keyPath string, certPEM, keyPEM []byte) error {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("check key pair: %w", err)
	}
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := atomicfile.Write(certPath, certPEM, 0o644); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	return nil
}

func pickValidity(v, def time.Duration) (time.Duration, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 0:
		return 0, fmt.Errorf("negative validity %s", v)
	}
	return v, nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil // never zero
}

// checkDNSName accepts letters, digits, '-' and '.', and a leading "*." wildcard.
func checkDNSName(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(h) > 253 {
		return errors.New("not an IP address or DNS name")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("not an IP address or DNS name")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return errors.New("not an IP address or DNS name")
			}
		}
	}
	return nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key block")
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	}
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
