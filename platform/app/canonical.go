package app

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Canonical returns the canonical JSON form of a valid app: defaults applied, components and config groups sorted
// by name, sets (arches, formerNames, dependsOn, injectInto) sorted, object keys sorted, no insignificant
// whitespace. Equal apps give equal bytes; its Digest is a version's content digest. An invalid app gives the
// *ValidationError of Validate.
func (a *App) Canonical() ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("canonical form of app: %w", err)
	}
	raw, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("canonical form of app: %w", err)
	}
	c, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("canonical form of app: %w", err)
	}
	c.Default()
	c.sortSets()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("canonical form of app: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Decode parses the canonical JSON of an app (as Canonical writes it) back into a validated App with defaults
// applied. Unknown fields are refused.
func Decode(canonical []byte) (*App, error) {
	a, err := decodeJSON(canonical)
	if err != nil {
		return nil, fmt.Errorf("decode app: %w", err)
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("decode app: %w", err)
	}
	a.Default()
	return a, nil
}

// decodeJSON decodes one JSON app strictly, with the numbers of raw objects as json.Number.
func decodeJSON(data []byte) (*App, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	a := &App{}
	if err := dec.Decode(a); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the app's JSON object")
	}
	return a, nil
}

// Digest is the content digest of canonical bytes: "sha256:" and the lowercase hex of their SHA-256.
func Digest(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Images returns every component image reference as written, deduplicated and sorted.
func (a *App) Images() []string {
	var out []string
	for _, c := range a.Components {
		if c.Image != "" {
			out = append(out, c.Image)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Component returns the component of that name, or nil.
func (a *App) Component(name string) *Component {
	for i := range a.Components {
		if a.Components[i].Name == name {
			return &a.Components[i]
		}
	}
	return nil
}

// Env returns the environment of the named component: the items of the config groups injected into it, then the
// connection info of the components it depends on (in dependsOn order), then its own env, which wins over both.
// It returns nil for an unknown component.
func (a *App) Env(component string) []EnvVar {
	c := a.Component(component)
	if c == nil {
		return nil
	}
	own := map[string]bool{}
	for _, e := range c.Env {
		own[e.Name] = true
	}
	var out []EnvVar
	seen := map[string]bool{}
	for _, s := range injectedEnv(a, *c) {
		if !own[s.env.Name] && !seen[s.env.Name] {
			seen[s.env.Name] = true
			out = append(out, s.env)
		}
	}
	return append(out, c.Env...)
}

// StartOrder returns the component names in an order where each comes after the components it depends on; among
// those free to go, by name. In a valid app every component is listed.
func (a *App) StartOrder() []string {
	deps := map[string][]string{}
	for _, c := range a.Components {
		deps[c.Name] = c.DependsOn
	}
	started := map[string]bool{}
	var order []string
	for len(order) < len(deps) {
		var ready []string
		for name, ds := range deps {
			if !started[name] && !slices.ContainsFunc(ds, func(d string) bool { _, known := deps[d]; return known && !started[d] }) {
				ready = append(ready, name)
			}
		}
		if len(ready) == 0 {
			break // a cycle: Validate refuses it
		}
		sort.Strings(ready)
		for _, n := range ready {
			started[n] = true
		}
		order = append(order, ready...)
	}
	return order
}

// sourcedEnv is an injected environment variable and where it comes from.
type sourcedEnv struct {
	env    EnvVar
	source string
}

// injectedEnv lists what reaches c from outside: config group items, then the connection info of its dependencies.
func injectedEnv(a *App, c Component) []sourcedEnv {
	var out []sourcedEnv
	for _, g := range a.ConfigGroups {
		if !slices.Contains(g.InjectInto, "*") && !slices.Contains(g.InjectInto, c.Name) {
			continue
		}
		for _, it := range g.Items {
			out = append(out, sourcedEnv{EnvVar{Name: it.Key, Value: it.Value}, strconv.Quote(g.Name) + " (config group)"})
		}
	}
	for _, dep := range c.DependsOn {
		if d := a.Component(dep); d != nil && d.Name != c.Name {
			for _, e := range d.ConnectionInfo {
				out = append(out, sourcedEnv{e, "the connection info of " + strconv.Quote(d.Name)})
			}
		}
	}
	return out
}

// Default fills in the defaults of fields left out and writes quantities, file modes and raw objects in their
// canonical form. It keeps what it cannot understand, for Validate to report.
func (a *App) Default() {
	a.APIVersion = cmp.Or(a.APIVersion, APIVersion)
	a.Kind = cmp.Or(a.Kind, Kind)
	a.Name = cmp.Or(a.Name, a.Key)
	for i := range a.Components {
		defaultComponent(&a.Components[i])
	}
	for i, o := range a.Resources {
		if v, err := toJSONValue(o); err == nil {
			if m, ok := v.(map[string]any); ok {
				a.Resources[i] = m
			}
		}
	}
}

func defaultComponent(c *Component) {
	c.Kind = cmp.Or(c.Kind, KindStateless)
	if c.Replicas == nil {
		n := DefaultReplicas
		c.Replicas = &n
	}
	for _, q := range []*string{&c.Resources.Requests.CPU, &c.Resources.Requests.Memory, &c.Resources.Limits.CPU, &c.Resources.Limits.Memory} {
		*q = canonicalQuantity(*q)
	}
	for i := range c.Ports {
		p := &c.Ports[i]
		p.Protocol, p.Expose, p.Name = effProtocol(*p), effExpose(*p), effPortName(*p)
		if p.Protocol == ProtocolHTTP && p.Expose == ExposeExternal {
			p.Path = effRoutePath(*p)
		}
	}
	for i := range c.ConfigFiles {
		f := &c.ConfigFiles[i]
		f.Mode = cmp.Or(f.Mode, DefaultConfigFileMode)
		if modeRE.MatchString(f.Mode) {
			f.Mode = "0" + f.Mode[len(f.Mode)-3:]
		}
	}
	for i := range c.Volumes {
		v := &c.Volumes[i]
		if v.From == "" {
			v.AccessMode = effAccessMode(*v)
			v.Size = canonicalQuantity(v.Size)
		}
	}
	for _, p := range []*Probe{c.Probes.Liveness, c.Probes.Readiness} {
		if p == nil {
			continue
		}
		p.PeriodSeconds = cmp.Or(p.PeriodSeconds, DefaultPeriodSeconds)
		p.TimeoutSeconds = cmp.Or(p.TimeoutSeconds, DefaultTimeoutSeconds)
		p.FailureThreshold = cmp.Or(p.FailureThreshold, DefaultFailureThreshold)
		if p.HTTP != nil {
			p.HTTP.Path = cmp.Or(p.HTTP.Path, DefaultHTTPPath)
		}
	}
	for i := range c.Tolerations {
		c.Tolerations[i].Operator = effOperator(c.Tolerations[i])
	}
}

// sortSets sorts what is keyed by name or is a set, so that the order it was written in does not change the
// canonical form.
func (a *App) sortSets() {
	sort.Strings(a.Arches)
	slices.SortStableFunc(a.Components, func(x, y Component) int { return cmp.Compare(x.Name, y.Name) })
	slices.SortStableFunc(a.ConfigGroups, func(x, y ConfigGroup) int { return cmp.Compare(x.Name, y.Name) })
	for i := range a.Components {
		c := &a.Components[i]
		sort.Strings(c.Arches)
		sort.Strings(c.FormerNames)
		sort.Strings(c.DependsOn)
	}
	for i := range a.ConfigGroups {
		sort.Strings(a.ConfigGroups[i].InjectInto)
	}
}

// canonicalQuantity writes a valid quantity in Kubernetes' canonical form (0.5 → 500m, 1024Mi → 1Gi).
func canonicalQuantity(s string) string {
	if s == "" {
		return s
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return s
	}
	return q.String()
}

// The effective values of fields with defaults.

func effProtocol(p Port) string { return cmp.Or(p.Protocol, ProtocolTCP) }
func effExpose(p Port) string   { return cmp.Or(p.Expose, ExposeInternal) }
func effPortName(p Port) string {
	return cmp.Or(p.Name, effProtocol(p)+"-"+strconv.Itoa(p.Port))
}
func effRoutePath(p Port) string      { return cmp.Or(p.Path, DefaultHTTPPath) }
func effAccessMode(v Volume) string   { return cmp.Or(v.AccessMode, ReadWriteOnce) }
func effOperator(t Toleration) string { return cmp.Or(t.Operator, TolerationEqual) }
