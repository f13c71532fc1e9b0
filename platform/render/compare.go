package render

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Changes is the preview of an upgrade from one manifest to the next: per component what changes, and which objects
// are created, updated and deleted. Environment variables are named, never their values: they may be secrets.
type Changes struct {
	App     string       `json:"app"`
	Version StringChange `json:"version"` // Old is empty for a first install
	// The components that change: those of next in start order, then those removed, by name.
	Components []ComponentChange `json:"components,omitempty"`
	Created    []ObjectRef       `json:"created,omitempty"` // objects of next that prev does not have, in apply order
	Updated    []ObjectRef       `json:"updated,omitempty"` // objects of both whose content differs (besides the revision and version labels), in apply order
	Deleted    []ObjectRef       `json:"deleted,omitempty"` // objects of prev that next does not have, in prev's apply order
}

// Kinds of component change.
const (
	ChangeAdded   = "added"
	ChangeRemoved = "removed"
	ChangeChanged = "changed"
	ChangeRenamed = "renamed" // it keeps the workload of the component it was (FormerName); it may change too
)

// ComponentChange is what an upgrade changes in one component.
type ComponentChange struct {
	Name       string        `json:"name"`
	Change     string        `json:"change"`               // added, removed, changed or renamed
	FormerName string        `json:"formerName,omitempty"` // renamed: its name in prev
	Workload   string        `json:"workload"`             // object name of its Deployment or StatefulSet
	Kind       *StringChange `json:"kind,omitempty"`       // Deployment or StatefulSet
	Image      *StringChange `json:"image,omitempty"`      // image references by digest
	Replicas   *IntChange    `json:"replicas,omitempty"`
	Env        *KeyChanges   `json:"env,omitempty"`     // names of the variables the container receives (its env and what envFrom gives)
	Ports      *ListChanges  `json:"ports,omitempty"`   // as NAME PORT/PROTOCOL
	Volumes    *ListChanges  `json:"volumes,omitempty"` // volume names
	Updated    []ObjectRef   `json:"updated,omitempty"` // its objects whose content changes
}

// StringChange is a value before and after.
type StringChange struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// IntChange is a number before and after.
type IntChange struct {
	Old int64 `json:"old"`
	New int64 `json:"new"`
}

// KeyChanges names keys added, removed and given another value.
type KeyChanges struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
}

// ListChanges names items added and removed.
type ListChanges struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// ObjectRef names an object of a manifest.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
}

func (o ObjectRef) String() string { return o.Kind + "/" + o.Name }

// Empty reports whether the upgrade changes nothing: the same version and no object created, updated or deleted.
func (c Changes) Empty() bool {
	return c.Version.Old == c.Version.New && len(c.Components) == 0 && len(c.Created) == 0 && len(c.Updated) == 0 && len(c.Deleted) == 0
}

// Compare is the per-component change preview of an upgrade (prev may be nil for a first install).
func Compare(prev, next *Manifest) Changes {
	if prev == nil {
		prev = &Manifest{}
	}
	if next == nil {
		next = &Manifest{}
	}
	ch := Changes{App: cmp.Or(next.App, prev.App), Version: StringChange{Old: prev.Version, New: next.Version}}
	prevObjs, nextObjs := objectIndex(prev), objectIndex(next)
	for _, o := range next.Objects() {
		k := keyOf(o)
		switch p, ok := prevObjs[k]; {
		case !ok:
			ch.Created = append(ch.Created, refOf(o))
		case !sameObject(p, o):
			ch.Updated = append(ch.Updated, refOf(o))
		}
	}
	for _, o := range prev.Objects() {
		if _, ok := nextObjs[keyOf(o)]; !ok {
			ch.Deleted = append(ch.Deleted, refOf(o))
		}
	}
	byName, byWorkload := map[string]*Component{}, map[string]*Component{}
	for i := range prev.Components {
		byName[prev.Components[i].Name] = &prev.Components[i]
		byWorkload[prev.Components[i].Workload] = &prev.Components[i]
	}
	matched := map[string]bool{}
	for i := range next.Components {
		n := &next.Components[i]
		p := byName[n.Name]
		cc := ComponentChange{Name: n.Name, Workload: n.Workload, Change: ChangeChanged}
		if p == nil {
			if p = byWorkload[n.Workload]; p != nil && (matched[p.Name] || nameIn(next, p.Name)) {
				p = nil // that workload is still its own component's
			}
		}
		switch {
		case p == nil:
			cc.Change = ChangeAdded
		case p.Name != n.Name:
			cc.Change, cc.FormerName = ChangeRenamed, p.Name
		}
		if p != nil {
			matched[p.Name] = true
		}
		diffComponent(&cc, infoOf(prev, p), infoOf(next, n))
		for _, o := range n.Objects {
			if po, ok := prevObjs[keyOf(o)]; ok && !sameObject(po, o) {
				cc.Updated = append(cc.Updated, refOf(o))
			}
		}
		if cc.Change != ChangeChanged || cc.changes() {
			ch.Components = append(ch.Components, cc)
		}
	}
	var removed []ComponentChange
	for i := range prev.Components {
		p := &prev.Components[i]
		if matched[p.Name] {
			continue
		}
		cc := ComponentChange{Name: p.Name, Workload: p.Workload, Change: ChangeRemoved}
		diffComponent(&cc, infoOf(prev, p), infoOf(next, nil))
		removed = append(removed, cc)
	}
	slices.SortFunc(removed, func(a, b ComponentChange) int { return cmp.Compare(a.Name, b.Name) })
	ch.Components = append(ch.Components, removed...)
	return ch
}

