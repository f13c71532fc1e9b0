package pipeline

import (
	"context"
	"net"
	"sync"

	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// lazyClient dials on first use, so that an unreachable host fails in the connect phase like any other step, and
// redials on the next use after a failed dial.
type lazyClient struct {
	host string
	cfg  remote.Config

	mu sync.Mutex
	c  *remote.Client
}

func (l *lazyClient) client(ctx context.Context) (*remote.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil {
		return l.c, nil
	}
	c, err := remote.Dial(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	l.c = c
	return c, nil
}

func (l *lazyClient) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil {
		l.c.Close()
		l.c = nil
	}
}

func (l *lazyClient) Host() string { return l.host }

func (l *lazyClient) Run(ctx context.Context, cmd remote.Cmd) (remote.Result, error) {
	c, err := l.client(ctx)
	if err != nil {
		return remote.Result{}, err
	}
	return c.Run(ctx, cmd)
}

func (l *lazyClient) Upload(ctx context.Context, src, dst string, o remote.UploadOptions) (remote.UploadResult, error) {
	c, err := l.client(ctx)
	if err != nil {
		return remote.UploadResult{}, err
	}
	return c.Upload(ctx, src, dst, o)
}

// DialContext opens a connection to addr as the host sees it, through its SSH connection.
func (l *lazyClient) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := l.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.DialContext(ctx, network, addr)
}
