// Package kube is the installer's side of the cluster's API server, through client-go: a client that reaches the
// API server through a node's SSH connection, server-side apply of manifests, node readiness, bootstrap tokens for
// joining nodes, and draining a node before it is removed.
package kube

import (
	"context"
	"fmt"
	"net"
	"time"

	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the server-side apply field manager of everything the installer applies.
const FieldManager = "wutong-installer"

// Dialer opens a TCP connection to an address as a node sees it (remote.Client.DialContext).
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Client talks to one cluster.
type Client struct {
	// Kubernetes is the typed clientset.
	Kubernetes kubernetes.Interface
	rest       *rest.Config
	dyn        dynamic.Interface
	mapper     *restmapper.DeferredDiscoveryRESTMapper
}

// New makes a client from an admin kubeconfig. dial, when not nil, carries every connection (an SSH forward
// through a control plane), so the API server need not be reachable from here.
func New(kubeconfig []byte, dial Dialer) (*Client, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	if dial != nil {
		cfg.Dial = dial
	}
	cfg.Timeout = 30 * time.Second
	cfg.UserAgent = "wtctl"
	// The installer's calls are few; the default 5 QPS would only slow the manifests' apply.
	cfg.QPS, cfg.Burst = 50, 100
	return NewForConfig(cfg)
}

// NewForConfig makes a client from a rest.Config.
func NewForConfig(cfg *rest.Config) (*Client, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("make clientset: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("make dynamic client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	return &Client{Kubernetes: cs, rest: cfg, dyn: dyn, mapper: mapper}, nil
}

// Ready checks that the API server answers /readyz.
func (c *Client) Ready(ctx context.Context) error {
	body, err := c.Kubernetes.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("api server /readyz: %w", err)
	}
	if string(body) != "ok" {
		return fmt.Errorf("api server /readyz: %s", body)
	}
	return nil
}

// ServerVersion is the API server's version, e.g. v1.37.2.
func (c *Client) ServerVersion() (string, error) {
	v, err := c.Kubernetes.Discovery().ServerVersion()
	if err != nil {
		return "", fmt.Errorf("read server version: %w", err)
	}
	return v.GitVersion, nil
}

// poll calls f every interval until it returns done, an error, or ctx ends; the last "not yet" reason is kept for
// the timeout message.
func poll(ctx context.Context, interval time.Duration, f func(ctx context.Context) (done bool, notYet error)) error {
	var last error
	for {
		done, err := f(ctx)
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
