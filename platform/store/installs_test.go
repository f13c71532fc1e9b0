package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// world is what installs need: a cluster, two teams, an app of ops with two versions and a user.
type world struct {
	cluster  *store.Cluster
	ops, dev *store.Team
	app      *store.App
	bob      *store.User
}

func mkWorld(t *testing.T, s *store.Store) *world {
	t.Helper()
	w := &world{ops: mkTeam(t, s, "ops"), dev: mkTeam(t, s, "dev"), bob: mkUser(t, s, "bob")}
	var err error
	w.cluster, err = s.EnsureCluster(ctx, "local", "https://kubernetes.default.svc")
	must(t, err)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		_, err := s.RecordVersion(ctx, w.ops.ID, store.App{Key: "demo", Name: "Demo"}, version("demo", v, "c"+v))
		must(t, err)
	}
	w.app, err = s.AppByKey(ctx, "demo")
	must(t, err)
	return w
}

// objects is a rendered object set whose bytes a store must keep exactly (spacing, non-ASCII, a trailing newline).
func objects(tag string) []byte {
	return []byte(`[ {"kind":"Deployment", "name":"` + tag + `", "note":"héllo\u00e9 ✓"} ]` + "\n")
}

func rev(v string, reason store.RevisionReason, from int, tag string) *store.Revision {
	return &store.Revision{Version: v, Reason: reason, From: from, Values: []byte(`{"replicas":2}`), Objects: objects(tag)}
}

// mkInstall creates install name of team in w's cluster, its first revision pending.
func mkInstall(t *testing.T, s *store.Store, w *world, team *store.Team, name string) *store.Install {
	t.Helper()
	in := &store.Install{Name: name, ClusterID: w.cluster.ID, Namespace: "wt-" + team.Name, TeamID: team.ID,
		AppID: w.app.ID, CreatedBy: w.bob.ID}
	must(t, s.CreateInstall(ctx, in, rev("1.0.0", store.ReasonInstall, 0, name+"-1")))
	return in
}

func count(t *testing.T, s *store.Store, table string) int {
	t.Helper()
	n, err := store.CountRowsForTest(ctx, s, table)
	must(t, err)
	return n
}

func TestClusters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, err := s.EnsureCluster(ctx, "local", "https://a")
		must(t, err)
		if a.ID == 0 || a.Name != "local" || a.Server != "https://a" {
			t.Errorf("EnsureCluster = %+v", a)
		}
		recent(t, "CreatedAt", a.CreatedAt)
		again, err := s.EnsureCluster(ctx, "local", "https://b")
		must(t, err)
		if again.ID != a.ID || again.Server != "https://b" || !again.CreatedAt.Equal(a.CreatedAt) {
			t.Errorf("EnsureCluster again = %+v, want the same row (%+v) with the new server", again, a)
		}
		_, err = s.EnsureCluster(ctx, "edge", "")
		must(t, err)
		got, err := s.Cluster(ctx, "local")
		must(t, err)
		if !reflect.DeepEqual(got, again) {
			t.Errorf("Cluster = %+v, want %+v", got, again)
		}
		_, err = s.Cluster(ctx, "nope")
		wantNotFound(t, err, `cluster "nope"`)
		list, err := s.Clusters(ctx)
		must(t, err)
		if len(list) != 2 || list[0].Name != "edge" || list[1].Name != "local" {
			t.Errorf("Clusters = %+v, want edge and local", list)
		}
		for _, bad := range []string{"", "Local", "-x", "a_b", strings.Repeat("a", 64)} {
			if _, err := s.EnsureCluster(ctx, bad, ""); err == nil || !strings.Contains(err.Error(), "DNS label") {
				t.Errorf("EnsureCluster(%q) = %v, want a DNS label error", bad, err)
			}
		}
	})
}

