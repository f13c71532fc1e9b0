package engine

import (
	"context"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// oneNode runs fn as a single-host phase and returns the fake's calls.
func oneNode(t *testing.T, f *fakeNode, o Options, fn func(ctx context.Context, n *Node) error) []string {
	t.Helper()
	e, err := New([]Target{{Host: cluster.Host{Name: f.name}, Runner: f}}, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), []Phase{ForEachHost("test", fn)}); err != nil {
		t.Fatal(err)
	}
	return f.calls()
}

func TestPutFile(t *testing.T) {
	const p = "/etc/wutong/a.conf"
	for _, tc := range []struct {
		name        string
		have        []byte
		haveMode    fs.FileMode
		wantChanged bool
		wantCmds    []string // prefixes of the mutating commands, in order
	}{
		{"new", nil, 0, true, []string{"set -e; p=/etc/wutong/a.conf;"}},
		{"different", []byte("old\n"), 0o644, true, []string{"set -e; p=/etc/wutong/a.conf;"}},
		{"identical", []byte("new\n"), 0o644, false, nil},
		{"mode only", []byte("new\n"), 0o600, false, []string{"chmod 0644 /etc/wutong/a.conf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNode("n1")
			f.setFile(p, tc.have, tc.haveMode)
			var changed bool
			calls := oneNode(t, f, Options{}, func(ctx context.Context, n *Node) (err error) {
				changed, err = n.PutFile(ctx, p, []byte("new\n"), 0o644)
				return err
			})
			if changed != tc.wantChanged {
				t.Errorf("changed = %v", changed)
			}
			var muts []string
			for _, c := range calls {
				if !reReadOnly.MatchString(c) {
					muts = append(muts, c)
				}
			}
			if len(muts) != len(tc.wantCmds) {
				t.Fatalf("commands %q, want %q", muts, tc.wantCmds)
			}
			for i, c := range muts {
				if !strings.HasPrefix(c, tc.wantCmds[i]) {
					t.Errorf("command %q, want prefix %q", c, tc.wantCmds[i])
				}
			}
			if got, _ := f.file(p); string(got.data) != "new\n" || got.mode != 0o644 {
				t.Errorf("node holds %q mode %o", got.data, got.mode)
			}
		})
	}
}

func TestUnit(t *testing.T) {
	const unit = "[Service]\nExecStart=/bin/true\n"
	for _, tc := range []struct {
		name        string
		have        string
		wantChanged bool
		wantReload  bool
	}{
		{"new", "", true, true},
		{"changed", "[Service]\nExecStart=/bin/false\n", true, true},
		{"identical", unit, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNode("n1")
			if tc.have != "" {
				f.setFile("/etc/systemd/system/x.service", []byte(tc.have), 0o644)
			}
			var changed bool
			calls := oneNode(t, f, Options{}, func(ctx context.Context, n *Node) (err error) {
				changed, err = n.Unit(ctx, "x.service", []byte(unit))
				return err
			})
			if changed != tc.wantChanged {
				t.Errorf("changed = %v", changed)
			}
			if got := slices.Contains(calls, "systemctl daemon-reload"); got != tc.wantReload {
				t.Errorf("daemon-reload = %v; calls %q", got, calls)
			}
			if got, _ := f.file("/etc/systemd/system/x.service"); string(got.data) != unit {
				t.Errorf("unit holds %q", got.data)
			}
		})
	}
}

