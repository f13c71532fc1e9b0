package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// DefaultTrustDir holds the public keys trusted when no --key is given.
const DefaultTrustDir = "/etc/wutong/trusted-keys"

// Signature algorithms recorded in the signature entry.
const (
	AlgEd25519 = "ed25519"
	AlgNone    = "none" // an unsigned archive
)

// Signature is the second entry of every archive. It signs the exact bytes of the first entry.
type Signature struct {
	Algorithm   string `json:"algorithm"`
	KeyID       string `json:"keyId,omitempty"` // fingerprint of the signing public key
	Value       string `json:"value,omitempty"` // base64 of the raw signature
	Unsigned    bool   `json:"unsigned,omitempty"`
	Description string `json:"description,omitempty"`
}

// GenerateKey creates an ed25519 key pair and writes it as PEM files: the private key (PKCS#8) to privPath with
// mode 0600 and the public key (PKIX) to pubPath with mode 0644. Existing files are never overwritten.
func GenerateKey(privPath, pubPath string) (fingerprint string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("encode private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", fmt.Errorf("write key: %s already exists; remove it or choose another name", p)
		}
	}
	if err := writeFileExcl(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", err
	}
	if err := writeFileExcl(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(privPath)
		return "", err
	}
	return Fingerprint(pub), nil
}

func writeFileExcl(p string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(p)
		return fmt.Errorf("write key %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(p)
		return fmt.Errorf("write key %s: %w", p, err)
	}
	return os.Chmod(p, mode) // umask may have narrowed or widened nothing, but be exact
}

// Fingerprint names a public key: "SHA256:" and the unpadded base64 of the sha256 of its PKIX DER encoding.
func Fingerprint(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "invalid-key"
	}
	sum := sha256.Sum256(der)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// LoadPrivateKey reads a PEM PKCS#8 ed25519 private key. A key file readable by others is refused.
func LoadPrivateKey(p string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load signing key %s: mode %04o lets others read it; run: chmod 600 %s", p, st.Mode().Perm(), p)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("load signing key %s: not a PEM \"PRIVATE KEY\" (create one with: wtctl bundle keygen)", p)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", p, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load signing key %s: %T is not an ed25519 key", p, k)
	}
	return priv, nil
}

// ParsePublicKey decodes a PEM PKIX ed25519 public key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\"")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%T is not an ed25519 key", k)
	}
	return pub, nil
}

// LoadPublicKey reads one PEM public key file.
func LoadPublicKey(p string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	pub, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("load public key %s: %w", p, err)
	}
	return pub, nil
}

// LoadTrustDir reads every *.pem and *.pub key in dir. A missing dir yields no keys and no error.
func LoadTrustDir(dir string) ([]ed25519.PublicKey, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read trusted keys: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".pem") || strings.HasSuffix(e.Name(), ".pub")) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var keys []ed25519.PublicKey
	for _, n := range names {
		k, err := LoadPublicKey(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Sign makes the signature entry for manifest bytes. A nil key makes an explicit "unsigned" entry.
func Sign(manifest []byte, key ed25519.PrivateKey) ([]byte, error) {
	s := Signature{Algorithm: AlgNone, Unsigned: true, Description: "unsigned: readers refuse this archive unless --insecure-skip-verify is given"}
	if key != nil {
		pub := key.Public().(ed25519.PublicKey)
		s = Signature{
			Algorithm: AlgEd25519,
			KeyID:     Fingerprint(pub),
			Value:     base64.StdEncoding.EncodeToString(ed25519.Sign(key, manifest)),
		}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode signature: %w", err)
	}
	return append(b, '\n'), nil
}

var keyIDRE = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)

// ParseSignature decodes the signature entry.
func ParseSignature(data []byte) (*Signature, error) {
	var s Signature
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse signature: %w", err)
	}
	switch s.Algorithm {
	case AlgEd25519, AlgNone:
	default:
		return nil, fmt.Errorf("parse signature: unsupported algorithm %s (want %q)", quoteName(s.Algorithm), AlgEd25519)
	}
	// The key id is shown and stored (as the signer) even when the key is not trusted, so it must be what
	// Fingerprint makes.
	if s.KeyID != "" && !keyIDRE.MatchString(s.KeyID) {
		return nil, fmt.Errorf("parse signature: keyId %s is not a key fingerprint (SHA256: and 43 base64 characters)", quoteName(s.KeyID))
	}
	return &s, nil
}

// TrustError says why an archive's signature was not accepted. Callers map it to its own exit code.
type TrustError struct {
	Reason string
	KeyID  string // the signer's fingerprint, when known
}

func (e *TrustError) Error() string { return "signature not trusted: " + e.Reason }

// CheckSignature verifies the signature over manifest bytes with any of keys. It returns the signer's fingerprint.
// An unsigned archive or an unknown signer is a *TrustError, and a manifest altered after a trusted key signed it
// is an *IntegrityError, unless insecure is set, in which case the fingerprint is returned with ok=false so that
// callers can warn loudly.
func CheckSignature(manifest []byte, sig *Signature, keys []ed25519.PublicKey, insecure bool) (keyID string, ok bool, err error) {
	if sig.Algorithm == AlgNone {
		if insecure {
			return "", false, nil
		}
		return "", false, &TrustError{Reason: "the archive is unsigned; ask the release engineer for a signed build, or pass --insecure-skip-verify to accept it anyway"}
	}
	raw, err := base64.StdEncoding.DecodeString(sig.Value)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return sig.KeyID, false, &TrustError{KeyID: sig.KeyID, Reason: "the signature value is malformed"}
	}
	for _, k := range keys {
		if ed25519.Verify(k, manifest, raw) {
			return Fingerprint(k), true, nil
		}
	}
	if insecure {
		return sig.KeyID, false, nil
	}
	for _, k := range keys {
		if Fingerprint(k) == sig.KeyID {
			return sig.KeyID, false, &IntegrityError{Entry: ManifestName, What: "signature mismatch", Hint: fmt.Sprintf("the manifest no longer matches its signature by the trusted key %s: it was altered or damaged after signing; copy the bundle again from the source", sig.KeyID)}
		}
	}
	if len(keys) == 0 {
		return sig.KeyID, false, &TrustError{KeyID: sig.KeyID, Reason: fmt.Sprintf("signed by %s, but no trusted key is configured; pass --key PUB.pem or put the release public key in %s", sig.KeyID, DefaultTrustDir)}
	}
	fps := make([]string, len(keys))
	for i, k := range keys {
		fps[i] = Fingerprint(k)
	}
	return sig.KeyID, false, &TrustError{KeyID: sig.KeyID, Reason: fmt.Sprintf("signed by %s, which is not a trusted key (trusted: %s), or the manifest was edited after signing", sig.KeyID, strings.Join(fps, ", "))}
}