func TestCreateInstall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := mkWorld(t, s)
		r1 := &store.Revision{Version: "1.0.0", Values: []byte("null"), Objects: objects("web-1")} // no reason, values, digest or user
		web := &store.Install{Name: "web", ClusterID: w.cluster.ID, Namespace: "wt-ops", TeamID: w.ops.ID,
			AppID: w.app.ID, CreatedBy: w.bob.ID, Message: "installing"}
		must(t, s.CreateInstall(ctx, web, r1))
		if web.ID == 0 || web.Cluster != "local" || web.Team != "ops" || web.AppKey != "demo" || web.Revision != 1 ||
			web.Deployed != 0 || web.Version != "" || web.State != store.InstallDeploying || !web.UpdatedAt.Equal(web.CreatedAt) {
			t.Errorf("CreateInstall filled in %+v", web)
		}
		recent(t, "CreatedAt", web.CreatedAt)
		want1 := store.Revision{InstallID: web.ID, Number: 1, Version: "1.0.0", Reason: store.ReasonInstall,
			Values: []byte("{}"), Objects: objects("web-1"), Digest: store.ObjectsDigest(objects("web-1")),
			Outcome: store.OutcomePending, CreatedBy: w.bob.ID, CreatedAt: web.CreatedAt}
		if !reflect.DeepEqual(*r1, want1) {
			t.Errorf("first revision = %+v\nwant %+v", *r1, want1)
		}
		if !strings.HasPrefix(r1.Digest, "sha256:") || len(r1.Digest) != len("sha256:")+64 {
			t.Errorf("Digest = %q", r1.Digest)
		}
		got, err := s.Revision(ctx, web.ID, 1)
		must(t, err)
		if !reflect.DeepEqual(*got, want1) {
			t.Errorf("Revision = %+v\nwant %+v", *got, want1)
		}

		gotIn, err := s.Install(ctx, web.ID)
		must(t, err)
		if !reflect.DeepEqual(gotIn, web) {
			t.Errorf("Install = %+v\nwant %+v", gotIn, web)
		}
		gotIn, err = s.InstallByName(ctx, w.ops.ID, "web")
		must(t, err)
		if !reflect.DeepEqual(gotIn, web) {
			t.Errorf("InstallByName = %+v\nwant %+v", gotIn, web)
		}
		_, err = s.Install(ctx, 999)
		wantNotFound(t, err, "install 999")
		_, err = s.InstallByName(ctx, w.dev.ID, "web")
		wantNotFound(t, err, `install "web" of team`)

		// The same name in the team clashes and writes nothing; in another team it is fine.
		dup := &store.Install{Name: "web", ClusterID: w.cluster.ID, Namespace: "wt-ops", TeamID: w.ops.ID, AppID: w.app.ID}
		wantConflict(t, s.CreateInstall(ctx, dup, rev("1.0.0", store.ReasonInstall, 0, "dup")), "install", "web", `taken in team "ops"`)
		if n := count(t, s, "revisions"); n != 1 {
			t.Errorf("after the clash there are %d revisions, want 1", n)
		}
		devWeb := mkInstall(t, s, w, w.dev, "web")
		mkInstall(t, s, w, w.ops, "api")
		mkInstall(t, s, w, w.dev, "api")
		if devWeb.ID == web.ID || devWeb.Team != "dev" {
			t.Errorf("dev's web = %+v", devWeb)
		}

		names := func(list []store.Install) (out []string) {
			for _, in := range list {
				out = append(out, in.Team+"/"+in.Name)
			}
			return out
		}
		for _, tt := range []struct {
			teams []int64
			want  []string
		}{
			{nil, []string{"dev/api", "dev/web", "ops/api", "ops/web"}},
			{[]int64{w.ops.ID}, []string{"ops/api", "ops/web"}},
			{[]int64{w.ops.ID, w.dev.ID}, []string{"dev/api", "dev/web", "ops/api", "ops/web"}},
			{[]int64{}, nil},
			{[]int64{999}, nil},
		} {
			list, err := s.Installs(ctx, tt.teams)
			must(t, err)
			if list == nil {
				t.Errorf("Installs(%v) = nil, want an empty list", tt.teams)
			}
			if got := names(list); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Installs(%v) = %v, want %v", tt.teams, got, tt.want)
			}
		}

		for _, tt := range []struct {
			name   string
			in     store.Install
			rev    *store.Revision
			errHas string
			nf     bool
		}{
			{"missing cluster", store.Install{Name: "x", ClusterID: 999, Namespace: "n", TeamID: w.ops.ID, AppID: w.app.ID}, rev("1.0.0", "", 0, "x"), "cluster 999", true},
			{"missing team", store.Install{Name: "x", ClusterID: w.cluster.ID, Namespace: "n", TeamID: 999, AppID: w.app.ID}, rev("1.0.0", "", 0, "x"), "team 999", true},
			{"missing app", store.Install{Name: "x", ClusterID: w.cluster.ID, Namespace: "n", TeamID: w.ops.ID, AppID: 999}, rev("1.0.0", "", 0, "x"), "app 999", true},
			{"missing user", store.Install{Name: "x", ClusterID: w.cluster.ID, Namespace: "n", TeamID: w.ops.ID, AppID: w.app.ID, CreatedBy: 999}, rev("1.0.0", "", 0, "x"), "user 999", true},
			{"bad name", store.Install{Name: "X_1", ClusterID: w.cluster.ID, Namespace: "n", TeamID: w.ops.ID, AppID: w.app.ID}, rev("1.0.0", "", 0, "x"), "DNS label", false},
			{"no namespace", store.Install{Name: "x", ClusterID: w.cluster.ID, TeamID: w.ops.ID, AppID: w.app.ID}, rev("1.0.0", "", 0, "x"), "namespace", false},
			{"no version", store.Install{Name: "x", ClusterID: w.cluster.ID, Namespace: "n", TeamID: w.ops.ID, AppID: w.app.ID}, rev("", "", 0, "x"), "version", false},
			{"rollback first", store.Install{Name: "x", ClusterID: w.cluster.ID, Namespace: "n", TeamID: w.ops.ID, AppID: w.app.ID}, rev("1.0.0", store.ReasonRollback, 0, "x"), "earlier revision", false},
			{"bad reason", store.Install{Name: "x", ClusterID: w.cluster.ID, Namespace: "n", TeamID: w.ops.ID, AppID: w.app.ID}, rev("1.0.0", "redo", 0, "x"), "reason", false},
			{"bad values", store.Install{Name: "x", ClusterID: w.cluster.ID, Namespace: "n", TeamID: w.ops.ID, AppID: w.app.ID}, &store.Revision{Version: "1.0.0", Values: []byte("{"), Objects: objects("x")}, "JSON", false},
			{"bad digest", store.Install{Name: "x", ClusterID: w.cluster.ID, Namespace: "n", TeamID: w.ops.ID, AppID: w.app.ID}, &store.Revision{Version: "1.0.0", Objects: objects("x"), Digest: "sha256:00"}, "digest", false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				in := tt.in
				err := s.CreateInstall(ctx, &in, tt.rev)
				if tt.nf {
					wantNotFound(t, err, tt.errHas)
				} else if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("CreateInstall = %v, want an error saying %q", err, tt.errHas)
				}
			})
		}
		if n, m := count(t, s, "installs"), count(t, s, "revisions"); n != 4 || m != 4 {
			t.Errorf("%d installs and %d revisions, want 4 of each", n, m)
		}
	})
}

