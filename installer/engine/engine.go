package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
)

// Target is a host and the link to it.
type Target struct {
	Host   cluster.Host
	Runner remote.Runner
	// Uploader defaults to Runner when it also implements remote.Uploader (as *remote.Client does).
	Uploader remote.Uploader
}

// Options tune a run.
type Options struct {
	// Workdir is the cluster workdir, holding journal.jsonl and logs/. "" keeps neither.
	Workdir string
	// DryRun makes the gate record changes in the plan instead of making them. A dry run writes no journal.
	DryRun bool
	// Parallel caps the hosts worked on at once. Default 10.
	Parallel int
	// Lang is the language of hints. Default en.
	Lang i18n.Lang
	// Events receives the run's events, one call at a time. Optional.
	Events func(Event)
	// RunID names the run in the journal. Default: the start time and a random suffix.
	RunID string
	// Now is the clock for the journal and logs. Default time.Now.
	Now func() time.Time
}

// Engine runs pipelines on a fixed set of hosts, one Run at a time (runs share the workdir's journal and logs).
type Engine struct {
	targets []Target
	opts    Options
}

// New checks the targets and fills in default options.
func New(targets []Target, o Options) (*Engine, error) {
	seen := map[string]bool{}
	ts := make([]Target, len(targets))
	for i, t := range targets {
		if t.Host.Name == "" || strings.ContainsAny(t.Host.Name, `/\ `) {
			return nil, fmt.Errorf("new engine: bad host name %q", t.Host.Name)
		}
		if seen[t.Host.Name] {
			return nil, fmt.Errorf("new engine: host %q listed twice", t.Host.Name)
		}
		seen[t.Host.Name] = true
		if t.Runner == nil {
			return nil, fmt.Errorf("new engine: host %q has no runner", t.Host.Name)
		}
		if t.Uploader == nil {
			t.Uploader, _ = t.Runner.(remote.Uploader)
		}
		ts[i] = t
	}
	if o.Parallel <= 0 {
		o.Parallel = 10
	}
	if o.Lang == "" {
		o.Lang = i18n.EN
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Engine{targets: ts, opts: o}, nil
}

// HostStatus is where a host ended up after a run.
type HostStatus string

// Host statuses.
const (
	StatusDone        HostStatus = "done"        // went through the whole pipeline
	StatusFailed      HostStatus = "failed"      // failed in Phase
	StatusInterrupted HostStatus = "interrupted" // was working in Phase when the run was cancelled
	StatusStopped     HostStatus = "stopped"     // healthy, but the run ended before the end of the pipeline
)

// HostSummary is one host's outcome.
type HostSummary struct {
	Name    string
	Status  HostStatus
	Phase   string // the last phase the host took part in: for a failed host, the one it failed in
	Err     error
	Hint    string
	Changes int // changes the gate made (or, in a dry run, would make)
}

// PhaseSummary is one phase's outcome.
type PhaseSummary struct {
	Title      string
	Ran        bool
	SkipReason string // why it did not run
	// Hosts that finished, failed, and were left out because they had failed earlier.
	Done, Failed, Skipped int
	// Steps run and steps skipped as already done.
	StepsRun, StepsSkipped int
	Err                    error // the phase's own failure
}

// Summary is a run's outcome.
type Summary struct {
	RunID       string
	DryRun      bool
	Hosts       []HostSummary
	Phases      []PhaseSummary
	Interrupted bool
	Changes     int
	Err         error
	Plan        *Plan // in a dry run: what would change on each host
}

// Failed returns the hosts that failed or were interrupted.
func (s *Summary) Failed() []HostSummary {
	var out []HostSummary
	for _, h := range s.Hosts {
		if h.Status == StatusFailed || h.Status == StatusInterrupted {
			out = append(out, h)
		}
	}
	return out
}

// HostsFailedError is Run's error when hosts failed while the rest of the pipeline completed.
type HostsFailedError struct{ Hosts []HostSummary }

func (e *HostsFailedError) Error() string {
	parts := make([]string, len(e.Hosts))
	for i, h := range e.Hosts {
		parts[i] = fmt.Sprintf("%s failed in phase %q: %v", h.Name, h.Phase, h.Err)
	}
	return strings.Join(parts, "; ")
}

// Unwrap lets errors.As find the hosts' own errors.
func (e *HostsFailedError) Unwrap() []error {
	errs := make([]error, len(e.Hosts))
	for i, h := range e.Hosts {
		errs[i] = h.Err
	}
	return errs
}

// Run runs pipeline: every Prepare, then each phase in order. It returns the summary and an error when a host
// failed (*HostsFailedError), a phase failed, or ctx was cancelled (the error matches context.Canceled).
func (e *Engine) Run(ctx context.Context, pipeline []Phase) (*Summary, error) {
	r, err := e.start(pipeline)
	if err != nil {
		return nil, err
	}
	defer r.close()

	r.preparing.Store(true)
	for i, p := range pipeline {
		pr, ok := p.(Preparer)
		if !ok {
			continue
		}
		if err := pr.Prepare(ctx, r.env(p.Title(), -1)); err != nil {
			if ctx.Err() != nil {
				return r.finish(p.Title(), i, nil, true)
			}
			return r.finish(p.Title(), i, fmt.Errorf("prepare %q: %w", p.Title(), err), false)
		}
	}
	r.preparing.Store(false)
	for i, p := range pipeline {
		title := p.Title()
		if ctx.Err() != nil {
			return r.finish(title, i, nil, true)
		}
		if len(r.healthy()) == 0 {
			r.skipPhase(i, "no healthy host left")
			continue
		}
		env := r.env(title, i)
		if c, ok := p.(Conditional); ok {
			if run, why := c.ShouldRun(ctx, env); !run {
				r.skipPhase(i, why)
				continue
			}
		}
		r.startPhase(i, len(pipeline))
		if d, ok := p.(DryRunner); ok && r.opts.DryRun {
			err = d.DryRun(ctx, env)
		} else {
			err = p.Run(ctx, env)
		}
		if ctx.Err() != nil {
			return r.finish(title, i, nil, true)
		}
		if err != nil {
			return r.finish(title, i, fmt.Errorf("phase %q: %w", title, err), false)
		}
		r.donePhase(i, nil)
	}
	return r.finish("", len(pipeline), nil, false)
}

// start sets up the state of one run.
func (e *Engine) start(pipeline []Phase) (*run, error) {
	r := &run{opts: e.opts, id: e.opts.RunID, byName: map[string]*Node{}, cur: -1}
	if r.id == "" {
		var b [3]byte
		_, _ = rand.Read(b[:])
		r.id = r.opts.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	}
	continuing := ""
	if r.opts.Workdir != "" && !r.opts.DryRun {
		recs, err := ReadJournal(r.opts.Workdir)
		if err != nil {
			return nil, err
		}
		if l := Unfinished(recs); l != nil {
			continuing = l.String()
		}
		if r.journal, err = openJournal(r.opts.Workdir); err != nil {
			return nil, err
		}
	}
	var hosts []string
	for _, t := range e.targets {
		n := &Node{host: t.Host, runner: t.Runner, up: t.Uploader, r: r}
		if r.opts.Workdir != "" {
			var err error
			if n.log, err = openHostLog(r.opts.Workdir, t.Host.Name, r.id, r.opts.Now); err != nil {
				r.close()
				return nil, err
			}
		}
		r.nodes = append(r.nodes, n)
		r.byName[t.Host.Name] = n
		hosts = append(hosts, t.Host.Name)
	}
	titles := make([]string, len(pipeline))
	for i, p := range pipeline {
		titles[i] = p.Title()
		r.phases = append(r.phases, PhaseSummary{Title: titles[i]})
	}
	r.record(Record{Kind: KindRunStarted, Reason: continuing})
	r.emit(RunStarted{RunID: r.id, DryRun: r.opts.DryRun, Hosts: hosts, Phases: titles, Continuing: continuing})
	return r, nil
}

// run is the state of one Engine.Run.
type run struct {
	id      string
	opts    Options
	journal *journal
	nodes   []*Node
	byName  map[string]*Node

	emitMu sync.Mutex

	mu         sync.Mutex
	phases     []PhaseSummary
	cur        int // index of the running phase; -1 while preparing
	journalErr error
	preparing  atomic.Bool // the gate refuses changes while the Prepare hooks run
}

func (r *run) close() {
	if r.journal != nil {
		r.journal.close()
	}
	for _, n := range r.nodes {
		n.log.close()
	}
}

func (r *run) emit(ev Event) {
	if r.opts.Events == nil {
		return
	}
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.opts.Events(ev)
}

// record appends to the journal; the first write error is kept and reported by finish.
func (r *run) record(rec Record) {
	if r.journal == nil {
		return
	}
	rec.Run = r.id
	if err := r.journal.add(rec, r.opts.Now); err != nil {
		r.mu.Lock()
		if r.journalErr == nil {
			r.journalErr = err
		}
		r.mu.Unlock()
	}
}

func (r *run) env(title string, i int) *Env {
	r.mu.Lock()
	r.cur = i
	r.mu.Unlock()
	return &Env{r: r, phase: title}
}

// phaseTitle is the running phase's title, for plan entries and step records.
func (r *run) phaseTitle() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur < 0 || r.cur >= len(r.phases) {
		return ""
	}
	return r.phases[r.cur].Title
}

