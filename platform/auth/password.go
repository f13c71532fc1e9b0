// Package auth decides who a request is and what they may do on the platform: argon2id password hashes, random
// tokens stored only as their sha256, the roles and the actions each allows, and the login rate limit.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/wutong-paas/wutong-offline/internal/password"
)

// Hasher hashes passwords with argon2id. The zero value uses DefaultHasher's parameters. The parameters are stored in
// each hash, so changing them later does not break existing passwords.
type Hasher struct {
	Time      uint32 // iterations; default 2
	MemoryKiB uint32 // default 64 MiB
	Threads   uint8  // default 2
}

// DefaultHasher follows RFC 9106's memory-constrained recommendation, tuned to ~100 ms on a small server.
var DefaultHasher = Hasher{Time: 2, MemoryKiB: 64 * 1024, Threads: 2}

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 8

// ErrMismatch is a wrong password.
var ErrMismatch = errors.New("wrong password")

func (h Hasher) params() Hasher {
	d := DefaultHasher
	if h.Time > 0 {
		d.Time = h.Time
	}
	if h.MemoryKiB > 0 {
		d.MemoryKiB = h.MemoryKiB
	}
	if h.Threads > 0 {
		d.Threads = h.Threads
	}
	return d
}

// Hash returns a PHC-format argon2id hash of password: $argon2id$v=19$m=…,t=…,p=…$salt$key.
func (h Hasher) Hash(password string) (string, error) {
	if err := CheckPasswordPolicy(password); err != nil {
		return "", err
	}
	p := h.params()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("make salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Check compares password with a hash made by Hash, in constant time. A wrong password is ErrMismatch; a hash that
// cannot be parsed is another error.
func Check(hash, password string) error {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("check password: not an argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return fmt.Errorf("check password: unsupported argon2 version %q", parts[2])
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 {
		return fmt.Errorf("check password: bad argon2 parameters %q", parts[3])
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return fmt.Errorf("check password: bad salt: %w", err)
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return errors.New("check password: bad key")
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// dummies caches DummyHash per parameter set.
var dummies sync.Map // Hasher (with defaults applied) → string

// DummyHash is a hash, with h's parameters, of a random password nobody knows. Checking a password against it
// costs as much as checking a real user's and always fails with ErrMismatch, so that an unknown user name takes as
// long to refuse as a wrong password and names cannot be probed by timing.
func (h Hasher) DummyHash() string {
	p := h.params()
	if v, ok := dummies.Load(p); ok {
		return v.(string)
	}
	d, err := p.Hash(rand.Text())
	if err != nil {
		panic("auth: hash a random password: " + err.Error()) // rand.Text is 26 characters: the policy passes
	}
	v, _ := dummies.LoadOrStore(p, d)
	return v.(string)
}

// MaxPasswordLength is the longest password accepted, so that a request cannot make hashing read megabytes.
const MaxPasswordLength = 1024

// CheckPasswordPolicy refuses passwords too short to be safe, and absurdly long ones.
func CheckPasswordPolicy(password string) error {
	if len(password) < MinPasswordLength {
		return fmt.Errorf("password too short: at least %d characters are needed", MinPasswordLength)
	}
	if len(password) > MaxPasswordLength {
		return fmt.Errorf("password too long: at most %d bytes", MaxPasswordLength)
	}
	return nil
}

// GeneratePassword returns a random password of 20 characters without look-alikes (about 115 bits).
func GeneratePassword() string { return password.Generate() }

// TokenPrefix starts every token, so a leaked one is easy to recognise and scan for.
const TokenPrefix = "wtp_"

// NewToken returns a new random token and the hash to store.
func NewToken() (secret, hash string) {
	secret = TokenPrefix + rand.Text()
	return secret, HashToken(secret)
}

// HashToken is the stored form of a token: hex sha256. Tokens are random, so a plain hash suffices.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