func nameIn(m *Manifest, name string) bool {
	return slices.ContainsFunc(m.Components, func(c Component) bool { return c.Name == name })
}

func (cc *ComponentChange) changes() bool {
	return cc.Kind != nil || cc.Image != nil || cc.Replicas != nil || cc.Env != nil || cc.Ports != nil || cc.Volumes != nil || len(cc.Updated) > 0
}

// compInfo is what a preview shows of a component; the zero value for a component that is not there.
type compInfo struct {
	kind, image string
	replicas    int64
	env         map[string]string
	ports       []string
	volumes     []string
}

func infoOf(m *Manifest, c *Component) compInfo {
	var ci compInfo
	if c == nil {
		return ci
	}
	ci.kind = c.Kind
	var w *unstructured.Unstructured
	for _, o := range c.Objects {
		if o.GetKind() == c.Kind && o.GetName() == c.Workload {
			w = o
		}
	}
	if w == nil {
		return ci
	}
	ci.replicas, _, _ = unstructured.NestedInt64(w.Object, "spec", "replicas")
	ctrs, _, _ := unstructured.NestedSlice(w.Object, "spec", "template", "spec", "containers")
	if len(ctrs) == 0 {
		return ci
	}
	ctr, _ := ctrs[0].(map[string]any)
	ci.image, _, _ = unstructured.NestedString(ctr, "image")
	ci.env = map[string]string{}
	sources := objectIndex(m)
	envFrom, _, _ := unstructured.NestedSlice(ctr, "envFrom")
	for _, ef := range envFrom {
		efm, _ := ef.(map[string]any)
		for _, ref := range []struct{ field, kind string }{{"configMapRef", "ConfigMap"}, {"secretRef", "Secret"}} {
			name, ok, _ := unstructured.NestedString(efm, ref.field, "name")
			if !ok {
				continue
			}
			src := sources[objectKey{kind: ref.kind, name: name}]
			if src == nil {
				continue
			}
			data, _, _ := unstructured.NestedStringMap(src.Object, "data")
			for k, v := range data {
				if ref.kind == "Secret" {
					v = decodeBase64(v)
				}
				ci.env[k] = v
			}
		}
	}
	env, _, _ := unstructured.NestedSlice(ctr, "env")
	for _, e := range env {
		em, _ := e.(map[string]any)
		name, _, _ := unstructured.NestedString(em, "name")
		value, _, _ := unstructured.NestedString(em, "value")
		ci.env[name] = value
	}
	ports, _, _ := unstructured.NestedSlice(ctr, "ports")
	for _, p := range ports {
		pm, _ := p.(map[string]any)
		name, _, _ := unstructured.NestedString(pm, "name")
		num, _, _ := unstructured.NestedInt64(pm, "containerPort")
		proto, _, _ := unstructured.NestedString(pm, "protocol")
		ci.ports = append(ci.ports, fmt.Sprintf("%s %d/%s", name, num, proto))
	}
	mounts, _, _ := unstructured.NestedSlice(ctr, "volumeMounts")
	for _, vm := range mounts {
		vmm, _ := vm.(map[string]any)
		if name, _, _ := unstructured.NestedString(vmm, "name"); name != filesVolume {
			ci.volumes = append(ci.volumes, name)
		}
	}
	slices.Sort(ci.ports)
	slices.Sort(ci.volumes)
	return ci
}

