package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/wutong-paas/wutong-offline/platform/app"
)

// Manifest is the objects of one app revision, grouped as the deployer applies them.
type Manifest struct {
	App        string                       `json:"app"`
	Version    string                       `json:"version"`
	Shared     []*unstructured.Unstructured `json:"shared,omitempty"` // app-level objects applied first: config-group ConfigMaps/Secrets, then the raw resources
	Components []Component                  `json:"components"`       // in start order: every component after all it dependsOn; ties broken by name
}

// Component is the objects of one component.
type Component struct {
	Name      string                       `json:"name"`
	Workload  string                       `json:"workload"` // object name of the Deployment or StatefulSet
	Kind      string                       `json:"kind"`     // "Deployment" or "StatefulSet"
	DependsOn []string                     `json:"dependsOn,omitempty"`
	Objects   []*unstructured.Unstructured `json:"objects"` // ConfigMaps, Secrets, PVCs, Services, the workload, Ingresses: in apply order (the workload after what it consumes)
}

// Objects returns every object in apply order: Shared, then each component's.
func (m *Manifest) Objects() []*unstructured.Unstructured {
	out := slices.Clone(m.Shared)
	for _, c := range m.Components {
		out = append(out, c.Objects...)
	}
	return out
}

// wire is the JSON form of a Manifest, with objects as plain maps (encoding/json sorts their keys).
type wire struct {
	App        string           `json:"app"`
	Version    string           `json:"version"`
	Shared     []map[string]any `json:"shared,omitempty"`
	Components []wireComponent  `json:"components"`
}

type wireComponent struct {
	Name      string           `json:"name"`
	Workload  string           `json:"workload"`
	Kind      string           `json:"kind"`
	DependsOn []string         `json:"dependsOn,omitempty"`
	Objects   []map[string]any `json:"objects"`
}

// Canonical returns the manifest as deterministic JSON: object keys sorted, no insignificant whitespace, no HTML
// escaping. The same manifest always gives the same bytes.
func (m *Manifest) Canonical() ([]byte, error) {
	w := wire{App: m.App, Version: m.Version, Components: []wireComponent{}}
	objs := func(in []*unstructured.Unstructured) ([]map[string]any, error) {
		out := make([]map[string]any, 0, len(in))
		for _, o := range in {
			if o == nil || o.Object == nil {
				return nil, errors.New("a nil object")
			}
			out = append(out, o.Object)
		}
		return out, nil
	}
	var err error
	if len(m.Shared) > 0 {
		if w.Shared, err = objs(m.Shared); err != nil {
			return nil, fmt.Errorf("canonical form of manifest: shared: %w", err)
		}
	}
	for _, c := range m.Components {
		wc := wireComponent{Name: c.Name, Workload: c.Workload, Kind: c.Kind, DependsOn: c.DependsOn}
		if wc.Objects, err = objs(c.Objects); err != nil {
			return nil, fmt.Errorf("canonical form of manifest: component %s: %w", c.Name, err)
		}
		w.Components = append(w.Components, wc)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("canonical form of manifest: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Digest is "sha256:" and the lowercase hex of the SHA-256 of Canonical.
func (m *Manifest) Digest() (string, error) {
	c, err := m.Canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Decode parses what Canonical writes. Unknown fields are refused; numbers in objects become int64 (whole) or
// float64, so that Decode(Canonical(m)) re-encodes to the same bytes.
func Decode(data []byte) (*Manifest, error) {
	var w wire
	if err := decodeJSONNumbers(data, &w, true); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if w.App == "" || w.Version == "" {
		return nil, errors.New("decode manifest: app or version is missing")
	}
	m := &Manifest{App: w.App, Version: w.Version, Components: []Component{}}
	objs := func(in []map[string]any) ([]*unstructured.Unstructured, error) {
		out := make([]*unstructured.Unstructured, 0, len(in))
		for i, o := range in {
			v, err := plainJSON(o)
			if err != nil {
				return nil, fmt.Errorf("object %d: %w", i, err)
			}
			u := &unstructured.Unstructured{Object: v.(map[string]any)}
			if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
				return nil, fmt.Errorf("object %d has no apiVersion, kind or metadata.name", i)
			}
			out = append(out, u)
		}
		return out, nil
	}
	var err error
	if m.Shared, err = objs(w.Shared); err != nil {
		return nil, fmt.Errorf("decode manifest: shared: %w", err)
	}
	if len(m.Shared) == 0 {
		m.Shared = nil
	}
	for _, wc := range w.Components {
		if wc.Kind != KindDeployment && wc.Kind != KindStatefulSet {
			return nil, fmt.Errorf("decode manifest: component %s: kind %q is not Deployment or StatefulSet", wc.Name, wc.Kind)
		}
		c := Component{Name: wc.Name, Workload: wc.Workload, Kind: wc.Kind, DependsOn: wc.DependsOn}
		if c.Objects, err = objs(wc.Objects); err != nil {
			return nil, fmt.Errorf("decode manifest: component %s: %w", wc.Name, err)
		}
		m.Components = append(m.Components, c)
	}
	return m, nil
}

// decodeJSONNumbers decodes one JSON value into v with numbers as json.Number, strictly when asked.
func decodeJSONNumbers(data []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// Workloads maps each component of next to the workload name it keeps: its own previous workload when prev has a
// component of that name, else the workload of a prev component named in its formerNames; components without
// either are left out. prev may be nil.
func Workloads(prev *Manifest, next *app.App) map[string]string {
	out := map[string]string{}
	if prev == nil || next == nil {
		return out
	}
	had := map[string]string{}
	for _, c := range prev.Components {
		had[c.Name] = c.Workload
	}
	for _, c := range next.Components {
		if w, ok := had[c.Name]; ok {
			out[c.Name] = w
			continue
		}
		for _, f := range slices.Sorted(slices.Values(c.FormerNames)) {
			if w, ok := had[f]; ok {
				out[c.Name] = w
				break
			}
		}
	}
	return out
}