// TestRevisionLifecycle walks an install through install, a failed upgrade with its automatic rollback, a manual
// rollback, and the errors on the way.
func TestRevisionLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := mkWorld(t, s)
		web := mkInstall(t, s, w, w.ops, "web")
		id := web.ID

		// A second revision while the first is pending: busy, and nothing written.
		before, err := s.Install(ctx, id)
		must(t, err)
		err = s.BeginRevision(ctx, id, rev("1.1.0", store.ReasonUpgrade, 0, "web-x"))
		if !errors.Is(err, store.ErrBusy) {
			t.Fatalf("BeginRevision while pending = %v, want ErrBusy", err)
		}
		var busy *store.BusyError
		if !errors.As(err, &busy) || busy.Pending != 1 || busy.InstallID != id || busy.Install != "web" {
			t.Errorf("busy error = %#v, want pending revision 1 of web", busy)
		}
		after, err := s.Install(ctx, id)
		must(t, err)
		if !reflect.DeepEqual(after, before) || count(t, s, "revisions") != 1 {
			t.Errorf("the refused BeginRevision wrote: install %+v (was %+v), %d revisions", after, before, count(t, s, "revisions"))
		}

		type step struct {
			name    string
			begin   *store.Revision // nil: only finish
			number  int             // expected number of the begun revision
			outcome store.Outcome
			msg     string
			state   store.InstallState
			// the install afterwards
			version  string
			revision int
			deployed int
		}
		steps := []step{
			{name: "install succeeds", number: 1, outcome: store.OutcomeSucceeded, msg: "", state: store.InstallReady,
				version: "1.0.0", revision: 1, deployed: 1},
			{name: "upgrade fails", begin: rev("1.1.0", store.ReasonUpgrade, 0, "web-2"), number: 2, outcome: store.OutcomeFailed,
				msg: "pod web-0: CrashLoopBackOff", state: store.InstallDeploying, version: "1.0.0", revision: 2, deployed: 1},
			{name: "auto-rollback succeeds", begin: rev("1.0.0", store.ReasonAutoRollback, 1, "web-1"), number: 3,
				outcome: store.OutcomeSucceeded, msg: "upgrade to 1.1.0 failed; rolled back to revision 1", state: store.InstallRolledBack,
				version: "1.0.0", revision: 3, deployed: 3},
			{name: "upgrade succeeds", begin: rev("1.1.0", store.ReasonUpgrade, 0, "web-4"), number: 4, outcome: store.OutcomeSucceeded,
				state: store.InstallReady, version: "1.1.0", revision: 4, deployed: 4},
			{name: "rollback fails", begin: rev("1.0.0", store.ReasonRollback, 3, "web-1"), number: 5, outcome: store.OutcomeFailed,
				msg: "timed out", state: store.InstallFailed, version: "1.1.0", revision: 5, deployed: 4},
		}
		for _, st := range steps {
			if st.begin != nil {
				st.begin.CreatedBy = w.bob.ID
				must(t, s.BeginRevision(ctx, id, st.begin))
				if st.begin.Number != st.number || st.begin.InstallID != id || st.begin.Outcome != store.OutcomePending {
					t.Fatalf("%s: begun revision %+v, want number %d", st.name, st.begin, st.number)
				}
				recent(t, "CreatedAt", st.begin.CreatedAt)
				in, err := s.Install(ctx, id)
				must(t, err)
				if in.State != store.InstallDeploying || in.Revision != st.number || in.Message != "" {
					t.Errorf("%s: after BeginRevision the install is %+v", st.name, in)
				}
			}
			must(t, s.FinishRevision(ctx, id, st.number, st.outcome, st.msg, st.state))
			in, err := s.Install(ctx, id)
			must(t, err)
			if in.State != st.state || in.Message != st.msg || in.Version != st.version || in.Revision != st.revision ||
				in.Deployed != st.deployed {
				t.Errorf("%s: install %+v, want state %s, message %q, version %s, revision %d, deployed %d",
					st.name, in, st.state, st.msg, st.version, st.revision, st.deployed)
			}
			r, err := s.Revision(ctx, id, st.number)
			must(t, err)
			if r.Outcome != st.outcome || r.Message != st.msg || r.FinishedAt.IsZero() || r.FinishedAt.Before(r.CreatedAt) {
				t.Errorf("%s: revision %+v", st.name, r)
			}
		}

		// Finishing twice, or what does not exist, or with a bad outcome or state.
		wantConflict(t, s.FinishRevision(ctx, id, 5, store.OutcomeSucceeded, "", store.InstallReady), "revision", "web#5", "already finished (failed)")
		wantNotFound(t, s.FinishRevision(ctx, id, 6, store.OutcomeSucceeded, "", store.InstallReady), "revision 6 of install")
		wantNotFound(t, s.FinishRevision(ctx, 999, 1, store.OutcomeSucceeded, "", store.InstallReady), "install 999")
		if err := s.FinishRevision(ctx, id, 5, store.OutcomePending, "", store.InstallReady); err == nil {
			t.Error("FinishRevision with outcome pending succeeded")
		}
		if err := s.FinishRevision(ctx, id, 5, store.OutcomeFailed, "", "degraded"); err == nil {
			t.Error("FinishRevision with state degraded succeeded")
		}
		r5, err := s.Revision(ctx, id, 5)
		must(t, err)
		if r5.Outcome != store.OutcomeFailed || r5.Message != "timed out" {
			t.Errorf("finishing again changed revision 5: %+v", r5)
		}

		// Bad From values, and a missing install, write nothing.
		for _, bad := range []*store.Revision{
			rev("1.0.0", store.ReasonRollback, 0, "x"),
			rev("1.0.0", store.ReasonRollback, 6, "x"),
			rev("1.0.0", store.ReasonUpgrade, 2, "x"),
			rev("1.0.0", "", 0, "x"),
		} {
			if err := s.BeginRevision(ctx, id, bad); err == nil || errors.Is(err, store.ErrBusy) {
				t.Errorf("BeginRevision(%s from %d) = %v, want an error", bad.Reason, bad.From, err)
			}
		}
		wantNotFound(t, s.BeginRevision(ctx, 999, rev("1.0.0", store.ReasonUpgrade, 0, "x")), "install 999")
		if in, err := s.Install(ctx, id); err != nil || in.Revision != 5 || in.State != store.InstallFailed || count(t, s, "revisions") != 5 {
			t.Errorf("refused revisions wrote: %+v, %v", in, err)
		}

		// Revisions: newest first, values but no objects.
		list, err := s.Revisions(ctx, id)
		must(t, err)
		var got []string
		for _, r := range list {
			got = append(got, fmt.Sprintf("%d:%s:%s:%d:%s", r.Number, r.Version, r.Reason, r.From, r.Outcome))
			if r.Objects != nil {
				t.Errorf("Revisions: revision %d has objects", r.Number)
			}
			if string(r.Values) != `{"replicas":2}` || r.Digest == "" || r.CreatedBy != w.bob.ID {
				t.Errorf("Revisions: revision %+v", r)
			}
		}
		want := []string{"5:1.0.0:rollback:3:failed", "4:1.1.0:upgrade:0:succeeded", "3:1.0.0:auto-rollback:1:succeeded",
			"2:1.1.0:upgrade:0:failed", "1:1.0.0:install:0:succeeded"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Revisions = %v\nwant %v", got, want)
		}
		if list, err := s.Revisions(ctx, 999); err != nil || list == nil || len(list) != 0 {
			t.Errorf("Revisions(999) = %v, %v; want an empty list", list, err)
		}
		// Revision: objects byte-exact.
		for n, tag := range map[int]string{1: "web-1", 2: "web-2", 3: "web-1", 4: "web-4"} {
			r, err := s.Revision(ctx, id, n)
			must(t, err)
			if !bytes.Equal(r.Objects, objects(tag)) || r.Digest != store.ObjectsDigest(objects(tag)) {
				t.Errorf("Revision %d objects = %q (%s), want %q", n, r.Objects, r.Digest, objects(tag))
			}
		}
		_, err = s.Revision(ctx, id, 9)
		wantNotFound(t, err, "revision 9 of install")

		// SetInstallState.
		must(t, s.SetInstallState(ctx, id, store.InstallUninstalling, "deleting objects"))
		in, err := s.Install(ctx, id)
		must(t, err)
		if in.State != store.InstallUninstalling || in.Message != "deleting objects" || !in.UpdatedAt.After(in.CreatedAt) {
			t.Errorf("after SetInstallState: %+v", in)
		}
		wantNotFound(t, s.SetInstallState(ctx, 999, store.InstallReady, ""), "install 999")
		if err := s.SetInstallState(ctx, id, "degraded", ""); err == nil {
			t.Error("SetInstallState(degraded) succeeded: degraded is computed, not stored")
		}
	})
}

