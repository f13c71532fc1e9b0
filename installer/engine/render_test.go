package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTextRendererLines(t *testing.T) {
	var b strings.Builder
	r := NewTextRenderer(&b, false)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	for _, ev := range []Event{
		RunStarted{RunID: "r1", Hosts: []string{"lab1", "lab2"}, Phases: []string{"a"}, Continuing: `lab2 failed in phase "a": x`},
		PhaseStarted{Phase: "a", Index: 1, Total: 1},
		Progress{Host: "lab1", Label: "/opt/x", Done: 0, Total: 4 << 20},
		Progress{Host: "lab1", Label: "/opt/x", Done: 3 << 20, Total: 4 << 20},
		HostDone{Phase: "a", Host: "lab2"},
		Progress{Host: "lab1", Label: "/opt/x", Done: 4 << 20, Total: 4 << 20},
		HostFailed{Phase: "a", Host: "lab1", Err: errors.New("boom"), Hint: "fix it"},
		RunDone{Summary: &Summary{RunID: "r1", Err: errors.New("x"), Hosts: []HostSummary{
			{Name: "lab1", Status: StatusFailed, Phase: "a", Err: errors.New("boom"), Hint: "fix it"},
			{Name: "lab2", Status: StatusDone}}}},
	} {
		if _, ok := ev.(Progress); ok {
			now = now.Add(time.Second)
		}
		r.Handle(ev)
	}
	want := `run r1: 2 host(s), 1 phase(s)
continuing from the last run: lab2 failed in phase "a": x
[1/1] a
    lab1: upload /opt/x: 4.0 MiB
    lab1: upload /opt/x: 75% (3.0 MiB of 4.0 MiB, 3.0 MiB/s, ETA 0s)
    lab2: done, nothing changed
    lab1: uploaded /opt/x: 4.0 MiB in 2s
    lab1: FAILED: boom
      hint: fix it

lab1         failed in phase "a": boom
             hint: fix it
lab2         done, 0 change(s)
run r1 did not complete: run the same command again to continue.
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestTextRendererTTY(t *testing.T) {
	var b strings.Builder
	r := NewTextRenderer(&b, true)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	r.Handle(Progress{Host: "lab1", Label: "/opt/x", Done: 0, Total: 100 << 20})
	now = now.Add(2 * time.Second)
	r.Handle(Progress{Host: "lab1", Label: "/opt/x", Done: 20 << 20, Total: 100 << 20})
	r.Handle(Progress{Host: "lab2", Label: "/opt/x", Done: 50 << 20, Total: 100 << 20})
	r.Handle(Log{Host: "lab2", Line: "write /etc/a"})
	got := b.String()
	for _, want := range []string{
		"  lab1         [====                ] /opt/x  20.0 MiB of 100.0 MiB, 10.0 MiB/s, ETA 8s\n",
		"    lab2: write /etc/a\n",
		"\x1b[1A\x1b[2K",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%q", want, got)
		}
	}
	// After the log line, both bars are drawn again below it.
	tail := got[strings.LastIndex(got, "write /etc/a"):]
	if !strings.Contains(tail, "lab1 ") || !strings.Contains(tail, "lab2 ") {
		t.Errorf("bars not redrawn after the log line: %q", tail)
	}
}
