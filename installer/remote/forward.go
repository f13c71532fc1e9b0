package remote

import (
	"context"
	"fmt"
	"net"
)

// DialContext opens a TCP connection to addr as the node sees it, forwarded through the SSH connection (a
// direct-tcpip channel, like `ssh -L`). The installer reaches the API server this way, so that it works wherever
// SSH does, through a bastion too, with no port opened towards the jump host. The connection does not count
// against Config.MaxSessions.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		conn, err := c.client(ctx)
		if err != nil {
			return nil, err
		}
		nc, err := conn.DialContext(ctx, network, addr)
		if err == nil {
			return nc, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A refused forward (nothing listens at addr) leaves the link healthy; a dead link is redialled once.
		if _, _, perr := conn.SendRequest("keepalive@openssh.com", true, nil); perr == nil || attempt >= 1 {
			return nil, &DialError{Host: c.cfg.Host, Address: addr, Err: fmt.Errorf("forwarded through the node's SSH connection: %w", err)}
		}
		c.drop(conn)
	}
}