// Many goroutines, on two store handles (as two servers would be), begin a revision of the same install at once:
// exactly one wins and the others are busy.
func TestBeginRevisionRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := mkWorld(t, s)
		web := mkInstall(t, s, w, w.ops, "web")
		must(t, s.FinishRevision(ctx, web.ID, 1, store.OutcomeSucceeded, "", store.InstallReady))
		other, err := store.Open(ctx, store.DSNForTest(s))
		must(t, err)
		defer other.Close()

		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			db := s
			if i%2 == 1 {
				db = other
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = db.BeginRevision(ctx, web.ID, rev("1.1.0", store.ReasonUpgrade, 0, fmt.Sprintf("web-%d", i)))
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrBusy):
			default:
				t.Errorf("goroutine %d: %v", i, err)
			}
		}
		if won != 1 {
			t.Errorf("%d goroutines began a revision, want exactly 1", won)
		}
		in, err := s.Install(ctx, web.ID)
		must(t, err)
		if in.Revision != 2 || in.State != store.InstallDeploying || count(t, s, "revisions") != 2 {
			t.Errorf("after the race: install %+v, %d revisions; want revision 2 of 2", in, count(t, s, "revisions"))
		}
		pending, err := s.PendingRevisions(ctx)
		must(t, err)
		if len(pending) != 1 || pending[0].Number != 2 {
			t.Errorf("PendingRevisions = %+v, want revision 2 only", pending)
		}
	})
}

