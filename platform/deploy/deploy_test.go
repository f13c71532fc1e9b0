package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/kubetest"
	"github.com/wutong-paas/wutong-offline/platform/render"
	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// neverReady marks the pods of the v3 component that never become ready.
const neverReady = render.LabelComponent + "=newcomer"

var (
	cpOnce sync.Once
	cp     *kubetest.ControlPlane
)

// env is one test's world: a control plane (shared by the package's tests), a store with a team and the demo app's
// versions, and a started deployer.
type env struct {
	t        *testing.T
	ctx      context.Context
	st       *store.Store
	d        *Deployer
	team     store.Team
	versions map[string]*store.Version
	cp       *kubetest.ControlPlane
}

func newEnv(t *testing.T, team string) *env {
	t.Helper()
	c := kubetest.Start(t, kubetest.Options{NeverReady: neverReady, Volumes: 16})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := storetest.Open(t, store.DialectSQLite)
	e := &env{t: t, ctx: ctx, st: st, cp: c, versions: map[string]*store.Version{}}
	e.team = store.Team{Name: team}
	if err := st.CreateTeam(ctx, &e.team); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		e.versions[v] = storetest.RecordAppFile(t, st, e.team.ID, filepath.Join("testdata", "demo-"+v+".yaml"))
	}
	e.d = e.deployer()
	return e
}

