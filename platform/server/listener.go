package server

import (
	"net"
	"sync"
)

// limitListener caps open connections: at most total at once (Accept waits for one to close, so the excess waits
// in the kernel's backlog instead of using file descriptors), and at most perAddr from one client address (the
// excess is closed at once), so that one client cannot take every connection and /healthz still answers.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	perAddr int
	closed  chan struct{}
	once    sync.Once

	mu    sync.Mutex
	addrs map[string]int
}

func newLimitListener(ln net.Listener, total, perAddr int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, total), perAddr: perAddr,
		closed: make(chan struct{}), addrs: map[string]int{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.closed:
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		addr := hostOf(c.RemoteAddr().String())
		l.mu.Lock()
		if l.addrs[addr] >= l.perAddr {
			l.mu.Unlock()
			c.Close()
			<-l.slots
			continue
		}
		l.addrs[addr]++
		l.mu.Unlock()
		return &limitConn{Conn: c, l: l, addr: addr}, nil
	}
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func (l *limitListener) release(addr string) {
	l.mu.Lock()
	if l.addrs[addr]--; l.addrs[addr] <= 0 {
		delete(l.addrs, addr)
	}
	l.mu.Unlock()
	<-l.slots
}

// limitConn gives its slot back when closed (once, however often Close is called).
type limitConn struct {
	net.Conn
	l    *limitListener
	addr string
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}

// hostOf is the host part of a HOST:PORT address (the whole string when it has no port).
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