// The database itself refuses a second pending revision of an install, whatever code writes it.
func TestOnePendingRevisionInDatabase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := mkWorld(t, s)
		web := mkInstall(t, s, w, w.ops, "web")
		insert := `INSERT INTO revisions (install_id, number, version, reason, from_number, values_json, objects, digest,
	outcome, message, created_by, created_at, finished_at) VALUES (?, ?, '1.0.0', 'upgrade', 0, '{}', ?, 'sha256:x', ?, '', NULL, 1, ?)`
		err := store.ExecForTest(ctx, s, insert, web.ID, 2, []byte("[]"), "pending", nil)
		if got := store.ViolationForTest(err); got != "unique" {
			t.Errorf("a second pending revision: %v (%q violation), want a unique violation", err, got)
		}
		// Finished revisions may be many; the outcome, the pending/finished time pairing and the state are checked.
		must(t, store.ExecForTest(ctx, s, insert, web.ID, 2, []byte("[]"), "failed", 5))
		for _, tt := range []struct {
			name string
			err  error
		}{
			{"unknown outcome", store.ExecForTest(ctx, s, insert, web.ID, 3, []byte("[]"), "lost", 5)},
			{"finished without a time", store.ExecForTest(ctx, s, insert, web.ID, 3, []byte("[]"), "failed", nil)},
			{"unknown state", store.ExecForTest(ctx, s, "UPDATE installs SET state = 'degraded' WHERE id = ?", web.ID)},
		} {
			if got := store.ViolationForTest(tt.err); got != "check" {
				t.Errorf("%s: %v (%q violation), want a check violation", tt.name, tt.err, got)
			}
		}
	})
}