func diffComponent(cc *ComponentChange, p, n compInfo) {
	if p.kind != n.kind && p.kind != "" && n.kind != "" {
		cc.Kind = &StringChange{Old: p.kind, New: n.kind}
	}
	if p.image != n.image {
		cc.Image = &StringChange{Old: p.image, New: n.image}
	}
	if p.replicas != n.replicas {
		cc.Replicas = &IntChange{Old: p.replicas, New: n.replicas}
	}
	var env KeyChanges
	for _, k := range slices.Sorted(maps.Keys(n.env)) {
		switch v, ok := p.env[k]; {
		case !ok:
			env.Added = append(env.Added, k)
		case v != n.env[k]:
			env.Changed = append(env.Changed, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.env)) {
		if _, ok := n.env[k]; !ok {
			env.Removed = append(env.Removed, k)
		}
	}
	if len(env.Added)+len(env.Removed)+len(env.Changed) > 0 {
		cc.Env = &env
	}
	cc.Ports = diffList(p.ports, n.ports)
	cc.Volumes = diffList(p.volumes, n.volumes)
}

func diffList(old, new []string) *ListChanges {
	var l ListChanges
	for _, s := range new {
		if !slices.Contains(old, s) {
			l.Added = append(l.Added, s)
		}
	}
	for _, s := range old {
		if !slices.Contains(new, s) {
			l.Removed = append(l.Removed, s)
		}
	}
	if len(l.Added)+len(l.Removed) == 0 {
		return nil
	}
	return &l
}

// objectKey identifies an object across revisions: its API group (not version), kind and name.
type objectKey struct{ group, kind, name string }

func keyOf(o *unstructured.Unstructured) objectKey {
	return objectKey{group: o.GroupVersionKind().Group, kind: o.GetKind(), name: o.GetName()}
}

func refOf(o *unstructured.Unstructured) ObjectRef {
	return ObjectRef{APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Name: o.GetName()}
}

func objectIndex(m *Manifest) map[objectKey]*unstructured.Unstructured {
	out := map[objectKey]*unstructured.Unstructured{}
	for _, o := range m.Objects() {
		out[keyOf(o)] = o
	}
	return out
}

// sameObject reports whether two objects are equal but for the revision and version labels, which every upgrade
// changes.
func sameObject(a, b *unstructured.Unstructured) bool {
	return reflect.DeepEqual(withoutRevision(a), withoutRevision(b))
}

func withoutRevision(o *unstructured.Unstructured) map[string]any {
	c := o.DeepCopy().Object
	for _, path := range [][]string{{"metadata", "labels"}, {"spec", "template", "metadata", "labels"}} {
		if labels, ok, _ := unstructured.NestedMap(c, path...); ok {
			delete(labels, LabelRevision)
			delete(labels, LabelVersion)
			_ = unstructured.SetNestedMap(c, labels, path...)
		}
	}
	return c
}

// String renders the changes as text for people, one line per change.
func (c Changes) String() string {
	var b strings.Builder
	switch {
	case c.Version.Old == "":
		fmt.Fprintf(&b, "%s: install %s\n", c.App, c.Version.New)
	case c.Version.New == "":
		fmt.Fprintf(&b, "%s: uninstall %s\n", c.App, c.Version.Old)
	case c.Version.Old != c.Version.New:
		fmt.Fprintf(&b, "%s: %s → %s\n", c.App, c.Version.Old, c.Version.New)
	default:
		fmt.Fprintf(&b, "%s: %s\n", c.App, c.Version.New)
	}
	if c.Empty() {
		b.WriteString("no changes\n")
		return b.String()
	}
	for _, cc := range c.Components {
		sign := map[string]string{ChangeAdded: "+", ChangeRemoved: "-", ChangeChanged: "~", ChangeRenamed: "~"}[cc.Change]
		what := cc.Change
		if cc.Change == ChangeRenamed {
			what = "renamed from " + cc.FormerName
		}
		fmt.Fprintf(&b, "%s component %s (%s; workload %s)\n", sign, cc.Name, what, cc.Workload)
		if cc.Kind != nil {
			fmt.Fprintf(&b, "    kind: %s → %s\n", cc.Kind.Old, cc.Kind.New)
		}
		if cc.Image != nil {
			fmt.Fprintf(&b, "    image: %s → %s\n", orNone(cc.Image.Old), orNone(cc.Image.New))
		}
		if cc.Replicas != nil {
			fmt.Fprintf(&b, "    replicas: %d → %d\n", cc.Replicas.Old, cc.Replicas.New)
		}
		if cc.Env != nil {
			fmt.Fprintf(&b, "    env:%s\n", listLine([][2]any{{"added", cc.Env.Added}, {"removed", cc.Env.Removed}, {"changed", cc.Env.Changed}}))
		}
		if cc.Ports != nil {
			fmt.Fprintf(&b, "    ports:%s\n", listLine([][2]any{{"added", cc.Ports.Added}, {"removed", cc.Ports.Removed}}))
		}
		if cc.Volumes != nil {
			fmt.Fprintf(&b, "    volumes:%s\n", listLine([][2]any{{"added", cc.Volumes.Added}, {"removed", cc.Volumes.Removed}}))
		}
		if len(cc.Updated) > 0 {
			fmt.Fprintf(&b, "    updated: %s\n", refsLine(cc.Updated))
		}
	}
	for _, l := range []struct {
		what string
		refs []ObjectRef
	}{{"created", c.Created}, {"updated", c.Updated}, {"deleted", c.Deleted}} {
		if len(l.refs) > 0 {
			fmt.Fprintf(&b, "objects %s: %s\n", l.what, refsLine(l.refs))
		}
	}
	return b.String()
}

func orNone(s string) string { return cmp.Or(s, "(none)") }

// listLine writes groups of names as " added A, B; removed C", leaving out empty groups.
func listLine(groups [][2]any) string {
	var parts []string
	for _, g := range groups {
		if items := g[1].([]string); len(items) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", g[0], strings.Join(items, ", ")))
		}
	}
	return " " + strings.Join(parts, "; ")
}

func refsLine(refs []ObjectRef) string {
	s := make([]string, len(refs))
	for i, r := range refs {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}
