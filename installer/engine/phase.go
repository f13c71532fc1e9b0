package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
)

// Phase is one entry of the pipeline: a title and the work. The pipeline is a literal []Phase run top to bottom.
type Phase interface {
	Title() string
	Run(ctx context.Context, env *Env) error
}

// Preparer is a phase with a Prepare hook. Every Prepare runs, in pipeline order, before the first phase runs, so
// that bad input stops the install before any node is changed. Prepare may query nodes but must not change them.
type Preparer interface {
	Prepare(ctx context.Context, env *Env) error
}

// Conditional is a phase that decides when its turn comes whether it runs; reason is recorded when it does not.
type Conditional interface {
	ShouldRun(ctx context.Context, env *Env) (run bool, reason string)
}

// DryRunner is a phase that, in a dry run, runs DryRun instead of Run. A phase that only calls the gate needs no
// DryRun (the gate records instead of changing); one whose later commands need the output of earlier changes
// implements it to describe its plan.
type DryRunner interface {
	DryRun(ctx context.Context, env *Env) error
}

// HostPhase runs Do on every healthy host that Match accepts, in parallel under Options.Parallel.
type HostPhase struct {
	Name  string
	Match func(cluster.Host) bool // nil: every host
	Do    func(ctx context.Context, n *Node) error
}

// Title is the phase's name.
func (p *HostPhase) Title() string { return p.Name }

// Run runs Do on the hosts. A host's error fails that host only.
func (p *HostPhase) Run(ctx context.Context, env *Env) error { return env.EachHost(ctx, p.Match, p.Do) }

// ForEachHost makes a phase that runs fn on every healthy host.
func ForEachHost(title string, fn func(ctx context.Context, n *Node) error) *HostPhase {
	return &HostPhase{Name: title, Do: fn}
}

// OnHosts makes a phase that runs fn on the healthy hosts that match accepts.
func OnHosts(title string, match func(cluster.Host) bool, fn func(ctx context.Context, n *Node) error) *HostPhase {
	return &HostPhase{Name: title, Match: match, Do: fn}
}

// WithRole matches hosts that have role r, for OnHosts.
func WithRole(r cluster.Role) func(cluster.Host) bool {
	return func(h cluster.Host) bool { return h.HasRole(r) }
}

// Env is what a phase sees of the run.
type Env struct {
	r     *run
	phase string
}

// Phase is the running phase's title.
func (env *Env) Phase() string { return env.phase }

// DryRun reports whether changes are recorded instead of made.
func (env *Env) DryRun() bool { return env.r.opts.DryRun }

// Workdir is the cluster workdir ("" when none).
func (env *Env) Workdir() string { return env.r.opts.Workdir }

// Lang is the language for hints.
func (env *Env) Lang() i18n.Lang { return env.r.opts.Lang }

// Nodes returns the hosts that have not failed, in cluster.yaml order.
func (env *Env) Nodes() []*Node { return env.r.healthy() }

// Node returns the host called name, failed or not; nil when there is none.
func (env *Env) Node(name string) *Node { return env.r.byName[name] }

// Fail marks n failed in this phase with err; later phases leave it out.
func (env *Env) Fail(n *Node, err error) {
	env.fail(n, err, errors.Is(err, context.Canceled))
}

// EachHost runs fn on each healthy host that match accepts (nil: all), in parallel under Options.Parallel, and
// waits. A host whose fn fails is marked failed. Once ctx is cancelled no further host starts; EachHost then
// returns ctx's error.
func (env *Env) EachHost(ctx context.Context, match func(cluster.Host) bool, fn func(ctx context.Context, n *Node) error) error {
	var todo []*Node
	for _, n := range env.r.nodes {
		if match != nil && !match(n.host) {
			continue
		}
		if !n.healthy() {
			env.r.count(func(p *PhaseSummary) { p.Skipped++ })
			continue
		}
		todo = append(todo, n)
	}
	sem := make(chan struct{}, env.r.opts.Parallel)
	var wg sync.WaitGroup
	for _, n := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			env.runHost(ctx, n, fn)
		})
	}
	wg.Wait()
	return ctx.Err()
}

func (env *Env) runHost(ctx context.Context, n *Node, fn func(ctx context.Context, n *Node) error) {
	r := env.r
	r.record(Record{Kind: KindHostStarted, Phase: env.phase, Host: n.Name()})
	r.emit(HostStarted{Phase: env.phase, Host: n.Name()})
	before := n.changeCount()
	n.setPhase(env.phase)
	err := call(ctx, n, fn)
	if err != nil {
		env.fail(n, err, ctx.Err() != nil)
		return
	}
	changes := n.changeCount() - before
	r.count(func(p *PhaseSummary) { p.Done++ })
	n.logf("phase %q done, %d change(s)", env.phase, changes)
	r.record(Record{Kind: KindHostDone, Phase: env.phase, Host: n.Name(), Changes: changes})
	r.emit(HostDone{Phase: env.phase, Host: n.Name(), Changes: changes})
}

// call runs fn, turning a panic into an error so that one host's bug does not take the run down.
func call(ctx context.Context, n *Node, fn func(ctx context.Context, n *Node) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(ctx, n)
}

func (env *Env) fail(n *Node, err error, interrupted bool) {
	r := env.r
	hint := hintFor(err, r.opts.Lang, n.log.path())
	if interrupted {
		hint = hintFor(context.Canceled, r.opts.Lang, "")
	}
	if !n.markFailed(env.phase, err, hint, interrupted) {
		return
	}
	r.count(func(p *PhaseSummary) { p.Failed++ })
	n.logf("phase %q failed: %v", env.phase, err)
	kind := KindHostFailed
	if interrupted {
		kind = KindInterrupted
	}
	r.record(Record{Kind: kind, Phase: env.phase, Host: n.Name(), Error: err.Error(), Hint: hint})
	r.emit(HostFailed{Phase: env.phase, Host: n.Name(), Err: err, Hint: hint, Interrupted: interrupted})
}