func (e *env) deployer() *Deployer {
	e.t.Helper()
	d, err := New(e.ctx, Options{Store: e.st, Clusters: []Cluster{{Name: LocalCluster, Config: e.cp.Config}},
		ComponentTimeout: 20 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := d.Start(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// run carries the revision through and returns the install afterwards.
func (e *env) run(inst *store.Install, rev *store.Revision) *store.Install {
	e.t.Helper()
	if err := e.d.Run(e.ctx, inst.ID, rev.Number); err != nil {
		e.t.Fatalf("run revision %d: %v", rev.Number, err)
	}
	now, err := e.st.Install(e.ctx, inst.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return now
}

func (e *env) get(kind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	switch kind {
	case "Deployment", "StatefulSet":
		u.SetAPIVersion("apps/v1")
	default:
		u.SetAPIVersion("v1")
	}
	u.SetKind(kind)
	c := e.d.clusters[LocalCluster]
	ri, err := c.resource(u.GroupVersionKind(), ns)
	if err != nil {
		return nil, err
	}
	return ri.Get(e.ctx, name, metav1.GetOptions{})
}

func (e *env) mustExist(kind, ns, name string) *unstructured.Unstructured {
	e.t.Helper()
	u, err := e.get(kind, ns, name)
	if err != nil {
		e.t.Fatalf("%s/%s: %v", kind, name, err)
	}
	return u
}

// mustBeGone waits a little for a deleted object to go (a StatefulSet's or Deployment's deletion is immediate, but
// a finalizer may hold it briefly).
func (e *env) mustBeGone(kind, ns, name string) {
	e.t.Helper()
	for i := 0; ; i++ {
		u, err := e.get(kind, ns, name)
		if apierrors.IsNotFound(err) {
			return
		}
		if err == nil && u.GetDeletionTimestamp() != nil && i < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		e.t.Fatalf("%s/%s should be gone, but: err=%v", kind, name, err)
	}
}

// matchesRevision checks that every object of the revision is on the cluster with every field the revision sets.
func (e *env) matchesRevision(inst *store.Install, number int) {
	e.t.Helper()
	m, err := e.d.manifest(e.ctx, inst.ID, number)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, want := range m.Objects() {
		got := e.mustExist(want.GetKind(), want.GetNamespace(), want.GetName())
		for _, field := range []string{"spec", "data", "stringData"} {
			w, ok := want.Object[field]
			if !ok {
				continue
			}
			if path, ok := subset(w, got.Object[field]); !ok {
				e.t.Errorf("%s/%s: .%s%s differs from revision %d", want.GetKind(), want.GetName(), field, path, number)
			}
		}
	}
}

// subset reports whether every field of want is in got with the same value; path says where not.
func subset(want, got any) (string, bool) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return "", false
		}
		for k, v := range w {
			if p, ok := subset(v, g[k]); !ok {
				return "." + k + p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return "", false
		}
		for i := range w {
			if p, ok := subset(w[i], g[i]); !ok {
				return fmt.Sprintf("[%d]%s", i, p), false
			}
		}
		return "", true
	}
	return "", fmt.Sprint(want) == fmt.Sprint(got)
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t, "blue")
	ns := e.d.Namespace("blue")

	// Install 1.0.0.
	inst, rev, err := e.d.Install(e.ctx, InstallRequest{Team: e.team, Version: e.versions["1.0.0"], User: 0})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Name != "demo" || inst.Namespace != ns || rev.Number != 1 || inst.State != store.InstallDeploying {
		t.Fatalf("install: %+v, revision %d", inst, rev.Number)
	}
	inst = e.run(inst, rev)
	if inst.State != store.InstallReady || inst.Deployed != 1 || inst.Version != "1.0.0" {
		t.Fatalf("after install: state %s, deployed %d, version %q, message %q", inst.State, inst.Deployed, inst.Version, inst.Message)
	}
	e.matchesRevision(inst, 1)
	st, err := e.d.Status(e.ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != api.StateReady || len(st.Components) != 4 {
		t.Fatalf("status: %+v", st)
	}
	for _, c := range st.Components {
		if c.Ready != c.Desired || len(c.Pods) != c.Desired {
			t.Errorf("component %s: %d/%d ready, %d pods", c.Name, c.Ready, c.Desired, len(c.Pods))
		}
		for _, p := range c.Pods {
			if p.Node == "" || p.Phase != "Running" || !p.Ready {
				t.Errorf("pod %+v", p)
			}
		}
	}
	// kv (stateful) started before web, which depends on it.
	kv, web := e.mustExist("StatefulSet", ns, "kv"), e.mustExist("Deployment", ns, "web")
	if web.GetCreationTimestamp().Time.Before(kv.GetCreationTimestamp().Time) {
		t.Errorf("web (%s) was made before kv (%s), which it depends on", web.GetCreationTimestamp(), kv.GetCreationTimestamp())
	}

	// The preview of 2.0.0: front renamed to portal, old removed, extra added; the API server accepts it all.
	up2 := UpgradeRequest{Install: inst, Version: e.versions["2.0.0"]}
	plan, err := e.d.Plan(e.ctx, up2)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Accepted {
		t.Fatalf("dry run refused: %+v", plan.Verdicts)
	}
	var changes render.Changes
	if err := jsonUnmarshal(plan.Changes, &changes); err != nil {
		t.Fatal(err)
	}
	text := changes.String()
	for _, want := range []string{"portal", "front", "old", "extra", "web"} {
		if !strings.Contains(text, want) {
			t.Errorf("the preview does not mention %s:\n%s", want, text)
		}
	}
	if again, _ := e.st.Install(e.ctx, inst.ID); again.Revision != 1 {
		t.Fatalf("a dry run recorded a revision: %+v", again)
	}

	// 1.0.1 grows kv's volume, which a StatefulSet cannot change: refused before anything is applied or recorded,
	// in the preview too, naming the component and the volume.
	v101 := storetest.RecordAppFile(t, e.st, e.team.ID, filepath.Join("testdata", "demo-1.0.1.yaml"))
	up101 := UpgradeRequest{Install: inst, Version: v101}
	_, planErr := e.d.Plan(e.ctx, up101)
	_, _, upErr := e.d.Upgrade(e.ctx, up101)
	for _, err := range []error{planErr, upErr} {
		var inv *InvalidError
		if !errors.As(err, &inv) || !strings.Contains(err.Error(), "component kv, volume data (StatefulSet/kv): size 1Gi -> 2Gi") {
			t.Errorf("an upgrade that grows a stateful volume: %v", err)
		}
	}
	if again, _ := e.st.Install(e.ctx, inst.ID); again.Revision != 1 || again.State != store.InstallReady {
		t.Fatalf("a refused upgrade recorded a revision: %+v", again)
	}

	// Upgrade to 2.0.0.
	inst, rev, err = e.d.Upgrade(e.ctx, up2)
	if err != nil {
		t.Fatal(err)
	}
	// A second change while this one is pending is refused.
	if _, _, err := e.d.Upgrade(e.ctx, UpgradeRequest{Install: inst, Version: e.versions["2.0.0"]}); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("a concurrent upgrade: got %v, want ErrBusy", err)
	}
	inst = e.run(inst, rev)
	if inst.State != store.InstallReady || inst.Deployed != 2 || inst.Version != "2.0.0" {
		t.Fatalf("after upgrade: %+v", inst)
	}
	e.matchesRevision(inst, 2)
	// portal kept front's Deployment, and so its volume; old's Deployment is gone, its volume is not.
	front := e.mustExist("Deployment", ns, "front")
	if front.GetLabels()[render.LabelComponent] != "portal" {
		t.Errorf("the renamed component's workload has labels %v", front.GetLabels())
	}
	e.mustExist("PersistentVolumeClaim", ns, "front-cache")
	e.mustBeGone("Deployment", ns, "old")
	e.mustExist("PersistentVolumeClaim", ns, "old-files")
	e.mustExist("Deployment", ns, "extra")

	// 3.0.0 never becomes ready: it is rolled back to revision 2 automatically.
	inst, rev, err = e.d.Upgrade(e.ctx, UpgradeRequest{Install: inst, Version: e.versions["3.0.0"]})
	if err != nil {
		t.Fatal(err)
	}
	inst = e.run(inst, rev)
	if inst.State != store.InstallRolledBack || inst.Deployed != 4 || inst.Version != "2.0.0" || inst.Revision != 4 {
		t.Fatalf("after the failed upgrade: %+v", inst)
	}
	r3, err := e.st.Revision(e.ctx, inst.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	if r3.Outcome != store.OutcomeFailed || !strings.Contains(r3.Message, "newcomer") || !strings.Contains(r3.Message, "not ready") {
		t.Errorf("revision 3: %s %q", r3.Outcome, r3.Message)
	}
	r4, err := e.st.Revision(e.ctx, inst.ID, 4)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := e.st.Revision(e.ctx, inst.ID, 2)
	if r4.Reason != store.ReasonAutoRollback || r4.From != 2 || r4.Outcome != store.OutcomeSucceeded || r4.Digest != r2.Digest {
		t.Errorf("revision 4: %+v", r4)
	}
	e.matchesRevision(inst, 2)
	e.mustBeGone("Deployment", ns, "newcomer")
	e.mustExist("PersistentVolumeClaim", ns, "newcomer-state")

	// A manual rollback to revision 1 brings old back and removes extra.
	inst, rev, err = e.d.Rollback(e.ctx, RollbackRequest{Install: inst, To: 1})
	if err != nil {
		t.Fatal(err)
	}
	inst = e.run(inst, rev)
	if inst.State != store.InstallReady || inst.Version != "1.0.0" {
		t.Fatalf("after rollback: %+v", inst)
	}
	e.matchesRevision(inst, 1)
	e.mustBeGone("Deployment", ns, "extra")
	if got := e.mustExist("Deployment", ns, "front").GetLabels()[render.LabelComponent]; got != "front" {
		t.Errorf("front's component label after rollback: %q", got)
	}
	// Rolling back to a failed revision is refused.
	if _, _, err := e.d.Rollback(e.ctx, RollbackRequest{Install: inst, To: 3}); err == nil {
		t.Error("a rollback to a failed revision was accepted")
	}

	// Another install of the same app in the same namespace would take over demo's objects: refused.
	other := store.Team{ID: e.team.ID, Name: e.team.Name}
	if _, _, err := e.d.Install(e.ctx, InstallRequest{Team: other, Name: "demo2", Version: e.versions["1.0.0"]}); err == nil || !errors.As(err, new(*ConflictError)) {
		t.Errorf("a clashing install: %v", err)
	}

	// Uninstall keeps the volumes.
	kept, err := e.d.Kept(e.ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.d.Uninstall(e.ctx, inst, false); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"web", "front", "old"} {
		e.mustBeGone("Deployment", ns, n)
	}
	e.mustBeGone("StatefulSet", ns, "kv")
	for _, pvc := range []string{"front-cache", "old-files", "newcomer-state", "data-kv-0"} {
		e.mustExist("PersistentVolumeClaim", ns, pvc)
		if !contains(kept, pvc) {
			t.Errorf("Kept does not list %s: %v", pvc, kept)
		}
	}
	if _, err := e.st.Install(e.ctx, inst.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the install is still recorded: %v", err)
	}
}

// TestResume: a server stopped in the middle of a revision leaves it pending; a new deployer finds it and finishes.
func TestResume(t *testing.T) {
	e := newEnv(t, "green")
	inst, rev, err := e.d.Install(e.ctx, InstallRequest{Team: e.team, Version: e.versions["1.0.0"]})
	if err != nil {
		t.Fatal(err)
	}
	inst = e.run(inst, rev)
	inst, rev, err = e.d.Upgrade(e.ctx, UpgradeRequest{Install: inst, Version: e.versions["2.0.0"]})
	if err != nil {
		t.Fatal(err)
	}
	// Stop the run once its first objects are applied.
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.d.Run(ctx, inst.ID, rev.Number) }()
	for i := 0; i < 200; i++ {
		if _, err := e.get("Deployment", inst.Namespace, "extra"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted run: %v", err)
	}
	pend, err := e.st.PendingRevisions(e.ctx)
	if err != nil || len(pend) != 1 || pend[0].Number != 2 {
		t.Fatalf("pending after the interruption: %v %+v", err, pend)
	}
	// A new deployer (a restarted server) resumes it.
	d2 := e.deployer()
	pend, err = d2.Pending(e.ctx)
	if err != nil || len(pend) != 1 {
		t.Fatalf("%v %+v", err, pend)
	}
	if err := d2.Run(e.ctx, pend[0].InstallID, pend[0].Number); err != nil {
		t.Fatal(err)
	}
	now, _ := e.st.Install(e.ctx, inst.ID)
	if now.State != store.InstallReady || now.Deployed != 2 {
		t.Fatalf("after resuming: %+v", now)
	}
	if pend, _ := e.st.PendingRevisions(e.ctx); len(pend) != 0 {
		t.Fatalf("still pending: %+v", pend)
	}
	e.d = d2
	e.matchesRevision(now, 2)

	// A crash between a failed upgrade and its automatic rollback: the next start begins the rollback.
	_, rev3, err := e.d.Upgrade(e.ctx, UpgradeRequest{Install: now, Version: e.versions["1.0.0"]})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.FinishRevision(e.ctx, now.ID, rev3.Number, store.OutcomeFailed, "made to fail by the test", store.InstallDeploying); err != nil {
		t.Fatal(err)
	}
	d3 := e.deployer()
	pend, err = d3.Pending(e.ctx)
	if err != nil || len(pend) != 1 || pend[0].Reason != store.ReasonAutoRollback || pend[0].From != 2 {
		t.Fatalf("pending after a crash before the rollback began: %v %+v", err, pend)
	}
	if err := d3.Run(e.ctx, now.ID, pend[0].Number); err != nil {
		t.Fatal(err)
	}
	if now, _ = e.st.Install(e.ctx, now.ID); now.State != store.InstallRolledBack || now.Version != "2.0.0" {
		t.Fatalf("after the resumed rollback: %+v", now)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
