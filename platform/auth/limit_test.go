package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fail makes n failed attempts and reports how many the limiter let through.
func fail(l *Limiter, user, addr string, n int) int {
	ok := 0
	for range n {
		if r, _, allowed := l.Reserve(user, addr); allowed {
			ok++
			r.Failed()
		}
	}
	return ok
}

func TestLimiterScopesByUserAndAddress(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Burst: 3, AddrBurst: 5, Interval: 10 * time.Second, Now: func() time.Time { return now }}
	if got := fail(l, "alice", "10.0.0.66", 10); got != 3 {
		t.Fatalf("an attacker got %d tries at alice, want the burst of 3", got)
	}
	_, wait, ok := l.Reserve("alice", "10.0.0.66")
	if ok || wait != 10*time.Second {
		t.Fatalf("after the burst: ok=%v wait=%v, want refused for 10s", ok, wait)
	}
	// The attack does not keep alice out from her own address (finding: lock-out of any user).
	r, _, ok := l.Reserve("alice", "10.0.0.1")
	if !ok {
		t.Fatal("alice from a clean address was refused because of failures elsewhere")
	}
	r.Succeeded()
	if r, _, _ := l.Reserve("dave", "10.0.0.3"); !r.Clean {
		t.Fatal("a new address is not clean")
	} else {
		r.Cancel()
	}
	if r, _, _ := l.Reserve("carol", "10.0.0.66"); r == nil || r.Clean {
		t.Fatal("the guessing address counts as clean")
	} else {
		r.Cancel()
	}
	// The attacking address may try other names, up to its own burst, then it is held back for every name.
	if got := fail(l, "bob", "10.0.0.66", 10); got != 2 {
		t.Fatalf("the attacking address got %d tries at bob, want the 2 left of its address burst of 5", got)
	}
	if _, _, ok := l.Reserve("carol", "10.0.0.66"); ok {
		t.Fatal("the attacking address was allowed a new name after its address burst")
	}
	if _, _, ok := l.Reserve("carol", "10.0.0.2"); !ok {
		t.Fatal("another address was limited")
	}
}

func TestLimiterBacksOff(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Burst: 2, AddrBurst: 100, Interval: 10 * time.Second, MaxInterval: 40 * time.Second, Now: func() time.Time { return now }}
	fail(l, "alice", "a", 2)
	var waits []time.Duration
	for range 5 {
		_, wait, ok := l.Reserve("alice", "a")
		if ok {
			t.Fatal("allowed with an empty bucket")
		}
		waits = append(waits, wait)
		now = now.Add(wait)
		r, _, ok := l.Reserve("alice", "a")
		if !ok {
			t.Fatalf("refused after waiting %v", wait)
		}
		r.Failed()
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second, 40 * time.Second}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Fatalf("waits = %v, want doubling up to the cap: %v", waits, want)
	}
	// A success from the address forgets the pair's failures.
	now = now.Add(40 * time.Second)
	r, _, ok := l.Reserve("alice", "a")
	if !ok {
		t.Fatal("refused after the wait")
	}
	r.Succeeded()
	if got := fail(l, "alice", "a", 5); got != 2 {
		t.Fatalf("after a success %d tries, want the full burst of 2", got)
	}
}

