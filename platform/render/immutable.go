package render

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// VolumeChange is a change to a component's volume that Kubernetes refuses on an existing object: any change to a
// StatefulSet's volumeClaimTemplates (they are immutable), and any change to a PersistentVolumeClaim's spec but
// growing its storage request.
type VolumeChange struct {
	Component string // the component in the new revision
	Object    ObjectRef
	Volume    string // the claim template's or the claim's name
	What      string // "added", "removed", "size 1Gi -> 5Gi", "accessModes [ReadWriteOnce] -> [ReadWriteMany]", …
}

func (c VolumeChange) String() string {
	return fmt.Sprintf("component %s, volume %s (%s): %s", c.Component, c.Volume, c.Object, c.What)
}

// ImmutableVolumeChanges lists the volume changes from prev to next that the API server would refuse, so that an
// upgrade can be refused before anything is applied. prev may be nil (a first install changes nothing).
func ImmutableVolumeChanges(prev, next *Manifest) []VolumeChange {
	if prev == nil || next == nil {
		return nil
	}
	before := objectIndex(prev)
	var out []VolumeChange
	for _, c := range next.Components {
		for _, o := range c.Objects {
			p, ok := before[keyOf(o)]
			if !ok {
				continue
			}
			switch o.GetKind() {
			case KindStatefulSet:
				out = append(out, templateChanges(c.Name, p, o)...)
			case "PersistentVolumeClaim":
				if what := claimChange(p.Object["spec"], o.Object["spec"]); what != "" {
					out = append(out, VolumeChange{Component: c.Name, Object: refOf(o), Volume: o.GetName(), What: what})
				}
			}
		}
	}
	return out
}

// templateChanges compares the volumeClaimTemplates of two revisions of a StatefulSet, by template name.
func templateChanges(component string, prev, next *unstructured.Unstructured) []VolumeChange {
	byName := func(o *unstructured.Unstructured) (map[string]map[string]any, []string) {
		ts, _, _ := unstructured.NestedSlice(o.Object, "spec", "volumeClaimTemplates")
		out := map[string]map[string]any{}
		var names []string
		for _, t := range ts {
			m, _ := t.(map[string]any)
			name, _, _ := unstructured.NestedString(m, "metadata", "name")
			out[name] = m
			names = append(names, name)
		}
		return out, names
	}
	pt, pnames := byName(prev)
	nt, nnames := byName(next)
	var out []VolumeChange
	add := func(vol, what string) {
		out = append(out, VolumeChange{Component: component, Object: refOf(next), Volume: vol, What: what})
	}
	for _, name := range nnames {
		p, ok := pt[name]
		switch {
		case !ok:
			add(name, "added")
		case !sameJSON(p, nt[name]):
			ps, _ := p["spec"].(map[string]any)
			ns, _ := nt[name]["spec"].(map[string]any)
			diffs, _ := specDiff(ps, ns)
			add(name, cmp.Or(strings.Join(diffs, ", "), "its claim template changes")) // not even growth is allowed
		}
	}
	for _, name := range pnames {
		if _, ok := nt[name]; !ok {
			add(name, "removed")
		}
	}
	slices.SortFunc(out, func(a, b VolumeChange) int { return strings.Compare(a.Volume, b.Volume) })
	return out
}

// claimChange says what changes between two PersistentVolumeClaim specs that Kubernetes refuses; "" when nothing
// does (equal, or only the storage request grows, which the API server allows where the storage class does).
func claimChange(prev, next any) string {
	p, _ := prev.(map[string]any)
	n, _ := next.(map[string]any)
	if sameJSON(p, n) {
		return ""
	}
	diffs, onlyGrowth := specDiff(p, n)
	if onlyGrowth {
		return ""
	}
	return cmp.Or(strings.Join(diffs, ", "), "its spec changes")
}

// specDiff lists the differences between two claim specs, and says whether the only one is a larger storage request.
func specDiff(p, n map[string]any) (diffs []string, onlyGrowth bool) {
	for _, f := range []string{"accessModes", "storageClassName", "volumeMode", "selector", "dataSource"} {
		if !sameJSON(p[f], n[f]) {
			diffs = append(diffs, fmt.Sprintf("%s %s -> %s", f, jsonText(p[f]), jsonText(n[f])))
		}
	}
	others := len(diffs) > 0
	po, pok := quantity(p)
	no, nok := quantity(n)
	switch {
	case !pok && !nok, pok && nok && po.Cmp(no) == 0:
	case pok && nok && no.Cmp(po) < 0:
		diffs = append(diffs, fmt.Sprintf("size %s -> %s (a claim never shrinks)", po.String(), no.String()))
		others = true
	case pok && nok:
		diffs = append(diffs, fmt.Sprintf("size %s -> %s", po.String(), no.String()))
		return diffs, !others && sameJSON(withoutStorage(p), withoutStorage(n))
	default:
		diffs = append(diffs, fmt.Sprintf("size %s -> %s", sizeText(po, pok), sizeText(no, nok)))
		others = true
	}
	return diffs, false
}

// withoutStorage is a claim spec without its storage request (copied where it differs; the rest is shared).
func withoutStorage(spec map[string]any) map[string]any {
	out := maps.Clone(spec)
	res, _ := out["resources"].(map[string]any)
	res = maps.Clone(res)
	req, _ := res["requests"].(map[string]any)
	req = maps.Clone(req)
	delete(req, "storage")
	if res != nil {
		res["requests"] = req
		out["resources"] = res
	}
	return out
}

func sizeText(q resource.Quantity, ok bool) string {
	if !ok {
		return "(none)"
	}
	return q.String()
}

// quantity is spec.resources.requests.storage.
func quantity(spec map[string]any) (resource.Quantity, bool) {
	s, ok, _ := unstructured.NestedString(spec, "resources", "requests", "storage")
	if !ok {
		return resource.Quantity{}, false
	}
	q, err := resource.ParseQuantity(s)
	return q, err == nil
}

func sameJSON(a, b any) bool { return jsonText(a) == jsonText(b) }

func jsonText(v any) string {
	if v == nil {
		return "(none)"
	}
	b, _ := json.Marshal(v) // encoding/json sorts map keys, and writes 1 and 1.0 alike
	return string(b)
}