func TestStepMarkers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		marker   string // "" none; "same" the inputs' hash
		verify   error
		wantRun  bool
		wantSkip string
	}{
		{"new", "", nil, true, ""},
		{"inputs changed", "0000", nil, true, ""},
		{"done", "same", nil, false, "done, inputs unchanged"},
		{"done and verified", "same", errNil, false, "done, verified"},
		{"not verified", "same", errBroken, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNode("n1")
			inputs := map[string]int{"b": 2, "a": 1}
			h, err := InputsHash(inputs)
			if err != nil {
				t.Fatal(err)
			}
			if tc.marker == "same" {
				tc.marker = h + "\n"
			}
			if tc.marker != "" {
				f.setFile(MarkerDir+"/s1", []byte(tc.marker), 0o644)
			}
			var opts []StepOption
			if tc.verify != nil {
				opts = append(opts, Verify(func(ctx context.Context) error {
					if tc.verify == errNil {
						return nil
					}
					return tc.verify
				}))
			}
			ran := false
			var skipped []StepSkipped
			oneNode(t, f, Options{Events: func(ev Event) {
				if e, ok := ev.(StepSkipped); ok {
					skipped = append(skipped, e)
				}
			}}, func(ctx context.Context, n *Node) error {
				return n.Step(ctx, "s1", inputs, func(ctx context.Context) error { ran = true; return nil }, opts...)
			})
			if ran != tc.wantRun {
				t.Errorf("ran = %v", ran)
			}
			if got, _ := f.file(MarkerDir + "/s1"); string(got.data) != h+"\n" && tc.wantRun {
				t.Errorf("marker %q, want %q", got.data, h)
			}
			if !tc.wantRun && (len(skipped) != 1 || skipped[0].Reason != tc.wantSkip) {
				t.Errorf("skipped events %+v, want reason %q", skipped, tc.wantSkip)
			}
		})
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

const (
	errNil    = testErr("nil")
	errBroken = testErr("containerd is not running")
)

func TestStepRejectsBadID(t *testing.T) {
	f := newFakeNode("n1")
	e, _ := New([]Target{{Host: cluster.Host{Name: "n1"}, Runner: f}}, Options{})
	_, err := e.Run(context.Background(), []Phase{ForEachHost("p", func(ctx context.Context, n *Node) error {
		return n.Step(ctx, "../etc/passwd", nil, func(context.Context) error { return nil })
	})})
	if err == nil || !strings.Contains(err.Error(), "bad id") {
		t.Errorf("err = %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	f := newFakeNode("a")
	for name, ts := range map[string][]Target{
		"duplicate": {{Host: cluster.Host{Name: "a"}, Runner: f}, {Host: cluster.Host{Name: "a"}, Runner: f}},
		"no runner": {{Host: cluster.Host{Name: "a"}}},
		"bad name":  {{Host: cluster.Host{Name: "../a"}, Runner: f}},
	} {
		if _, err := New(ts, Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestExecDryRunRecordsRedacted(t *testing.T) {
	f := newFakeNode("n1")
	var plan *Plan
	e, _ := New([]Target{{Host: cluster.Host{Name: "n1"}, Runner: f}}, Options{DryRun: true})
	s, err := e.Run(context.Background(), []Phase{ForEachHost("p", func(ctx context.Context, n *Node) error {
		_, err := n.Exec(ctx, "set password", remote.Cmd{Line: "chpasswd secret", Redact: true})
		return err
	})})
	if err != nil {
		t.Fatal(err)
	}
	plan = s.Plan
	if len(f.calls()) != 0 {
		t.Error("a dry-run Exec reached the node")
	}
	if got := plan.String(); strings.Contains(got, "secret") || !strings.Contains(got, "run set password: <redacted>") {
		t.Errorf("plan:\n%s", got)
	}
}

// sneaky changes a node from Prepare.
type sneaky struct{}

func (sneaky) Title() string                           { return "sneaky" }
func (sneaky) Run(ctx context.Context, env *Env) error { return nil }
func (sneaky) Prepare(ctx context.Context, env *Env) error {
	_, err := env.Nodes()[0].PutFile(ctx, "/etc/x", []byte("x"), 0o644)
	return err
}

func TestPrepareCannotChange(t *testing.T) {
	f := newFakeNode("n1")
	e, _ := New([]Target{{Host: cluster.Host{Name: "n1"}, Runner: f}}, Options{})
	_, err := e.Run(context.Background(), []Phase{sneaky{}})
	if err == nil || !strings.Contains(err.Error(), "Prepare must not change nodes") {
		t.Errorf("err = %v", err)
	}
	if _, ok := f.file("/etc/x"); ok {
		t.Error("Prepare wrote a file")
	}
}
