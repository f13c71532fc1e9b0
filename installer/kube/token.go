package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/wutong-paas/wutong-offline/installer/kubeadm"
)

// TokenTTL is how long a join token the installer makes stays valid.
const TokenTTL = 4 * time.Hour

// tokenMinLife is the validity a token must still have to be reused: enough for a slow join under emulation.
const tokenMinLife = time.Hour

// JoinToken returns a bootstrap token for joining nodes: old (id.secret, from an earlier run) when its Secret still
// exists and is valid for at least another hour, otherwise a new one created now. renewed says a new one was made.
func (c *Client) JoinToken(ctx context.Context, old string, now time.Time) (token string, renewed bool, err error) {
	if id, _, ok := strings.Cut(old, "."); ok && old != "" {
		s, err := c.Kubernetes.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, bootstrapapi.BootstrapTokenSecretPrefix+id, metav1.GetOptions{})
		switch {
		case err == nil:
			if !kubeadm.TokenExpired(s, now.Add(tokenMinLife)) && string(s.Data[bootstrapapi.BootstrapTokenSecretKey]) == strings.SplitN(old, ".", 2)[1] {
				return old, false, nil
			}
		case !apierrors.IsNotFound(err):
			return "", false, fmt.Errorf("read join token: %w", err)
		}
	}
	token, err = kubeadm.NewToken()
	if err != nil {
		return "", false, err
	}
	s, err := kubeadm.TokenSecret(token, TokenTTL, now, "made by wtctl to join nodes")
	if err != nil {
		return "", false, err
	}
	if _, err := c.Kubernetes.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return "", false, fmt.Errorf("create join token: %w", err)
	}
	return token, true, nil
}