// TestLimiterTakesAtomically: concurrent attempts cannot all pass the check before any failure is recorded.
func TestLimiterTakesAtomically(t *testing.T) {
	l := &Limiter{Burst: 5}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	var mu sync.Mutex
	var held []*Reservation
	for range 50 {
		wg.Go(func() {
			<-start
			if r, _, ok := l.Reserve("admin", "10.0.0.9"); ok {
				allowed.Add(1)
				mu.Lock()
				held = append(held, r)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Fatalf("%d of 50 concurrent attempts were let through, want the burst of 5", n)
	}
	for _, r := range held {
		r.Failed()
	}
	// Succeeded gives the token back: a right password does not use up the burst.
	l2 := &Limiter{Burst: 2}
	for range 10 {
		r, _, ok := l2.Reserve("bob", "10.0.0.1")
		if !ok {
			t.Fatal("successful logins used up the burst")
		}
		r.Succeeded()
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Burst: 1, AddrBurst: 1000, Interval: time.Second, MaxKeys: 101, Now: func() time.Time { return now }}
	for i := range 200 {
		if r, _, ok := l.Reserve(fmt.Sprintf("user%d", i), "10.0.0.1"); ok {
			r.Failed()
		}
	}
	if n := l.Len(); n > 101 {
		t.Fatalf("%d buckets held, cap 101", n)
	}
	if _, _, ok := l.Reserve("fresh", "10.0.0.2"); ok {
		t.Fatal("a new key was admitted while the table was full of live buckets")
	}
	// Buckets expire by time: once refilled they are swept, and new keys fit again.
	now = now.Add(2 * time.Minute)
	r, _, ok := l.Reserve("fresh", "10.0.0.2")
	if !ok {
		t.Fatal("refused after every bucket expired")
	}
	r.Failed()
	if n := l.Len(); n != 2 {
		t.Fatalf("%d buckets after expiry, want 2 (fresh's pair and its address)", n)
	}
}

func TestGate(t *testing.T) {
	ctx := context.Background()
	g := &Gate{Slots: 1, PerAddr: 1, Queue: 1, MaxWait: 200 * time.Millisecond}
	rel, err := g.Enter(ctx, "a", LaneClean)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Enter(ctx, "a", LaneClean); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second check from one address: %v, want ErrBusy at once", err)
	}
	// b waits in the queue; c finds the queue full.
	got := make(chan error, 1)
	go func() {
		r, err := g.Enter(ctx, "b", LaneClean)
		if err == nil {
			r()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := g.Enter(ctx, "c", LaneClean); !errors.Is(err, ErrBusy) {
		t.Fatalf("queue full: %v, want ErrBusy", err)
	}
	rel()
	rel() // twice is harmless
	if err := <-got; err != nil {
		t.Fatalf("the waiting check: %v", err)
	}
	// A wait longer than MaxWait is refused; a cancelled context ends the wait.
	rel, _ = g.Enter(ctx, "a", LaneClean)
	start := time.Now()
	if _, err := g.Enter(ctx, "b", LaneClean); !errors.Is(err, ErrBusy) || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("after MaxWait: %v after %v", err, time.Since(start))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.Enter(cctx, "b", LaneClean); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	rel()
	if r, err := g.Enter(ctx, "b", LaneClean); err != nil {
		t.Fatalf("a free gate refused: %v", err)
	} else {
		r()
	}
}

// Known addresses are served first, then clean ones, then suspects; each lane has its own places.
func TestGatePriority(t *testing.T) {
	ctx := context.Background()
	g := &Gate{Slots: 1, Queue: 1, MaxWait: 5 * time.Second}
	rel, _ := g.Enter(ctx, "holder", LaneClean)
	order := make(chan string, 3)
	enter := func(addr string, lane Lane) {
		r, err := g.Enter(ctx, addr, lane)
		if err != nil {
			order <- "error " + err.Error()
			return
		}
		order <- addr
		time.Sleep(20 * time.Millisecond)
		r()
	}
	go enter("stranger", LaneSuspect)
	time.Sleep(50 * time.Millisecond)
	if _, err := g.Enter(ctx, "stranger2", LaneSuspect); !errors.Is(err, ErrBusy) {
		t.Fatalf("the suspect lane is full: %v", err)
	}
	go enter("clean", LaneClean)
	time.Sleep(50 * time.Millisecond)
	go enter("known", LaneKnown) // the suspect lane is full, the others are not
	time.Sleep(50 * time.Millisecond)
	rel()
	if a, b, c := <-order, <-order, <-order; a != "known" || b != "clean" || c != "stranger" {
		t.Fatalf("served %s, %s, %s; want the known address, then the clean one, then the suspect", a, b, c)
	}
}

func TestDummyHash(t *testing.T) {
	d := fast.DummyHash()
	if d != fast.DummyHash() {
		t.Fatal("DummyHash is not cached")
	}
	if err := Check(d, "correct horse"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Check(dummy) = %v, want ErrMismatch", err)
	}
	if d == DefaultHasher.DummyHash() || d[:len("$argon2id$v=19$m=1024,t=1,p=1$")] != "$argon2id$v=19$m=1024,t=1,p=1$" {
		t.Fatalf("dummy %q does not carry the hasher's parameters", d)
	}
	if _, err := fast.Hash(string(make([]byte, MaxPasswordLength+1))); err == nil {
		t.Fatal("a password over MaxPasswordLength was hashed")
	}
}

func TestKnownAddrs(t *testing.T) {
	now := time.Unix(1000, 0)
	k := &KnownAddrs{Max: 2, TTL: time.Hour, Now: func() time.Time { return now }}
	if k.Has("a") {
		t.Fatal("empty set knows a")
	}
	k.Add("a")
	now = now.Add(time.Minute)
	k.Add("b")
	now = now.Add(time.Minute)
	k.Add("c") // full: the oldest, a, goes
	if k.Has("a") || !k.Has("b") || !k.Has("c") {
		t.Fatalf("after overflow: a=%v b=%v c=%v", k.Has("a"), k.Has("b"), k.Has("c"))
	}
	now = now.Add(2 * time.Hour)
	if k.Has("b") {
		t.Fatal("an address is known past the TTL")
	}
}
