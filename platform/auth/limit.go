package auth

import (
	"sync"
	"time"
)

// Limiter slows down password guessing without letting a guesser lock anybody else out.
//
// Every login attempt takes one token, atomically and before the password is hashed, from two buckets: one for the
// pair (user name, client address) and one for the client address alone. A failed attempt keeps its tokens and
// counts towards backoff: once a bucket's burst is used up, it refills one token per Interval, and the interval
// doubles with each further failure up to MaxInterval. A successful attempt gives its tokens back and forgets the
// pair's failures. Failures from one address therefore never hold back the right password from another address.
//
// Buckets expire by time: one that has refilled completely is forgotten, and the map is swept at least once a
// minute. The number of buckets is capped (MaxKeys); when full, new keys are refused until old ones expire, so
// memory stays bounded however many names and addresses a client makes up. Keys should be short: callers check user
// names against their pattern before asking. Limiter is safe for concurrent use; its zero value is ready.
type Limiter struct {
	// Burst is how many failures one user may have from one address before backoff starts. Default 5.
	Burst int
	// AddrBurst is how many failures one address may have across all user names before backoff. Default 20.
	AddrBurst int
	// Interval is the first backoff step: one more attempt per Interval. Default 12 s.
	Interval time.Duration
	// MaxInterval caps the doubling backoff. Default 15 min.
	MaxInterval time.Duration
	// MaxKeys caps the buckets held in memory. Default 100000 (about 15 MB).
	MaxKeys int
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	burst  int
	tokens float64
	at     time.Time // when tokens was last brought up to date
	fails  int       // failures since the bucket was last full
}

// Reservation is one login attempt's claim on the limiter. Call exactly one of Succeeded, Failed or Cancel.
type Reservation struct {
	// Clean is set when the address had no failed login on record: its check may go ahead of suspects' (Gate).
	Clean bool

	l          *Limiter
	pair, addr string
}

type limits struct {
	burst, addrBurst int
	iv, maxIv        time.Duration
	maxKeys          int
	now              time.Time
}

func (l *Limiter) limits() limits {
	c := limits{l.Burst, l.AddrBurst, l.Interval, l.MaxInterval, l.MaxKeys, time.Now()}
	if c.burst <= 0 {
		c.burst = 5
	}
	if c.addrBurst <= 0 {
		c.addrBurst = 20
	}
	if c.iv <= 0 {
		c.iv = 12 * time.Second
	}
	if c.maxIv < c.iv {
		c.maxIv = max(15*time.Minute, c.iv)
	}
	if c.maxKeys <= 0 {
		c.maxKeys = 100000
	}
	if l.Now != nil {
		c.now = l.Now()
	}
	return c
}

// interval is b's refill interval: Interval, doubled for each failure beyond the burst, capped at MaxInterval.
func (c limits) interval(b *bucket) time.Duration {
	iv := c.iv
	for over := b.fails - b.burst; over > 0 && iv < c.maxIv; over-- {
		iv *= 2
	}
	return min(iv, c.maxIv)
}

// refill brings b up to date and reports whether it is full again (and may be forgotten). The caller holds l.mu.
func (c limits) refill(b *bucket) bool {
	if el := c.now.Sub(b.at); el > 0 {
		b.tokens += float64(el) / float64(c.interval(b))
		b.at = c.now
	}
	if b.tokens >= float64(b.burst) {
		b.tokens, b.fails = float64(b.burst), 0
		return true
	}
	return false
}

// sweep forgets every bucket that has refilled completely. The caller holds l.mu.
func (l *Limiter) sweep(c limits) {
	for k, b := range l.buckets {
		if c.refill(b) {
			delete(l.buckets, k)
		}
	}
	l.lastSweep = c.now
}

// Reserve takes one attempt for user from addr. When either bucket is empty nothing is taken and it reports how
// long to wait. The wait is rounded up to whole seconds, for a Retry-After header.
func (l *Limiter) Reserve(user, addr string) (*Reservation, time.Duration, bool) {
	c := l.limits()
	pair, a := "u\x00"+user+"\x00"+addr, "a\x00"+addr
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	if c.now.Sub(l.lastSweep) > time.Minute || len(l.buckets)+2 > c.maxKeys {
		l.sweep(c)
	}
	var wait time.Duration
	missing := 0
	for _, k := range []string{pair, a} {
		b, ok := l.buckets[k]
		if !ok {
			missing++
			continue
		}
		c.refill(b)
		if b.tokens < 1 {
			wait = max(wait, time.Duration((1-b.tokens)*float64(c.interval(b))))
		}
	}
	if wait == 0 && len(l.buckets)+missing > c.maxKeys {
		wait = c.iv // full of live buckets: refuse new keys rather than grow
	}
	if wait > 0 {
		return nil, (wait + time.Second - 1).Truncate(time.Second), false
	}
	res := &Reservation{l: l, pair: pair, addr: a, Clean: true}
	for k, burst := range map[string]int{pair: c.burst, a: c.addrBurst} {
		b, ok := l.buckets[k]
		if !ok {
			b = &bucket{burst: burst, tokens: float64(burst), at: c.now}
			l.buckets[k] = b
		}
		if k == a && b.fails > 0 {
			res.Clean = false
		}
		b.tokens--
	}
	return res, 0, true
}

// Succeeded gives the attempt's tokens back and forgets the user's failures from this address.
func (r *Reservation) Succeeded() {
	r.update(func(key string, b *bucket) {
		if key == r.pair {
			delete(r.l.buckets, key)
			return
		}
		b.tokens = min(b.tokens+1, float64(b.burst))
	})
}

// Cancel gives the attempt's tokens back without judging it: the password was never checked.
func (r *Reservation) Cancel() {
	r.update(func(_ string, b *bucket) { b.tokens = min(b.tokens+1, float64(b.burst)) })
}

// Failed keeps the attempt's tokens and counts a failure towards backoff.
func (r *Reservation) Failed() {
	r.update(func(_ string, b *bucket) { b.fails++ })
}

// update runs fn, under the lock, on each of the reservation's buckets that still exists, brought up to date first
// (at the interval it had until now).
func (r *Reservation) update(fn func(key string, b *bucket)) {
	c := r.l.limits()
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	for _, k := range []string{r.pair, r.addr} {
		if b, ok := r.l.buckets[k]; ok {
			c.refill(b)
			fn(k, b)
		}
	}
}

// Len is how many buckets are held, for tests and metrics.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
