package engine

import (
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/wutong-paas/wutong-offline/internal/progress"
)

// PlanKind is what a plan entry does.
type PlanKind string

// Plan entry kinds.
const (
	PlanCommand PlanKind = "command" // Exec
	PlanFile    PlanKind = "file"    // PutFile
	PlanUnit    PlanKind = "unit"    // Unit: the file, then systemctl daemon-reload
	PlanUpload  PlanKind = "upload"  // Upload
	PlanStep    PlanKind = "step"    // Step: would run, or unchanged
)

// PlanEntry is one change the gate would make, or a step's verdict.
type PlanEntry struct {
	Phase  string
	Step   string // the simulated step the entry belongs to, if any
	Kind   PlanKind
	Target string // the path; the command line ("<redacted>" for secret commands); the step id
	Desc   string // commands: what it does; steps: "would run (…)" or "unchanged (…)"
	Source string // uploads: the local file
	Size   int64
	SHA256 string
	Mode   fs.FileMode
	Note   string // files and units: new or changed
}

// changes reports whether the entry is a change (a step found done is not).
func (e PlanEntry) changes() bool {
	return e.Kind != PlanStep || !strings.HasPrefix(e.Desc, "unchanged")
}

// line is the entry as one line of text, without the kind.
func (e PlanEntry) line() string {
	var b strings.Builder
	switch e.Kind {
	case PlanCommand:
		fmt.Fprintf(&b, "run %s: %s", e.Desc, e.Target)
	case PlanFile, PlanUnit:
		verb := "write"
		if e.Kind == PlanUnit {
			verb = "install unit"
		}
		fmt.Fprintf(&b, "%s %s (%s, mode %04o, %s, sha256 %s)", verb, e.Target, e.Note, e.Mode, progress.Bytes(e.Size), e.SHA256)
		if e.Kind == PlanUnit {
			b.WriteString(", then systemctl daemon-reload")
		}
	case PlanUpload:
		fmt.Fprintf(&b, "upload %s to %s (%s", e.Source, e.Target, progress.Bytes(e.Size))
		if e.Mode != 0 {
			fmt.Fprintf(&b, ", mode %04o", e.Mode)
		}
		if e.SHA256 != "" {
			fmt.Fprintf(&b, ", sha256 %s", e.SHA256)
		}
		b.WriteString(")")
	case PlanStep:
		fmt.Fprintf(&b, "step %s: %s", e.Target, e.Desc)
	}
	return b.String()
}

// HostPlan is one host's plan, in the order the gate saw the calls.
type HostPlan struct {
	Host    string
	Entries []PlanEntry
}

// Changes counts the entries that change the node.
func (h HostPlan) Changes() int {
	c := 0
	for _, e := range h.Entries {
		if e.changes() {
			c++
		}
	}
	return c
}

// Plan is what a dry run found would change, per host in cluster.yaml order.
type Plan struct {
	Hosts []HostPlan
}

// String renders the plan as WriteTo does.
func (p *Plan) String() string {
	var b strings.Builder
	_, _ = p.WriteTo(&b)
	return b.String()
}

// WriteTo renders the plan as text: per host, per phase, one line per entry, in order. The text depends only on
// the plan, so that it can be compared and reviewed.
func (p *Plan) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, h := range p.Hosts {
		switch c := h.Changes(); c {
		case 0:
			fmt.Fprintf(&b, "host %s: no changes\n", h.Host)
		default:
			fmt.Fprintf(&b, "host %s: %d change(s)\n", h.Host, c)
		}
		phase := "\x00"
		for _, e := range h.Entries {
			if e.Phase != phase {
				phase = e.Phase
				fmt.Fprintf(&b, "  phase %q\n", phase)
			}
			indent := "    "
			if e.Step != "" {
				indent += "  "
			}
			fmt.Fprintf(&b, "%s%s\n", indent, e.line())
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
