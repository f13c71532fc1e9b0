package kubeadm

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	bootstrapsecretutil "k8s.io/cluster-bootstrap/util/secrets"
)

// certificateKeySize is the length in bytes of kubeadm's certificate key (an AES-256 key).
const certificateKeySize = 32

// CACertHash is the discovery hash of the first certificate in caPEM (the cluster CA, /etc/kubernetes/pki/ca.crt):
// "sha256:" and the lowercase hex SHA-256 of its DER SubjectPublicKeyInfo, exactly as kubeadm computes it.
func CACertHash(caPEM []byte) (string, error) {
	rest := caPEM
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "", errors.New("hash CA certificate: no PEM CERTIFICATE block found")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("parse CA certificate: %w", err)
		}
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		return "sha256:" + hex.EncodeToString(sum[:]), nil
	}
}

// NewCertificateKey is a new key to upload (init) and download (control-plane join) the control-plane
// certificates with: 32 random bytes, hex-encoded (64 characters), as kubeadm's.
func NewCertificateKey() (string, error) {
	b := make([]byte, certificateKeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate certificate key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// NewToken is a new random bootstrap token, "abcdef.0123456789abcdef".
func NewToken() (string, error) {
	t, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return "", fmt.Errorf("generate bootstrap token: %w", err)
	}
	return t, nil
}

// TokenSecret is the kube-system/bootstrap-token-<id> Secret that makes token usable for joins, exactly as kubeadm
// creates it: usable for authentication and signing, in the group system:bootstrappers:kubeadm:default-node-token,
// expiring ttl after now (never when ttl <= 0), with description when not empty.
func TokenSecret(token string, ttl time.Duration, now time.Time, description string) (*corev1.Secret, error) {
	if !bootstraputil.IsValidBootstrapToken(token) {
		return nil, errors.New("build bootstrap token secret: the token is not of the form [a-z0-9]{6}.[a-z0-9]{16}")
	}
	id, secret, _ := strings.Cut(token, ".")
	data := map[string][]byte{
		bootstrapapi.BootstrapTokenIDKey:               []byte(id),
		bootstrapapi.BootstrapTokenSecretKey:           []byte(secret),
		bootstrapapi.BootstrapTokenUsageAuthentication: []byte("true"),
		bootstrapapi.BootstrapTokenUsageSigningKey:     []byte("true"),
		bootstrapapi.BootstrapTokenExtraGroupsKey:      []byte(NodeBootstrapTokenAuthGroup),
	}
	if description != "" {
		data[bootstrapapi.BootstrapTokenDescriptionKey] = []byte(description)
	}
	if ttl > 0 {
		data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(now.Add(ttl).UTC().Format(time.RFC3339))
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      bootstraputil.BootstrapTokenSecretName(id),
			Namespace: metav1.NamespaceSystem,
		},
		Type: bootstrapapi.SecretTypeBootstrapToken,
		Data: data,
	}, nil
}

// TokenExpired says the bootstrap token Secret s is no longer usable at now: its expiration has passed or cannot be
// parsed (as the API server judges it). A nil Secret is expired; one without expiration never expires.
func TokenExpired(s *corev1.Secret, now time.Time) bool {
	if s == nil {
		return true
	}
	return bootstrapsecretutil.HasExpired(s, now)
}
