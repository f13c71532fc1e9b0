package auth

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
)

// ErrBusy says that a password check was refused because too many are running or waiting; retry in a second.
var ErrBusy = errors.New("too many password checks at once")

// Gate bounds concurrent password checks. Each argon2id check holds the hash's memory (64 MiB by default) and
// both cores of a small server, so without a bound a burst of logins exhausts the server. At most Slots checks run
// at once, and at most PerAddr of them, running or waiting, come from one client address, so one address cannot
// fill the queue. Up to Queue more wait, each for at most MaxWait; anything beyond is refused at once with ErrBusy.
//
// Waiters come in three lanes, each with its own Queue places, served in order: addresses that logged in
// successfully lately (LaneKnown), addresses with no failed login on record (LaneClean), and the rest
// (LaneSuspect). Guesses, which fail, soon wait behind everybody else, so that they cannot keep users out: a
// sprayer's every address gets one clean try, then queues behind a new user's first. The zero value is ready.
type Gate struct {
	// Slots is how many checks may run at once. Default half the CPUs, at least 1 and at most 2 (a check uses two
	// threads; 64 MiB each with the default hasher).
	Slots int
	// PerAddr is how many checks one address may have running or waiting. Default 1.
	PerAddr int
	// Queue is how many checks may wait for a slot, per lane. Default 16.
	Queue int
	// MaxWait is the longest a check waits for a slot. Default 3 s.
	MaxWait time.Duration

	once    sync.Once
	mu      sync.Mutex
	running int
	perAddr map[string]int
	lanes   [laneCount][]*waiter
}

// Lane is a Gate queue; lower lanes are served first.
type Lane int

// The lanes, first served first.
const (
	LaneKnown   Lane = iota // the address logged in successfully lately
	LaneClean               // the address has no failed login on record
	LaneSuspect             // the address has failed lately
	laneCount
)

type waiter struct {
	ready chan struct{} // closed when the waiter is given a slot
}

func (g *Gate) init() {
	g.once.Do(func() {
		if g.Slots <= 0 {
			g.Slots = min(max(runtime.GOMAXPROCS(0)/2, 1), 2)
		}
		if g.PerAddr <= 0 {
			g.PerAddr = 1
		}
		if g.Queue <= 0 {
			g.Queue = 16
		}
		if g.MaxWait <= 0 {
			g.MaxWait = 3 * time.Second
		}
		g.perAddr = map[string]int{}
	})
}

// Enter waits for a slot for a check from addr, in lane. It returns ErrBusy when addr has too many checks already,
// when its lane is full, or when no slot frees up within MaxWait; ctx's error when ctx ends first. Call release once
// the check is done.
func (g *Gate) Enter(ctx context.Context, addr string, lane Lane) (release func(), err error) {
	g.init()
	g.mu.Lock()
	if g.perAddr[addr] >= g.PerAddr {
		g.mu.Unlock()
		return nil, ErrBusy
	}
	if g.running < g.Slots {
		g.running++
		g.perAddr[addr]++
		g.mu.Unlock()
		return g.releaser(addr), nil
	}
	lane = min(max(lane, LaneKnown), LaneSuspect)
	if len(g.lanes[lane]) >= g.Queue {
		g.mu.Unlock()
		return nil, ErrBusy
	}
	w := &waiter{ready: make(chan struct{})}
	g.lanes[lane] = append(g.lanes[lane], w)
	g.perAddr[addr]++
	g.mu.Unlock()

	t := time.NewTimer(g.MaxWait)
	defer t.Stop()
	select {
	case <-w.ready:
		return g.releaser(addr), nil
	case <-t.C:
		err = ErrBusy
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.lanes[lane] {
		if x == w {
			g.lanes[lane] = append(g.lanes[lane][:i], g.lanes[lane][i+1:]...)
			g.leave(addr)
			return nil, err
		}
	}
	// Given a slot just as the wait ended: take it.
	return g.releaser(addr), nil
}

func (g *Gate) releaser(addr string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.leave(addr)
			for lane := range g.lanes {
				if len(g.lanes[lane]) > 0 {
					w := g.lanes[lane][0]
					g.lanes[lane] = g.lanes[lane][1:]
					close(w.ready) // the slot passes on; running stays
					return
				}
			}
			g.running--
		})
	}
}

// leave drops one of addr's checks; the caller holds g.mu.
func (g *Gate) leave(addr string) {
	if g.perAddr[addr]--; g.perAddr[addr] <= 0 {
		delete(g.perAddr, addr)
	}
}
