package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// MarkerDir holds the step markers on each node: one file per step, named by its id, holding the sha256 of the
// inputs the step last completed with.
const MarkerDir = "/var/lib/wutong/markers"

// StepOption tunes one Step.
type StepOption func(*stepConfig)

type stepConfig struct {
	verify   func(ctx context.Context) error
	simulate bool
}

// Verify adds a check that the step's work is still in place (a unit active, a file present). It runs, read-only,
// whenever the marker matches; when it fails the step runs again. It must only Query.
func Verify(fn func(ctx context.Context) error) StepOption {
	return func(c *stepConfig) { c.verify = fn }
}

// Simulate runs the step's fn in a dry run too, so that its gate calls (which record instead of changing) show in
// the plan under the step. Use it for steps whose fn only calls the gate and does not depend on what Exec returns.
func Simulate() StepOption {
	return func(c *stepConfig) { c.simulate = true }
}

var stepIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// InputsHash is the hex sha256 of inputs as JSON (encoding/json: struct fields in declaration order, map keys
// sorted), the value a step's marker holds.
func InputsHash(inputs any) (string, error) {
	b, err := json.Marshal(inputs)
	if err != nil {
		return "", fmt.Errorf("hash inputs: %w", err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// Step runs fn once for its inputs. Its marker (MarkerDir/id) on the node is read first: when it holds the hash of
// inputs and the Verify check (if any) passes, fn is skipped as done; otherwise fn runs and, when it succeeds, the
// marker is written atomically. An id is lower-case letters, digits, '.', '_' and '-', unique on the node.
//
// A cancelled ctx stops a step before it starts. In a dry run fn does not run (unless Simulate); the plan records
// "would run (new | inputs changed | not verified)" or "unchanged". The marker write itself is bookkeeping: it is
// logged but it is neither a plan entry nor counted as a change.
func (n *Node) Step(ctx context.Context, id string, inputs any, fn func(ctx context.Context) error, opts ...StepOption) error {
	if !stepIDPattern.MatchString(id) {
		return fmt.Errorf("step %q: bad id (want lower-case letters, digits, '.', '_' and '-')", id)
	}
	var cfg stepConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := n.mayChange(ctx, "step "+id); err != nil {
		return err
	}
	hash, err := InputsHash(inputs)
	if err != nil {
		return fmt.Errorf("step %s: %w", id, err)
	}
	marker := path.Join(MarkerDir, id)
	res, err := n.run(ctx, remote.Cmd{Line: "cat " + marker + " 2>/dev/null || true", Sudo: true})
	if err != nil {
		return fmt.Errorf("step %s: read marker: %w", id, err)
	}
	reason := ""
	switch old := strings.TrimSpace(string(res.Stdout)); {
	case old == "":
		reason = "new"
	case old != hash:
		reason = "inputs changed"
	case cfg.verify != nil:
		if err := cfg.verify(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			reason = "not verified: " + err.Error()
		}
	}
	r, host, phase := n.r, n.Name(), n.r.phaseTitle()
	if reason == "" {
		why := "done, inputs unchanged"
		if cfg.verify != nil {
			why = "done, verified"
		}
		r.count(func(p *PhaseSummary) { p.StepsSkipped++ })
		n.logf("step %s: skipped (%s)", id, why)
		if n.DryRun() {
			n.addPlan(PlanEntry{Kind: PlanStep, Target: id, Desc: "unchanged (" + why + ")"})
		}
		r.record(Record{Kind: KindStepSkipped, Phase: phase, Host: host, Step: id, Reason: why})
		r.emit(StepSkipped{Host: host, Step: id, Reason: why})
		return nil
	}
	if n.DryRun() {
		n.addPlan(PlanEntry{Kind: PlanStep, Target: id, Desc: "would run (" + reason + ")"})
		r.emit(StepSkipped{Host: host, Step: id, Reason: "dry run: would run (" + reason + ")"})
		if !cfg.simulate {
			return nil
		}
		n.setStep(id)
		defer n.setStep("")
		if err := fn(ctx); err != nil {
			return fmt.Errorf("step %s: %w", id, err)
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.count(func(p *PhaseSummary) { p.StepsRun++ })
	n.logf("step %s: running (%s)", id, reason)
	r.record(Record{Kind: KindStepStarted, Phase: phase, Host: host, Step: id, Reason: reason})
	r.emit(StepStarted{Host: host, Step: id, Reason: reason})
	if err := fn(ctx); err != nil {
		kind := KindStepFailed
		if ctx.Err() != nil {
			kind = KindInterrupted
		}
		n.logf("step %s: failed: %v", id, err)
		r.record(Record{Kind: kind, Phase: phase, Host: host, Step: id, Error: err.Error()})
		return fmt.Errorf("step %s: %w", id, err)
	}
	if err := n.writeFile(ctx, marker, []byte(hash+"\n"), 0o644); err != nil {
		r.record(Record{Kind: KindStepFailed, Phase: phase, Host: host, Step: id, Error: err.Error()})
		return fmt.Errorf("step %s: write marker: %w", id, err)
	}
	n.logf("step %s: done", id)
	r.record(Record{Kind: KindStepDone, Phase: phase, Host: host, Step: id})
	r.emit(StepDone{Host: host, Step: id})
	return nil
}