// count updates the running phase's summary.
func (r *run) count(f func(p *PhaseSummary)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur >= 0 && r.cur < len(r.phases) {
		f(&r.phases[r.cur])
	}
}

func (r *run) healthy() []*Node {
	var out []*Node
	for _, n := range r.nodes {
		if n.healthy() {
			out = append(out, n)
		}
	}
	return out
}

func (r *run) skipPhase(i int, reason string) {
	r.mu.Lock()
	r.phases[i].SkipReason = reason
	title := r.phases[i].Title
	r.mu.Unlock()
	r.record(Record{Kind: KindPhaseSkipped, Phase: title, Reason: reason})
	r.emit(PhaseSkipped{Phase: title, Reason: reason})
}

func (r *run) startPhase(i, total int) {
	r.mu.Lock()
	r.phases[i].Ran = true
	title := r.phases[i].Title
	r.mu.Unlock()
	r.record(Record{Kind: KindPhaseStarted, Phase: title})
	r.emit(PhaseStarted{Phase: title, Index: i + 1, Total: total})
}

func (r *run) donePhase(i int, err error) {
	r.mu.Lock()
	r.phases[i].Err = err
	p := r.phases[i]
	r.mu.Unlock()
	rec := Record{Kind: KindPhaseDone, Phase: p.Title, Reason: fmt.Sprintf("%d done, %d failed, %d skipped; steps: %d run, %d skipped",
		p.Done, p.Failed, p.Skipped, p.StepsRun, p.StepsSkipped)}
	if err != nil {
		rec.Kind, rec.Error, rec.Hint = KindPhaseFailed, err.Error(), hintFor(err, r.opts.Lang, "")
	}
	r.record(rec)
	r.emit(PhaseDone{Phase: p.Title, Done: p.Done, Failed: p.Failed, Skipped: p.Skipped, Err: err})
}

