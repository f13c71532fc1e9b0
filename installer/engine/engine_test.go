package engine

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/installer/remote/remotetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const payload = "testdata/payload.txt"

// lab is a set of fake hosts; the first is also the registry.
type lab struct {
	names []string
	nodes map[string]*fakeNode
	dir   string // workdir
}

func newLab(t *testing.T, names ...string) *lab {
	l := &lab{names: names, nodes: map[string]*fakeNode{}, dir: filepath.Join(t.TempDir(), "work")}
	for _, n := range names {
		l.nodes[n] = newFakeNode(n)
	}
	return l
}

func (l *lab) engine(t *testing.T, o Options) *Engine {
	t.Helper()
	var ts []Target
	for i, n := range l.names {
		h := cluster.Host{Name: n, Roles: []cluster.Role{cluster.RoleWorker}}
		if i == 0 {
			h.Roles = []cluster.Role{cluster.RoleControlPlane, cluster.RoleRegistry}
		}
		ts = append(ts, Target{Host: h, Runner: l.nodes[n]})
	}
	if o.Workdir == "" {
		o.Workdir = l.dir
	}
	e, err := New(ts, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// mutations returns, per host, the calls since the last look that could have changed it.
func (l *lab) mutations() map[string][]string {
	m := map[string][]string{}
	for _, n := range l.names {
		if c := l.nodes[n].mutations(); len(c) > 0 {
			m[n] = c
		}
	}
	return m
}

// journalOf returns the records of the last run in the workdir.
func (l *lab) lastRun(t *testing.T) []Record {
	t.Helper()
	recs, err := ReadJournal(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	start := 0
	for i, r := range recs {
		if r.Kind == KindRunStarted {
			start = i
		}
	}
	return recs[start:]
}

func count(recs []Record, kind RecordKind, host, step string) int {
	c := 0
	for _, r := range recs {
		if r.Kind == kind && (host == "" || r.Host == host) && (step == "" || r.Step == step) {
			c++
		}
	}
	return c
}

const (
	sysctlConf  = "net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\n"
	sysctlPath  = "/etc/sysctl.d/90-wutong.conf"
	unitText    = "[Unit]\nDescription=containerd\n[Service]\nExecStart=/opt/wutong/bin/containerd\n[Install]\nWantedBy=multi-user.target\n"
	registryPwd = "s3cret-Regi5try"
)

// testPipeline is a small install: three phases that use every kind of gate call.
func testPipeline(t *testing.T) []Phase {
	data, err := os.ReadFile(payload)
	if err != nil {
		t.Fatal(err)
	}
	payloadSum := sum(data)
	return []Phase{
		ForEachHost("node prep", func(ctx context.Context, n *Node) error {
			if _, err := n.PutFile(ctx, sysctlPath, []byte(sysctlConf), 0o644); err != nil {
				return err
			}
			return n.Step(ctx, "sysctl-apply", sysctlConf, func(ctx context.Context) error {
				_, err := n.Exec(ctx, "apply sysctl settings", remote.Cmd{Line: "sysctl --system", Sudo: true})
				return err
			})
		}),
		ForEachHost("containerd", func(ctx context.Context, n *Node) error {
			if _, err := n.Upload(ctx, payload, "/opt/wutong/bin/containerd", remote.UploadOptions{Mode: 0o755, Sudo: true, SHA256: payloadSum}); err != nil {
				return err
			}
			if _, err := n.Unit(ctx, "containerd.service", []byte(unitText)); err != nil {
				return err
			}
			// The restart is a step keyed on what containerd runs: it happens once per change, and again
			// after a run that failed between writing the unit and restarting.
			inputs := map[string]string{"unit": sum([]byte(unitText)), "binary": payloadSum}
			return n.Step(ctx, "containerd-start", inputs, func(ctx context.Context) error {
				_, err := n.Exec(ctx, "start containerd", remote.Cmd{Line: "systemctl enable containerd && systemctl restart containerd", Sudo: true})
				return err
			}, Verify(func(ctx context.Context) error {
				_, err := n.Query(ctx, remote.Cmd{Line: "systemctl is-active containerd"})
				return err
			}))
		}),
		OnHosts("registry", WithRole(cluster.RoleRegistry), func(ctx context.Context, n *Node) error {
			return n.Step(ctx, "registry-auth", "admin", func(ctx context.Context) error {
				_, err := n.Exec(ctx, "set the registry password", remote.Cmd{Line: "htpasswd -Bbc /etc/wutong/htpasswd admin " + registryPwd, Sudo: true, Redact: true})
				return err
			}, Simulate())
		}),
	}
}

// recPhase records what the engine did with it.
type recPhase struct {
	title string
	skip  string
	log   *[]string
	mu    *sync.Mutex
}

func (p recPhase) Title() string { return p.title }
func (p recPhase) add(s string) {
	p.mu.Lock()
	*p.log = append(*p.log, s)
	p.mu.Unlock()
}
func (p recPhase) Run(ctx context.Context, env *Env) error {
	p.add("run " + p.title)
	return env.EachHost(ctx, nil, func(ctx context.Context, n *Node) error {
		p.add(p.title + "@" + n.Name())
		return nil
	})
}
func (p recPhase) Prepare(ctx context.Context, env *Env) error {
	p.add("prepare " + p.title)
	return nil
}
func (p recPhase) ShouldRun(ctx context.Context, env *Env) (bool, string) {
	return p.skip == "", p.skip
}

func TestPipelineOrder(t *testing.T) {
	var got []string
	var mu sync.Mutex
	ph := func(title, skip string) Phase { return recPhase{title: title, skip: skip, log: &got, mu: &mu} }
	l := newLab(t, "lab1")
	s, err := l.engine(t, Options{}).Run(context.Background(), []Phase{
		ph("one", ""), ph("two", "not needed"), ph("three", ""), ph("four", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"prepare one", "prepare two", "prepare three", "prepare four",
		"run one", "one@lab1", "run three", "three@lab1", "run four", "four@lab1"}
	if !slices.Equal(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
	if p := s.Phases[1]; p.Ran || p.SkipReason != "not needed" {
		t.Errorf("phase two: %+v", p)
	}
	var kinds []string
	for _, r := range l.lastRun(t) {
		if strings.HasPrefix(string(r.Kind), "phase-") {
			kinds = append(kinds, string(r.Kind)+" "+r.Phase)
		}
	}
	wantKinds := []string{"phase-started one", "phase-done one", "phase-skipped two", "phase-started three",
		"phase-done three", "phase-started four", "phase-done four"}
	if !slices.Equal(kinds, wantKinds) {
		t.Errorf("journal:\n got %q\nwant %q", kinds, wantKinds)
	}
}

func TestParallelLimit(t *testing.T) {
	for _, limit := range []int{1, 3, 10} {
		l := newLab(t, "h1", "h2", "h3", "h4", "h5", "h6", "h7")
		var mu sync.Mutex
		inflight, peak, started := 0, 0, 0
		release := make(chan struct{})
		want := min(limit, len(l.names))
		for _, n := range l.nodes {
			n.hook = func(ctx context.Context, cmd remote.Cmd) error {
				if cmd.Line != "work" {
					return nil
				}
				mu.Lock()
				inflight++
				started++
				peak = max(peak, inflight)
				if started == want {
					// Hold the hosts a moment longer, so that any host started beyond the limit is counted.
					// Correct code passes however long this is; it only lets wrong code show itself.
					time.AfterFunc(50*time.Millisecond, func() { close(release) })
				}
				mu.Unlock()
				<-release // the first `want` hosts wait for each other, proving they overlap
				mu.Lock()
				inflight--
				mu.Unlock()
				return nil
			}
		}
		_, err := l.engine(t, Options{Parallel: limit}).Run(context.Background(), []Phase{
			ForEachHost("work", func(ctx context.Context, n *Node) error {
				_, err := n.Exec(ctx, "work", remote.Cmd{Line: "work"})
				return err
			}),
		})
		if err != nil {
			t.Fatal(err)
		}
		if peak != want {
			t.Errorf("limit %d: %d hosts worked at once, want %d", limit, peak, want)
		}
	}
}

// failing returns a node whose `systemctl ... containerd` fails, like a broken unit.
func failing(name string) *remotetest.Fake {
	return remotetest.New(name).
		OnRule(remotetest.Rule{Pattern: regexpMust(`containerd$`), Stderr: "Job for containerd.service failed.\n", Exit: 1}).
		On(".", "", 0)
}

func TestHostFailureAndResume(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, "lab1", "lab2", "lab3")
	l.nodes["lab2"].setFake(failing("lab2"))
	s, err := l.engine(t, Options{}).Run(ctx, testPipeline(t))

	var hf *HostsFailedError
	if !errors.As(err, &hf) || len(hf.Hosts) != 1 || hf.Hosts[0].Name != "lab2" {
		t.Fatalf("err = %v, want lab2 failed", err)
	}
	st := map[string]HostSummary{}
	for _, h := range s.Hosts {
		st[h.Name] = h
	}
	h2 := st["lab2"]
	if h2.Status != StatusFailed || h2.Phase != "containerd" || !strings.Contains(h2.Err.Error(), "exit status 1") ||
		!strings.Contains(h2.Hint, filepath.Join(l.dir, "logs", "lab2.log")) {
		t.Errorf("lab2: %+v", h2)
	}
	if st["lab1"].Status != StatusDone || st["lab3"].Status != StatusDone {
		t.Errorf("others: %+v %+v", st["lab1"], st["lab3"])
	}
	if p := s.Phases[1]; p.Done != 2 || p.Failed != 1 {
		t.Errorf("containerd phase: %+v", p)
	}
	if _, ok := l.nodes["lab1"].file(MarkerDir + "/registry-auth"); !ok {
		t.Error("lab1 did not finish the registry phase")
	}
	recs := l.lastRun(t)
	var failRec *Record
	for i, r := range recs {
		if r.Kind == KindHostFailed {
			failRec = &recs[i]
		}
	}
	if failRec == nil || failRec.Host != "lab2" || failRec.Phase != "containerd" || failRec.Hint == "" ||
		!strings.Contains(failRec.Error, "Job for containerd.service failed") {
		t.Fatalf("journal's host-failed record: %+v", failRec)
	}
	left := Unfinished(recs)
	if left == nil || !strings.Contains(left.String(), `lab2 failed in phase "containerd"`) {
		t.Fatalf("Unfinished = %v", left)
	}
	l.mutations()

	// Fix lab2 and run again: what was marked done is skipped, the failed step runs.
	l.nodes["lab2"].setFake(remotetest.New("lab2").On(".", "", 0))
	var started []RunStarted
	s, err = l.engine(t, Options{Events: func(ev Event) {
		if e, ok := ev.(RunStarted); ok {
			started = append(started, e)
		}
	}}).Run(ctx, testPipeline(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(started) != 1 || !strings.Contains(started[0].Continuing, `lab2 failed in phase "containerd"`) {
		t.Errorf("RunStarted = %+v", started)
	}
	recs = l.lastRun(t)
	if !strings.Contains(recs[0].Reason, "lab2 failed") {
		t.Errorf("run-started record: %+v", recs[0])
	}
	for _, c := range []struct {
		kind       RecordKind
		host, step string
		want       int
	}{
		{KindStepSkipped, "lab2", "sysctl-apply", 1},
		{KindStepStarted, "lab2", "sysctl-apply", 0},
		{KindStepDone, "lab2", "containerd-start", 1},
		{KindStepStarted, "lab1", "", 0},
		{KindStepStarted, "lab3", "", 0},
		{KindStepSkipped, "lab1", "", 3},
		{KindStepSkipped, "lab3", "", 2},
	} {
		if got := count(recs, c.kind, c.host, c.step); got != c.want {
			t.Errorf("%s %s %s: %d records, want %d", c.kind, c.host, c.step, got, c.want)
		}
	}
	m := l.mutations()
	if len(m["lab1"]) != 0 || len(m["lab3"]) != 0 {
		t.Errorf("healthy hosts were changed again: %q", m)
	}
	if !slices.ContainsFunc(m["lab2"], func(s string) bool { return strings.Contains(s, "restart containerd") }) ||
		slices.Contains(m["lab2"], "sysctl --system") {
		t.Errorf("lab2 calls: %q", m["lab2"])
	}
	if Unfinished(recs) != nil {
		t.Errorf("after a clean run, Unfinished = %v", Unfinished(recs))
	}
}

func TestSecondRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, "lab1", "lab2")
	if _, err := l.engine(t, Options{}).Run(ctx, testPipeline(t)); err != nil {
		t.Fatal(err)
	}
	if m := l.mutations(); len(m["lab1"]) == 0 || len(m["lab2"]) == 0 {
		t.Fatalf("first run changed nothing: %q", m)
	}
	s, err := l.engine(t, Options{}).Run(ctx, testPipeline(t))
	if err != nil {
		t.Fatal(err)
	}
	if m := l.mutations(); len(m) != 0 {
		t.Errorf("second run changed hosts: %q", m)
	}
	if s.Changes != 0 {
		t.Errorf("summary says %d changes", s.Changes)
	}
	recs := l.lastRun(t)
	for _, r := range recs {
		switch r.Kind {
		case KindStepStarted, KindStepDone, KindHostFailed:
			t.Errorf("second run: %+v", r)
		case KindStepSkipped:
			if !strings.HasPrefix(r.Reason, "done") {
				t.Errorf("skip reason %q", r.Reason)
			}
		case KindHostDone:
			if r.Changes != 0 {
				t.Errorf("host-done with changes: %+v", r)
			}
		}
	}
	if got := count(recs, KindStepSkipped, "", ""); got != 5 {
		t.Errorf("%d steps skipped, want 5", got)
	}
	if got := count(recs, KindStepSkipped, "lab1", "containerd-start"); got != 1 || recs[0].Kind != KindRunStarted {
		t.Errorf("containerd-start skipped %d times", got)
	}
	for _, r := range recs {
		if r.Kind == KindStepSkipped && r.Step == "containerd-start" && r.Reason != "done, verified" {
			t.Errorf("containerd-start: %q", r.Reason)
		}
	}
	last := recs[len(recs)-1]
	if last.Kind != KindRunFinished || last.Reason != "ok" || last.Changes != 0 {
		t.Errorf("last record %+v", last)
	}
}

func TestSecretsStayOut(t *testing.T) {
	l := newLab(t, "lab1")
	l.nodes["lab1"].setFake(remotetest.New("lab1").
		OnRule(remotetest.Rule{Pattern: regexpMust(`^htpasswd`), Stderr: "htpasswd: bad password " + registryPwd, Exit: 2}).
		On(".", "", 0))
	var events []Event
	s, err := l.engine(t, Options{Events: func(ev Event) { events = append(events, ev) }}).Run(context.Background(), testPipeline(t))
	if err == nil {
		t.Fatal("the failing htpasswd passed")
	}
	texts := map[string]string{"error": err.Error(), "hint": s.Hosts[0].Hint, "events": fmt.Sprintf("%+v", events)}
	for _, f := range []string{JournalFile, "logs/lab1.log"} {
		b, err := os.ReadFile(filepath.Join(l.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		texts[f] = string(b)
	}
	for name, txt := range texts {
		if strings.Contains(txt, registryPwd) {
			t.Errorf("%s holds the secret:\n%s", name, txt)
		}
	}
	if !strings.Contains(texts["logs/lab1.log"], "$ sysctl --system") || !strings.Contains(texts["logs/lab1.log"], "<redacted>") {
		t.Errorf("host log:\n%s", texts["logs/lab1.log"])
	}
	for _, f := range []string{JournalFile, "logs/lab1.log", "logs"} {
		st, err := os.Stat(filepath.Join(l.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if want := os.FileMode(0o600); st.IsDir() {
			if st.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %v", f, st.Mode())
			}
		} else if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v", f, st.Mode())
		}
	}
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }

func TestLinkLostMidway(t *testing.T) {
	l := newLab(t, "lab1", "lab2", "lab3")
	// lab1 (the registry) drops off the network after node prep.
	l.nodes["lab1"].setFake(remotetest.New("lab1").
		OnRule(remotetest.Rule{Pattern: regexpMust(`^systemctl`), Err: &remote.DialError{Host: "lab1", Address: "10.99.0.11:22", Err: errors.New("no route to host")}}).
		On(".", "", 0))
	var failed []HostFailed
	s, err := l.engine(t, Options{Events: func(ev Event) {
		if e, ok := ev.(HostFailed); ok {
			failed = append(failed, e)
		}
	}}).Run(context.Background(), testPipeline(t))
	var de *remote.DialError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want the DialError inside", err)
	}
	if len(failed) != 1 || failed[0].Host != "lab1" || failed[0].Phase != "containerd" || !strings.Contains(failed[0].Hint, "sshd") {
		t.Errorf("HostFailed events: %+v", failed)
	}
	// The registry phase has no healthy host left to run on.
	if p := s.Phases[2]; p.Skipped != 1 || p.Done != 0 || p.Failed != 0 {
		t.Errorf("registry phase: %+v", p)
	}
	if s.Hosts[1].Status != StatusDone || s.Hosts[2].Status != StatusDone {
		t.Errorf("hosts: %+v", s.Hosts)
	}
}

// failPhase is a cluster-wide phase that fails.
type failPhase struct{}

func (failPhase) Title() string { return "certificates" }
func (failPhase) Run(ctx context.Context, env *Env) error {
	return errors.New("no CA key in the workdir")
}

func TestPhaseFailureStopsThePipeline(t *testing.T) {
	l := newLab(t, "lab1", "lab2")
	p := testPipeline(t)
	s, err := l.engine(t, Options{}).Run(context.Background(), []Phase{p[0], failPhase{}, p[1]})
	if err == nil || !strings.Contains(err.Error(), `phase "certificates": no CA key`) {
		t.Fatalf("err = %v", err)
	}
	for _, h := range s.Hosts {
		if h.Status != StatusStopped {
			t.Errorf("%s: %s", h.Name, h.Status)
		}
	}
	if s.Phases[2].Ran {
		t.Error("the phase after the failure ran")
	}
	recs := l.lastRun(t)
	if count(recs, KindPhaseFailed, "", "") != 1 || count(recs, KindHostStarted, "", "") != 2 {
		t.Errorf("journal: %+v", recs)
	}
	if left := Unfinished(recs); left == nil || !strings.Contains(left.String(), `phase "certificates" failed`) {
		t.Errorf("Unfinished = %v", left)
	}
}