// A server that stops with revisions pending finds them, objects and all, when it opens the database again.
func TestPendingRevisionsAfterRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := mkWorld(t, s)
		web := mkInstall(t, s, w, w.ops, "web") // revision 1 pending
		api := mkInstall(t, s, w, w.dev, "api")
		must(t, s.FinishRevision(ctx, api.ID, 1, store.OutcomeSucceeded, "", store.InstallReady))
		done := mkInstall(t, s, w, w.dev, "done")
		must(t, s.FinishRevision(ctx, done.ID, 1, store.OutcomeFailed, "boom", store.InstallFailed))
		up := rev("1.1.0", store.ReasonUpgrade, 0, "api-2")
		must(t, s.BeginRevision(ctx, api.ID, up))

		// The "crash": nothing is finished; the restarted server opens the same database anew.
		restarted, err := store.Open(ctx, store.DSNForTest(s))
		must(t, err)
		defer restarted.Close()
		pending, err := restarted.PendingRevisions(ctx)
		must(t, err)
		if len(pending) != 2 {
			t.Fatalf("PendingRevisions = %d revisions, want 2", len(pending))
		}
		for i, want := range []struct {
			install int64
			number  int
			objects []byte
		}{{web.ID, 1, objects("web-1")}, {api.ID, 2, objects("api-2")}} {
			p := pending[i]
			if p.InstallID != want.install || p.Number != want.number || !bytes.Equal(p.Objects, want.objects) ||
				p.Outcome != store.OutcomePending || !p.FinishedAt.IsZero() {
				t.Errorf("pending[%d] = %+v, want revision %d of install %d with objects %q", i, p, want.number, want.install, want.objects)
			}
		}
		if !reflect.DeepEqual(pending[1], *up) {
			t.Errorf("pending upgrade = %+v\nwant %+v", pending[1], *up)
		}
	})
}