// finish closes the run: the host statuses, the journal's last records, RunDone and Run's error. at is the phase
// the run stopped in (len(pipeline) when it went through).
func (r *run) finish(title string, at int, phaseErr error, interrupted bool) (*Summary, error) {
	complete := at >= len(r.phases) && !interrupted && phaseErr == nil
	if phaseErr != nil && at < len(r.phases) && r.phases[at].Ran {
		r.donePhase(at, phaseErr)
	}
	s := &Summary{RunID: r.id, DryRun: r.opts.DryRun, Interrupted: interrupted}
	var failed []HostSummary
	if r.opts.DryRun {
		s.Plan = &Plan{}
	}
	for _, n := range r.nodes {
		h := n.summary()
		if h.Status == "" {
			h.Status = StatusStopped
			if complete {
				h.Status = StatusDone
			}
		}
		if h.Status == StatusFailed {
			failed = append(failed, h)
		}
		s.Hosts = append(s.Hosts, h)
		s.Changes += h.Changes
		if s.Plan != nil {
			s.Plan.Hosts = append(s.Plan.Hosts, HostPlan{Host: n.Name(), Entries: n.planEntries()})
		}
	}
	r.mu.Lock()
	s.Phases = append([]PhaseSummary(nil), r.phases...)
	r.mu.Unlock()

	switch {
	case interrupted:
		s.Err = fmt.Errorf("install interrupted in phase %q: %w", title, context.Canceled)
		r.record(Record{Kind: KindInterrupted, Phase: title})
	case phaseErr != nil:
		s.Err = phaseErr
	case len(failed) > 0:
		s.Err = &HostsFailedError{Hosts: failed}
	}
	rec := Record{Kind: KindRunFinished, Changes: s.Changes, Reason: "ok"}
	if s.Err != nil {
		rec.Reason, rec.Error = "failed", s.Err.Error()
		if interrupted {
			rec.Reason = "interrupted"
		}
	}
	r.record(rec)
	if r.journal != nil {
		if err := r.journal.sync(); err != nil && r.journalErr == nil {
			r.journalErr = err
		}
	}
	if s.Err == nil && r.journalErr != nil {
		s.Err = fmt.Errorf("write journal: %w", r.journalErr)
	}
	r.emit(RunDone{Summary: s, Err: s.Err})
	return s, s.Err
}
