package auth

import (
	"sync"
	"time"
)

// Limiter slows down password guessing: each key (a user name, and separately a client address) may fail Burst
// logins, then one more per Interval. Successful logins do not count. It is safe for concurrent use.
type Limiter struct {
	// Burst is how many failures are allowed at once. Default 5.
	Burst int
	// Interval is how often one more failure is allowed after that. Default 12 s (5 a minute).
	Interval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func (l *Limiter) defaults() (int, time.Duration, time.Time) {
	burst, iv, now := l.Burst, l.Interval, time.Now()
	if burst <= 0 {
		burst = 5
	}
	if iv <= 0 {
		iv = 12 * time.Second
	}
	if l.Now != nil {
		now = l.Now()
	}
	return burst, iv, now
}

// refill brings b up to date; the caller holds l.mu.
func refill(b *bucket, burst int, iv time.Duration, now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens += float64(el) / float64(iv)
		if b.tokens > float64(burst) {
			b.tokens = float64(burst)
		}
		b.at = now
	}
}

// Allow reports whether a login for all keys may be tried now, and if not, how long to wait.
func (l *Limiter) Allow(keys ...string) (bool, time.Duration) {
	burst, iv, now := l.defaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		b, ok := l.buckets[k]
		if !ok {
			continue
		}
		refill(b, burst, iv, now)
		if b.tokens < 1 {
			if w := time.Duration((1 - b.tokens) * float64(iv)); w > wait {
				wait = w
			}
		}
	}
	return wait == 0, (wait + time.Second - 1).Truncate(time.Second)
}

// Fail records a failed login for every key.
func (l *Limiter) Fail(keys ...string) {
	burst, iv, now := l.defaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	for _, k := range keys {
		b, ok := l.buckets[k]
		if !ok {
			b = &bucket{tokens: float64(burst), at: now}
			l.buckets[k] = b
		}
		refill(b, burst, iv, now)
		b.tokens--
	}
	// Forget keys that have fully recovered, so the map stays small.
	if len(l.buckets) > 10000 {
		for k, b := range l.buckets {
			refill(b, burst, iv, now)
			if b.tokens >= float64(burst) {
				delete(l.buckets, k)
			}
		}
	}
}