func TestDeleteInstall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		w := mkWorld(t, s)
		web := mkInstall(t, s, w, w.ops, "web")
		must(t, s.FinishRevision(ctx, web.ID, 1, store.OutcomeSucceeded, "", store.InstallReady))
		must(t, s.BeginRevision(ctx, web.ID, rev("1.1.0", store.ReasonUpgrade, 0, "web-2")))
		keep := mkInstall(t, s, w, w.dev, "web")

		// Teams, apps and clusters with installs cannot be deleted; a deleted user leaves the installs unattributed.
		for _, tt := range []struct{ what, query string }{
			{"team", "DELETE FROM teams WHERE id = ?"},
			{"app", "DELETE FROM apps WHERE id = ?"},
			{"cluster", "DELETE FROM clusters WHERE id = ?"},
		} {
			id := map[string]int64{"team": w.ops.ID, "app": w.app.ID, "cluster": w.cluster.ID}[tt.what]
			if got := store.ViolationForTest(store.ExecForTest(ctx, s, tt.query, id)); got != "foreign key" {
				t.Errorf("deleting the %s with installs: %q violation, want a foreign key one", tt.what, got)
			}
		}
		must(t, store.ExecForTest(ctx, s, "DELETE FROM users WHERE id = ?", w.bob.ID))
		in, err := s.Install(ctx, web.ID)
		must(t, err)
		r, err := s.Revision(ctx, web.ID, 1)
		must(t, err)
		if in.CreatedBy != 0 || r.CreatedBy != 0 {
			t.Errorf("after deleting the user: install by %d, revision by %d; want 0", in.CreatedBy, r.CreatedBy)
		}

		must(t, s.DeleteInstall(ctx, web.ID))
		_, err = s.Install(ctx, web.ID)
		wantNotFound(t, err, fmt.Sprintf("install %d", web.ID))
		if list, err := s.Revisions(ctx, web.ID); err != nil || len(list) != 0 {
			t.Errorf("revisions of the deleted install: %v, %v", list, err)
		}
		if n := count(t, s, "revisions"); n != 1 {
			t.Errorf("%d revisions left, want 1 (of dev's web)", n)
		}
		if _, err := s.Install(ctx, keep.ID); err != nil {
			t.Errorf("the other install: %v", err)
		}
		wantNotFound(t, s.DeleteInstall(ctx, web.ID), fmt.Sprintf("install %d", web.ID))
		pending, err := s.PendingRevisions(ctx)
		must(t, err)
		if len(pending) != 1 || pending[0].InstallID != keep.ID {
			t.Errorf("PendingRevisions = %+v, want dev's web only", pending)
		}
	})
}

// The installs migration applies on top of a database an older wutong left at schema version 1, keeping its data.
func TestMigrateInstallsFromVersion1(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "old.db")
			if d == store.DialectPostgres {
				dsn = storetest.NewPostgresDatabase(t)
			}
			old, err := store.OpenAtVersionForTest(ctx, dsn, 1)
			must(t, err)
			if n := count(t, old, "schema_migrations"); n != 1 {
				t.Fatalf("the old database has %d migrations, want 1", n)
			}
			if err := store.ExecForTest(ctx, old, "SELECT COUNT(*) FROM installs"); err == nil {
				t.Fatal("the old database already has an installs table")
			}
			// What version 1 knows: teams, users, apps. (The cluster comes after the upgrade.)
			w := &world{ops: mkTeam(t, old, "ops"), bob: mkUser(t, old, "bob")}
			_, err = old.RecordVersion(ctx, w.ops.ID, store.App{Key: "demo", Name: "Demo"}, version("demo", "1.1.0", "c"))
			must(t, err)
			must(t, old.Close())

			s, err := store.Open(ctx, dsn)
			must(t, err)
			defer s.Close()
			want, err := store.SchemaVersion(d)
			must(t, err)
			if want < 2 {
				t.Fatalf("SchemaVersion = %d, want at least 2", want)
			}
			if n := count(t, s, "schema_migrations"); n != want {
				t.Errorf("schema_migrations has %d rows, want %d", n, want)
			}
			w.app, err = s.AppByKey(ctx, "demo")
			must(t, err)
			if w.app.LatestVersion != "1.1.0" {
				t.Errorf("the app after migrating: %+v", w.app)
			}
			w.cluster, err = s.EnsureCluster(ctx, "local", "")
			must(t, err)
			in := mkInstall(t, s, w, w.ops, "web")
			if in.Team != "ops" || in.AppKey != "demo" || in.Cluster != "local" {
				t.Errorf("install on the migrated database: %+v", in)
			}
			recent(t, "CreatedAt", in.CreatedAt)
		})
	}
}
