package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/app"
	"github.com/wutong-paas/wutong-offline/platform/render"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// LocalCluster is the name of the cluster the platform runs in.
const LocalCluster = "local"

// InstallRequest asks for an app version to be placed in a team's namespace.
type InstallRequest struct {
	Team    store.Team
	Name    string // a DNS label, unique in the team; default the app key
	Cluster string // default LocalCluster
	Version *store.Version
	Values  api.Values
	User    int64
}

// UpgradeRequest asks for an install to move to another version (or the same one with other values).
type UpgradeRequest struct {
	Install *store.Install
	Version *store.Version
	Values  *api.Values // nil keeps the values of the deployed revision
	User    int64
}

// RollbackRequest asks for an install to go back to an earlier revision's exact objects.
type RollbackRequest struct {
	Install *store.Install
	To      int // 0: the last succeeded revision before the deployed one
	User    int64
}

// InvalidError is a request that cannot be carried out as given; Message says what to change.
type InvalidError struct{ Message string }

func (e *InvalidError) Error() string { return e.Message }

// Install records a new install and its first revision (pending). Run it with Run.
func (d *Deployer) Install(ctx context.Context, req InstallRequest) (*store.Install, *store.Revision, error) {
	if req.Cluster == "" {
		req.Cluster = LocalCluster
	}
	if req.Name == "" {
		req.Name = req.Version.AppKey
	}
	if !labelRE.MatchString(req.Name) || len(req.Name) > 40 {
		return nil, nil, &InvalidError{Message: fmt.Sprintf("install name %q: use 1-40 lower-case letters, digits and '-', starting and ending with a letter or digit", req.Name)}
	}
	c, err := d.cluster(req.Cluster)
	if err != nil {
		return nil, nil, err
	}
	inst := &store.Install{Name: req.Name, ClusterID: c.id, Cluster: c.name, Namespace: d.Namespace(req.Team.Name),
		TeamID: req.Team.ID, Team: req.Team.Name, AppID: req.Version.AppID, AppKey: req.Version.AppKey, CreatedBy: req.User}
	m, err := d.render(req.Version, inst, 1, req.Values, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := c.ensureNamespace(ctx, inst.Namespace, req.Team.Name); err != nil {
		return nil, nil, err
	}
	if err := c.checkOwners(ctx, inst.Name, m); err != nil {
		return nil, nil, err
	}
	rev, err := newRevision(req.Version.Version, store.ReasonInstall, 0, req.Values, m, req.User)
	if err != nil {
		return nil, nil, err
	}
	if err := d.store.CreateInstall(ctx, inst, rev); err != nil {
		return nil, nil, err
	}
	return inst, rev, nil
}

// Upgrade records the next revision of an install for another version or other values. It refuses (store.ErrBusy)
// while another revision of the install is pending.
func (d *Deployer) Upgrade(ctx context.Context, req UpgradeRequest) (*store.Install, *store.Revision, error) {
	inst := req.Install
	m, values, err := d.planned(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	rev, err := newRevision(req.Version.Version, store.ReasonUpgrade, 0, values, m, req.User)
	if err != nil {
		return nil, nil, err
	}
	return d.begin(ctx, inst, rev)
}

// planned renders the revision an upgrade would apply, and the values it would keep.
func (d *Deployer) planned(ctx context.Context, req UpgradeRequest) (*render.Manifest, api.Values, error) {
	inst := req.Install
	if req.Version.AppKey != inst.AppKey {
		return nil, api.Values{}, &InvalidError{Message: fmt.Sprintf("install %s runs app %s, not %s: install %s separately",
			inst.Name, inst.AppKey, req.Version.AppKey, req.Version.AppKey)}
	}
	base, err := d.baseRevision(ctx, inst)
	if err != nil {
		return nil, api.Values{}, err
	}
	var values api.Values
	var prev *render.Manifest
	if base != nil {
		if err := json.Unmarshal(base.Values, &values); err != nil {
			return nil, api.Values{}, fmt.Errorf("read values of revision %d: %w", base.Number, err)
		}
		if prev, err = render.Decode(base.Objects); err != nil {
			return nil, api.Values{}, fmt.Errorf("read objects of revision %d: %w", base.Number, err)
		}
	}
	if req.Values != nil {
		values = *req.Values
	}
	m, err := d.render(req.Version, inst, inst.Revision+1, values, prev)
	if err != nil {
		return nil, api.Values{}, err
	}
	if ch := render.ImmutableVolumeChanges(prev, m); len(ch) > 0 {
		var lines []string
		for _, c := range ch {
			lines = append(lines, c.String())
		}
		return nil, api.Values{}, &InvalidError{Message: fmt.Sprintf("upgrade of %s to %s changes volumes that Kubernetes cannot change in place: %s. "+
			"Nothing was changed. Use a version that keeps these volumes as they are; a stateful component's volumes can "+
			"change only with a new StatefulSet: uninstall (the volumes are kept), then install the new version under the "+
			"same name, and the workload takes its volumes back", inst.Name, req.Version.Version, strings.Join(lines, "; "))}
	}
	return m, values, nil
}

// baseRevision is what an upgrade starts from: the deployed revision, else (nothing ever succeeded) the newest.
func (d *Deployer) baseRevision(ctx context.Context, inst *store.Install) (*store.Revision, error) {
	n := inst.Deployed
	if n == 0 {
		n = inst.Revision
	}
	if n == 0 {
		return nil, nil
	}
	r, err := d.store.Revision(ctx, inst.ID, n)
	if err != nil {
		return nil, fmt.Errorf("read revision %d of %s: %w", n, inst.Name, err)
	}
	return r, nil
}

// Plan previews an upgrade: the per-component changes from the deployed revision and the API server's dry-run
// verdict on every object. Nothing changes.
func (d *Deployer) Plan(ctx context.Context, req UpgradeRequest) (api.Plan, error) {
	inst := req.Install
	out := api.Plan{Install: inst.Name, FromVersion: inst.Version, ToVersion: req.Version.Version, Verdicts: []api.Verdict{}}
	c, err := d.cluster(inst.Cluster)
	if err != nil {
		return out, err
	}
	m, _, err := d.planned(ctx, req)
	if err != nil {
		return out, err
	}
	var prev *render.Manifest
	if base, err := d.baseRevision(ctx, inst); err != nil {
		return out, err
	} else if base != nil {
		if prev, err = render.Decode(base.Objects); err != nil {
			return out, err
		}
	}
	changes, err := json.Marshal(render.Compare(prev, m))
	if err != nil {
		return out, err
	}
	out.Changes, out.Accepted = changes, true
	for _, u := range m.Objects() {
		v := api.Verdict{Object: refOf(u).String()}
		if _, err := c.apply(ctx, u, true); err != nil {
			var ae *ApplyError
			if !errors.As(err, &ae) {
				return out, err
			}
			v.Error, out.Accepted = ae.Message, false
		}
		out.Verdicts = append(out.Verdicts, v)
	}
	return out, nil
}

// Rollback records a revision that re-applies an earlier revision's exact objects.
func (d *Deployer) Rollback(ctx context.Context, req RollbackRequest) (*store.Install, *store.Revision, error) {
	inst := req.Install
	to := req.To
	if to == 0 {
		revs, err := d.store.Revisions(ctx, inst.ID)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range revs { // newest first
			if r.Outcome == store.OutcomeSucceeded && r.Number < inst.Deployed && r.Digest != "" {
				to = r.Number
				break
			}
		}
		if to == 0 {
			return nil, nil, &InvalidError{Message: fmt.Sprintf("install %s has no succeeded revision before revision %d to roll back to; see its history",
				inst.Name, inst.Deployed)}
		}
	}
	target, err := d.store.Revision(ctx, inst.ID, to)
	if err != nil {
		return nil, nil, err
	}
	if target.Outcome != store.OutcomeSucceeded {
		return nil, nil, &InvalidError{Message: fmt.Sprintf("revision %d of %s %s; roll back to a revision that succeeded (see the history)",
			to, inst.Name, map[store.Outcome]string{store.OutcomePending: "is still in progress", store.OutcomeFailed: "failed"}[target.Outcome])}
	}
	rev := &store.Revision{Version: target.Version, Reason: store.ReasonRollback, From: to, Values: target.Values,
		Objects: target.Objects, Digest: target.Digest, Outcome: store.OutcomePending, CreatedBy: req.User}
	return d.begin(ctx, inst, rev)
}

// begin records rev as the install's next revision.
func (d *Deployer) begin(ctx context.Context, inst *store.Install, rev *store.Revision) (*store.Install, *store.Revision, error) {
	if err := d.store.BeginRevision(ctx, inst.ID, rev); err != nil {
		return nil, nil, err
	}
	now, err := d.store.Install(ctx, inst.ID)
	if err != nil {
		return nil, nil, err
	}
	return now, rev, nil
}

func newRevision(version string, reason store.RevisionReason, from int, values api.Values, m *render.Manifest, user int64) (*store.Revision, error) {
	objs, err := m.Canonical()
	if err != nil {
		return nil, fmt.Errorf("encode rendered objects: %w", err)
	}
	digest, err := m.Digest()
	if err != nil {
		return nil, err
	}
	vals, err := json.Marshal(values)
	if err != nil {
		return nil, err
	}
	return &store.Revision{Version: version, Reason: reason, From: from, Values: vals, Objects: objs, Digest: digest,
		Outcome: store.OutcomePending, CreatedBy: user}, nil
}

// render turns a version into the objects of revision number of inst.
func (d *Deployer) render(v *store.Version, inst *store.Install, number int, values api.Values, prev *render.Manifest) (*render.Manifest, error) {
	if len(v.Model) == 0 {
		return nil, fmt.Errorf("version %s of %s has no stored model", v.Version, v.AppKey)
	}
	model, err := app.Decode(v.Model)
	if err != nil {
		return nil, fmt.Errorf("read the model of %s %s: %w", v.AppKey, v.Version, err)
	}
	images := map[string]string{}
	for _, im := range v.Images {
		r, err := name.ParseReference(im.Target)
		if err != nil {
			return nil, fmt.Errorf("image %s of %s %s: target %q: %w", im.Name, v.AppKey, v.Version, im.Target, err)
		}
		images[im.Name] = r.Context().Name() + "@" + im.Digest
	}
	rv := render.Values(values)
	if err := rv.Validate(model); err != nil {
		return nil, &InvalidError{Message: err.Error()}
	}
	m, err := render.Render(render.Input{App: model, Install: inst.Name, Namespace: inst.Namespace, Revision: number,
		Images: images, Values: rv, Workloads: render.Workloads(prev, model), IngressClass: d.opts.IngressClass, Domain: d.opts.Domain})
	if err != nil {
		return nil, &InvalidError{Message: err.Error()}
	}
	return m, nil
}

// manifest reads the objects of one revision.
func (d *Deployer) manifest(ctx context.Context, installID int64, number int) (*render.Manifest, error) {
	if number == 0 {
		return nil, nil
	}
	r, err := d.store.Revision(ctx, installID, number)
	if err != nil {
		return nil, err
	}
	return render.Decode(r.Objects)
}

// Pending are the revisions left in progress, which a starting server runs again with Run. An install that a crash
// left between a failed change and its automatic rollback gets the rollback begun here, so it is among them.
func (d *Deployer) Pending(ctx context.Context) ([]store.Revision, error) {
	ins, err := d.store.Installs(ctx, nil)
	if err != nil {
		return nil, err
	}
	for i := range ins {
		inst := &ins[i]
		if inst.State != store.InstallDeploying || inst.Deployed == 0 {
			continue
		}
		last, err := d.store.Revision(ctx, inst.ID, inst.Revision)
		if err != nil {
			return nil, err
		}
		if last.Outcome != store.OutcomeFailed || last.Reason == store.ReasonAutoRollback {
			continue
		}
		if _, err := d.beginAutoRollback(ctx, inst, last.Message); err != nil {
			return nil, err
		}
	}
	return d.store.PendingRevisions(ctx)
}

// Run carries a pending revision to its outcome: it applies the objects in start order, waits for each component
// to be ready, prunes what the revision does not have, and records the outcome. A failed revision of an install
// that had a deployed revision is followed at once by an automatic rollback to it, which Run also carries out.
// When ctx ends first, the revision stays pending and Run returns ctx's error: a restarted server resumes it.
func (d *Deployer) Run(ctx context.Context, installID int64, number int) error {
	defer d.lock(installID)()
	for number != 0 {
		next, err := d.runOne(ctx, installID, number)
		if err != nil {
			return err
		}
		number = next
	}
	return nil
}

// runOne runs one pending revision; next is the automatic rollback it began, if any.
func (d *Deployer) runOne(ctx context.Context, installID int64, number int) (next int, err error) {
	log := logctx.From(ctx)
	inst, err := d.store.Install(ctx, installID)
	if err != nil {
		return 0, err
	}
	rev, err := d.store.Revision(ctx, installID, number)
	if err != nil {
		return 0, err
	}
	if rev.Outcome != store.OutcomePending {
		return 0, nil
	}
	log.Info("deploy", "install", inst.Name, "namespace", inst.Namespace, "revision", number, "reason", rev.Reason, "version", rev.Version)
	err = d.rollout(ctx, inst, rev)
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if err == nil {
		state, msg := store.InstallReady, ""
		if rev.Reason == store.ReasonAutoRollback {
			state, msg = store.InstallRolledBack, rev.Message
		}
		return 0, d.store.FinishRevision(ctx, installID, number, store.OutcomeSucceeded, msg, state)
	}
	log.Warn("deploy failed", "install", inst.Name, "revision", number, "err", err)
	what := fmt.Sprintf("%s to %s (revision %d) failed: %v", rev.Reason, rev.Version, number, err)
	if rev.Reason == store.ReasonAutoRollback || inst.Deployed == 0 {
		return 0, d.store.FinishRevision(ctx, installID, number, store.OutcomeFailed, what, store.InstallFailed)
	}
	// The install stays deploying between the failure and the rollback's begin; a crash in between is found by
	// Pending, which begins the rollback then.
	if err := d.store.FinishRevision(ctx, installID, number, store.OutcomeFailed, what, store.InstallDeploying); err != nil {
		return 0, err
	}
	return d.beginAutoRollback(ctx, inst, what)
}

// beginAutoRollback records the revision that re-applies inst's deployed revision after a failed change.
func (d *Deployer) beginAutoRollback(ctx context.Context, inst *store.Install, what string) (int, error) {
	target, err := d.store.Revision(ctx, inst.ID, inst.Deployed)
	if err != nil {
		return 0, err
	}
	back := &store.Revision{Version: target.Version, Reason: store.ReasonAutoRollback, From: target.Number, Values: target.Values,
		Objects: target.Objects, Digest: target.Digest, Outcome: store.OutcomePending,
		Message: fmt.Sprintf("rolled back to revision %d automatically: %s", target.Number, what)}
	if err := d.store.BeginRevision(ctx, inst.ID, back); err != nil {
		return 0, fmt.Errorf("begin automatic rollback of %s: %w", inst.Name, err)
	}
	return back.Number, nil
}

// rollout applies rev's objects in start order, each component after the ones it depends on are ready, waits for
// the rest, then prunes the install's objects that rev does not have (volumes are kept).
func (d *Deployer) rollout(ctx context.Context, inst *store.Install, rev *store.Revision) error {
	c, err := d.cluster(inst.Cluster)
	if err != nil {
		return err
	}
	m, err := render.Decode(rev.Objects)
	if err != nil {
		return fmt.Errorf("read objects of revision %d: %w", rev.Number, err)
	}
	if err := c.ensureNamespace(ctx, inst.Namespace, inst.Team); err != nil {
		return err
	}
	for _, u := range m.Shared {
		if _, err := c.apply(ctx, u, false); err != nil {
			return err
		}
	}
	pending := map[string]rollout{} // applied, not yet seen ready
	waitFor := func(names []string) error {
		rs := map[string]rollout{}
		for _, n := range names {
			if r, ok := pending[n]; ok {
				rs[n] = r
				delete(pending, n)
			}
		}
		return c.watch.wait(ctx, rs)
	}
	for _, comp := range m.Components {
		if err := waitFor(comp.DependsOn); err != nil {
			return err
		}
		r := rollout{ns: inst.Namespace, kind: comp.Kind, name: comp.Workload}
		for _, u := range comp.Objects {
			out, err := c.apply(ctx, u, false)
			if err != nil {
				return err
			}
			if u.GetKind() == comp.Kind && u.GetName() == comp.Workload {
				r.generation = out.GetGeneration()
			}
		}
		r.started = time.Now()
		r.deadline = r.started.Add(d.opts.ComponentTimeout)
		pending[comp.Name] = r
	}
	var rest []string
	for n := range pending {
		rest = append(rest, n)
	}
	if err := waitFor(rest); err != nil {
		return err
	}
	return d.prune(ctx, c, inst, m, rev)
}

// prune deletes the install's objects that m does not have, except volumes.
func (d *Deployer) prune(ctx context.Context, c *cluster, inst *store.Install, m *render.Manifest, rev *store.Revision) error {
	kinds := []*render.Manifest{m}
	for _, n := range []int{rev.Number - 1, inst.Deployed} {
		if n > 0 && n != rev.Number {
			if pm, err := d.manifest(ctx, inst.ID, n); err == nil {
				kinds = append(kinds, pm)
			}
		}
	}
	have, err := c.owned(ctx, inst.Namespace, inst.Name, kindsOf(kinds...))
	if err != nil {
		return err
	}
	keep := map[ref]bool{}
	for _, u := range m.Objects() {
		keep[refOf(u)] = true
	}
	var errs []error
	for _, u := range have {
		if keep[refOf(u)] {
			continue
		}
		logctx.From(ctx).Info("prune", "install", inst.Name, "object", refOf(u).String())
		errs = append(errs, c.remove(ctx, u))
	}
	return errors.Join(errs...)
}

// Uninstall deletes an install's objects and its record. Volumes are kept unless deleteData is set. It refuses
// (store.ErrBusy) while a revision is pending.
func (d *Deployer) Uninstall(ctx context.Context, inst *store.Install, deleteData bool) error {
	unlock := d.lock(inst.ID)
	defer unlock()
	c, err := d.cluster(inst.Cluster)
	if err != nil {
		return err
	}
	if pend, err := d.store.Revision(ctx, inst.ID, inst.Revision); err == nil && pend.Outcome == store.OutcomePending {
		return fmt.Errorf("install %s: revision %d is still in progress: %w", inst.Name, pend.Number, store.ErrBusy)
	}
	if err := d.store.SetInstallState(ctx, inst.ID, store.InstallUninstalling, ""); err != nil {
		return err
	}
	var ms []*render.Manifest
	for _, n := range []int{inst.Revision, inst.Deployed} {
		if m, err := d.manifest(ctx, inst.ID, n); err == nil && m != nil {
			ms = append(ms, m)
		}
	}
	kinds := kindsOf(ms...)
	if deleteData {
		kinds = append(kinds, pvcKind)
	}
	have, err := c.owned(ctx, inst.Namespace, inst.Name, kinds)
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range have {
		errs = append(errs, c.remove(ctx, u))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("uninstall %s: %w", inst.Name, err)
	}
	return d.store.DeleteInstall(ctx, inst.ID)
}

// Kept lists the volumes (PVC names) an install leaves behind when uninstalled without deleting data.
func (d *Deployer) Kept(ctx context.Context, inst *store.Install) ([]string, error) {
	c, err := d.cluster(inst.Cluster)
	if err != nil {
		return nil, err
	}
	have, err := c.owned(ctx, inst.Namespace, inst.Name, []schema.GroupVersionKind{pvcKind})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range have {
		out = append(out, u.GetName())
	}
	return out, nil
}
