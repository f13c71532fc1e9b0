package deploy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/wutong-paas/wutong-offline/platform/render"
)

// ref names one object of a namespace.
type ref struct {
	Group, Kind, Name string
}

func refOf(u *unstructured.Unstructured) ref {
	return ref{Group: u.GroupVersionKind().Group, Kind: u.GetKind(), Name: u.GetName()}
}

func (r ref) String() string { return r.Kind + "/" + r.Name }

// ApplyError is an object the API server refused, with its message.
type ApplyError struct {
	Object  string // Kind/name
	DryRun  bool
	Message string
	Err     error
}

func (e *ApplyError) Error() string {
	verb := "apply"
	if e.DryRun {
		verb = "dry-run apply"
	}
	return fmt.Sprintf("%s %s: %s", verb, e.Object, e.Message)
}

func (e *ApplyError) Unwrap() error { return e.Err }

// resource finds the API resource of a kind, refreshing discovery once when the kind is unknown (a CRD made since).
func (c *cluster) resource(gvk schema.GroupVersionKind, ns string) (dynamic.ResourceInterface, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("kind %s is not served by the cluster: %w", gvk, err)
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return nil, fmt.Errorf("kind %s is cluster-scoped: an app may only carry namespaced objects", gvk.Kind)
	}
	return c.dyn.Resource(m.Resource).Namespace(ns), nil
}

// apply server-side applies u as FieldManager, taking over fields others set; dryRun asks the API server's verdict
// without changing anything.
func (c *cluster) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	name := refOf(u).String()
	ri, err := c.resource(u.GroupVersionKind(), u.GetNamespace())
	if err != nil {
		return nil, &ApplyError{Object: name, DryRun: dryRun, Message: err.Error(), Err: err}
	}
	body, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", name, err)
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, opts)
	if err != nil {
		return nil, &ApplyError{Object: name, DryRun: dryRun, Message: apiMessage(err), Err: err}
	}
	return out, nil
}

// apiMessage is the API server's own explanation of err.
func apiMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok && s.Status().Message != "" {
		return s.Status().Message
	}
	return err.Error()
}

// ensureNamespace makes the team's namespace when it is missing (apply: idempotent).
func (c *cluster) ensureNamespace(ctx context.Context, ns, team string) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(ns)
	u.SetLabels(map[string]string{render.LabelManagedBy: render.ManagedBy, "app.wutong.io/team": team})
	body, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	_, err = c.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Patch(ctx, ns,
		types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if err != nil {
		return fmt.Errorf("make namespace %s: %s", ns, apiMessage(err))
	}
	return nil
}

// standardKinds are the kinds Render makes; with the kinds of raw resources they are what an install may own.
var standardKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "Secret"},
	{Version: "v1", Kind: "Service"},
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
}

var pvcKind = schema.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}

// kindsOf are the standard kinds plus every other kind the manifests hold, in a stable order.
func kindsOf(ms ...*render.Manifest) []schema.GroupVersionKind {
	seen := map[schema.GroupKind]bool{}
	var out []schema.GroupVersionKind
	add := func(g schema.GroupVersionKind) {
		if g == pvcKind || seen[g.GroupKind()] {
			return
		}
		seen[g.GroupKind()] = true
		out = append(out, g)
	}
	for _, g := range standardKinds {
		add(g)
	}
	var extra []schema.GroupVersionKind
	for _, m := range ms {
		if m == nil {
			continue
		}
		for _, u := range m.Objects() {
			if g := u.GroupVersionKind(); !seen[g.GroupKind()] && g != pvcKind {
				extra = append(extra, g)
			}
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].String() < extra[j].String() })
	for _, g := range extra {
		add(g)
	}
	return out
}

// owned lists the objects of kinds in ns that carry the install's label.
func (c *cluster) owned(ctx context.Context, ns, install string, kinds []schema.GroupVersionKind) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	sel := render.LabelInstall + "=" + install
	for _, g := range kinds {
		ri, err := c.resource(g, ns)
		if err != nil {
			continue // a raw resource's kind that is gone from the cluster: nothing of it to find
		}
		l, err := ri.List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, fmt.Errorf("list %s of install %s: %s", g.Kind, install, apiMessage(err))
		}
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	}
	return out, nil
}

// remove deletes an object (its dependants in the background); one that is gone already is fine.
func (c *cluster) remove(ctx context.Context, u *unstructured.Unstructured) error {
	ri, err := c.resource(u.GroupVersionKind(), u.GetNamespace())
	if err != nil {
		return err
	}
	bg := metav1.DeletePropagationBackground
	err = ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %s", refOf(u), apiMessage(err))
	}
	return nil
}

// ConflictError reports objects that exist in the namespace but belong to another install or to nobody we know.
type ConflictError struct {
	Namespace string
	Objects   []string // "Kind/name (owner)"
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("namespace %s already has objects this install would take over: %s; uninstall the install that owns them, or remove them, then try again",
		e.Namespace, strings.Join(e.Objects, ", "))
}

// checkOwners refuses objects of m that exist and are not this install's.
func (c *cluster) checkOwners(ctx context.Context, install string, m *render.Manifest) error {
	var clash []string
	ns := ""
	for _, u := range m.Objects() {
		ns = u.GetNamespace()
		ri, err := c.resource(u.GroupVersionKind(), ns)
		if err != nil {
			return &ApplyError{Object: refOf(u).String(), Message: err.Error(), Err: err}
		}
		cur, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("look up %s: %s", refOf(u), apiMessage(err))
		}
		if owner := cur.GetLabels()[render.LabelInstall]; owner != install {
			if owner == "" {
				owner = "not made by wutong"
			} else {
				owner = "install " + owner
			}
			clash = append(clash, fmt.Sprintf("%s (%s)", refOf(u), owner))
		}
	}
	if len(clash) > 0 {
		return &ConflictError{Namespace: ns, Objects: clash}
	}
	return nil
}
