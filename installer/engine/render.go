package engine

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wutong-paas/wutong-offline/internal/progress"
)

// TextRenderer prints engine events as plain text. On a terminal, uploads in flight show as one live line per
// host with bytes, rate and ETA, redrawn in place below the log lines; otherwise it prints lines only (an upload's
// start, every 25% and its end), which suit logs and CI. Use its Handle as Options.Events.
type TextRenderer struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	now      func() time.Time
	bars     map[string]*bar
	order    []string // hosts with a bar, in the order they started
	drawn    int      // live lines on screen
	lastDraw time.Time
}

type bar struct {
	label       string
	done, total int64
	start       time.Time
	nextPct     int64
}

// NewTextRenderer prints to w; tty selects the terminal form (see progress.IsTerminal).
func NewTextRenderer(w io.Writer, tty bool) *TextRenderer {
	return &TextRenderer{w: w, tty: tty, now: time.Now, bars: map[string]*bar{}}
}

// Handle prints one event.
func (t *TextRenderer) Handle(ev Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e := ev.(type) {
	case RunStarted:
		mode := ""
		if e.DryRun {
			mode = " (dry run: nothing will be changed)"
		}
		t.println("run %s: %d host(s), %d phase(s)%s", e.RunID, len(e.Hosts), len(e.Phases), mode)
		if e.Continuing != "" {
			t.println("continuing from the last run: %s", e.Continuing)
		}
	case PhaseStarted:
		t.println("[%d/%d] %s", e.Index, e.Total, e.Phase)
	case PhaseSkipped:
		t.println("[-] %s: skipped (%s)", e.Phase, e.Reason)
	case PhaseDone:
		if e.Err != nil {
			t.println("    phase %q FAILED: %v", e.Phase, e.Err)
		}
	case HostDone:
		if e.Changes == 0 {
			t.println("    %s: done, nothing changed", e.Host)
		} else {
			t.println("    %s: done, %d change(s)", e.Host, e.Changes)
		}
	case HostFailed:
		t.dropBar(e.Host)
		word := "FAILED"
		if e.Interrupted {
			word = "interrupted"
		}
		t.println("    %s: %s: %v", e.Host, word, e.Err)
		if e.Hint != "" {
			t.println("      hint: %s", e.Hint)
		}
	case StepStarted:
		t.println("    %s: step %s (%s)", e.Host, e.Step, e.Reason)
	case Log:
		t.println("    %s: %s", e.Host, e.Line)
	case Progress:
		t.progress(e)
	case RunDone:
		t.clear()
		t.summary(e.Summary)
	}
}

func (t *TextRenderer) progress(e Progress) {
	b := t.bars[e.Host]
	if b == nil || b.label != e.Label {
		b = &bar{label: e.Label, start: t.now(), nextPct: 25}
		t.bars[e.Host] = b
		if !slices.Contains(t.order, e.Host) {
			t.order = append(t.order, e.Host)
		}
		if !t.tty {
			t.println("    %s: upload %s: %s", e.Host, e.Label, progress.Bytes(e.Total))
		}
	}
	b.done, b.total = e.Done, e.Total
	finished := e.Total > 0 && e.Done >= e.Total
	if !t.tty {
		if pct := b.done * 100 / max(b.total, 1); !finished && b.total > 0 && pct >= b.nextPct {
			t.println("    %s: upload %s: %d%% (%s)", e.Host, e.Label, pct, t.rateETA(b))
			b.nextPct = (pct/25 + 1) * 25
		}
	}
	if finished {
		el := t.now().Sub(b.start)
		t.dropBar(e.Host)
		t.println("    %s: uploaded %s: %s in %s", e.Host, e.Label, progress.Bytes(e.Total), el.Round(time.Second))
		return
	}
	if t.tty && t.now().Sub(t.lastDraw) >= 100*time.Millisecond {
		t.clear()
		t.draw()
	}
}

// rateETA is "12.0 MiB of 100.0 MiB, 3.0 MiB/s, ETA 29s".
func (t *TextRenderer) rateETA(b *bar) string {
	el := t.now().Sub(b.start)
	s := fmt.Sprintf("%s of %s", progress.Bytes(b.done), progress.Bytes(b.total))
	if el <= 0 || b.done <= 0 {
		return s
	}
	rate := float64(b.done) / el.Seconds()
	eta := time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
	return fmt.Sprintf("%s, %s/s, ETA %s", s, progress.Bytes(int64(rate)), eta.Round(time.Second))
}

func (t *TextRenderer) dropBar(host string) {
	if _, ok := t.bars[host]; !ok {
		return
	}
	t.clear()
	delete(t.bars, host)
	t.order = slices.DeleteFunc(t.order, func(h string) bool { return h == host })
}

// println prints a log line above the live lines.
func (t *TextRenderer) println(format string, args ...any) {
	t.clear()
	fmt.Fprintf(t.w, format+"\n", args...)
	t.draw()
}

// clear erases the live lines.
func (t *TextRenderer) clear() {
	if t.drawn > 0 {
		fmt.Fprint(t.w, strings.Repeat("\x1b[1A\x1b[2K", t.drawn))
		t.drawn = 0
	}
}

// draw prints one live line per upload in flight (terminal only).
func (t *TextRenderer) draw() {
	if !t.tty {
		return
	}
	for _, h := range t.order {
		b := t.bars[h]
		const width = 20
		fill := 0
		if b.total > 0 {
			fill = int(b.done * width / b.total)
		}
		fmt.Fprintf(t.w, "  %-12s [%s%s] %s  %s\n", h, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), b.label, t.rateETA(b))
		t.drawn++
	}
	t.lastDraw = t.now()
}

func (t *TextRenderer) summary(s *Summary) {
	if s == nil {
		return
	}
	if s.DryRun && s.Plan != nil {
		fmt.Fprintf(t.w, "\nplan:\n%s", s.Plan)
	}
	fmt.Fprintln(t.w)
	for _, h := range s.Hosts {
		switch h.Status {
		case StatusFailed, StatusInterrupted:
			fmt.Fprintf(t.w, "%-12s %s in phase %q: %v\n", h.Name, h.Status, h.Phase, h.Err)
			if h.Hint != "" {
				fmt.Fprintf(t.w, "%-12s hint: %s\n", "", h.Hint)
			}
		default:
			fmt.Fprintf(t.w, "%-12s %s, %d change(s)\n", h.Name, h.Status, h.Changes)
		}
	}
	switch {
	case s.Err != nil:
		fmt.Fprintf(t.w, "run %s did not complete: run the same command again to continue.\n", s.RunID)
	case s.Changes == 0 && !s.DryRun:
		fmt.Fprintf(t.w, "run %s complete: everything was already in place, nothing changed.\n", s.RunID)
	default:
		fmt.Fprintf(t.w, "run %s complete.\n", s.RunID)
	}
}
