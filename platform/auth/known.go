package auth

import (
	"sync"
	"time"
)

// KnownAddrs remembers the client addresses that logged in successfully lately, so that their password checks can
// wait in the Gate's priority lane: guesses from elsewhere then cannot keep the usual users out. It holds at most
// Max addresses for at most TTL each; when full, the oldest goes. Safe for concurrent use; the zero value is ready.
type KnownAddrs struct {
	// Max is how many addresses are kept. Default 4096.
	Max int
	// TTL is how long a success is remembered. Default 7 days.
	TTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu    sync.Mutex
	addrs map[string]time.Time
}

func (k *KnownAddrs) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

func (k *KnownAddrs) ttl() time.Duration {
	if k.TTL <= 0 {
		return 7 * 24 * time.Hour
	}
	return k.TTL
}

// Add records a successful login from addr.
func (k *KnownAddrs) Add(addr string) {
	now, limit := k.now(), k.Max
	if limit <= 0 {
		limit = 4096
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.addrs == nil {
		k.addrs = map[string]time.Time{}
	}
	if _, ok := k.addrs[addr]; !ok && len(k.addrs) >= limit {
		oldest, at := "", now
		for a, t := range k.addrs {
			if now.Sub(t) > k.ttl() {
				delete(k.addrs, a)
			} else if t.Before(at) {
				oldest, at = a, t
			}
		}
		if len(k.addrs) >= limit {
			delete(k.addrs, oldest)
		}
	}
	k.addrs[addr] = now
}

// Has reports whether addr logged in successfully within TTL.
func (k *KnownAddrs) Has(addr string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	t, ok := k.addrs[addr]
	return ok && k.now().Sub(t) <= k.ttl()
}
