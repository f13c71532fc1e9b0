package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/installer/remote/remotetest"
)

func TestDryRun(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, "lab1", "lab2", "lab3")
	// lab1 is fully installed but for the registry password; lab2 is bare; lab3 is installed, but its sysctl file
	// was edited by hand and containerd has stopped.
	if _, err := l.engine(t, Options{}).Run(ctx, testPipeline(t)); err != nil {
		t.Fatal(err)
	}
	l.nodes["lab1"].setFile(MarkerDir+"/registry-auth", nil, 0)
	l.nodes["lab2"] = newFakeNode("lab2")
	l.nodes["lab3"].setFile(sysctlPath, []byte("net.ipv4.ip_forward = 0\n"), 0o600)
	l.nodes["lab3"].setFake(remotetest.New("lab3").On(`^systemctl is-active`, "inactive", 3).On(".", "", 0))
	l.mutations()

	s, err := l.engine(t, Options{DryRun: true}).Run(ctx, testPipeline(t))
	if err != nil {
		t.Fatal(err)
	}
	if m := l.mutations(); len(m) != 0 {
		t.Errorf("a dry run changed hosts: %q", m)
	}
	got := s.Plan.String()
	golden := filepath.Join("testdata", "dryrun.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("plan differs from %s (go test -update to accept):\n%s", golden, got)
	}
	if strings.Contains(got, registryPwd) {
		t.Error("the plan shows the redacted command")
	}
	if st, _ := os.Stat(filepath.Join(l.dir, JournalFile)); st == nil {
		t.Fatal("no journal from the first run")
	}
	if recs := l.lastRun(t); recs[0].Kind != KindRunStarted || recs[len(recs)-1].Reason != "ok" || count(recs, KindRunStarted, "", "") != 1 {
		t.Error("the dry run wrote to the journal")
	}
}

func TestCancelAndResume(t *testing.T) {
	l := newLab(t, "lab1", "lab2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The link is cut (Ctrl-C) while lab1 starts containerd; lab2 waits its turn (Parallel 1).
	l.nodes["lab1"].hook = func(ctx context.Context, cmd remote.Cmd) error {
		if strings.HasPrefix(cmd.Line, "systemctl enable containerd") {
			cancel()
			return &remote.CommandError{Host: "lab1", Cmd: cmd.Line, ExitCode: -1, Err: context.Canceled}
		}
		return nil
	}
	s, err := l.engine(t, Options{Parallel: 1}).Run(ctx, testPipeline(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !s.Interrupted || s.Hosts[0].Status != StatusInterrupted || s.Hosts[1].Status != StatusStopped {
		t.Errorf("summary: %+v", s)
	}
	recs := l.lastRun(t)
	if count(recs, KindInterrupted, "", "") == 0 || count(recs, KindHostStarted, "lab2", "") != 1 {
		t.Errorf("journal: %+v", recs)
	}
	if last := recs[len(recs)-1]; last.Kind != KindRunFinished || last.Reason != "interrupted" {
		t.Errorf("last record: %+v", last)
	}
	if left := Unfinished(recs); left == nil || !strings.Contains(left.String(), "interrupted") {
		t.Errorf("Unfinished = %v", left)
	}
	l.mutations()

	l.nodes["lab1"].hook = nil
	if _, err := l.engine(t, Options{Parallel: 1}).Run(context.Background(), testPipeline(t)); err != nil {
		t.Fatal(err)
	}
	recs = l.lastRun(t)
	if n := count(recs, KindStepStarted, "", "sysctl-apply"); n != 0 {
		t.Errorf("sysctl-apply redone on %d hosts", n)
	}
	for _, c := range []struct {
		host, step string
		kind       RecordKind
	}{
		{"lab1", "sysctl-apply", KindStepSkipped},
		{"lab2", "sysctl-apply", KindStepSkipped},
		{"lab1", "containerd-start", KindStepDone},
		{"lab2", "containerd-start", KindStepDone},
		{"lab1", "registry-auth", KindStepDone},
	} {
		if count(recs, c.kind, c.host, c.step) != 1 {
			t.Errorf("%s %s: no %s record", c.host, c.step, c.kind)
		}
	}
	for host, calls := range l.mutations() {
		if slices.Contains(calls, "sysctl --system") {
			t.Errorf("%s: sysctl applied again", host)
		}
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	l := newLab(t, "lab1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.engine(t, Options{}).Run(ctx, testPipeline(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if m := l.mutations(); len(m) != 0 {
		t.Errorf("changes after cancel: %q", m)
	}
}
