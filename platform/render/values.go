package render

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/wutong-paas/wutong-offline/platform/app"
)

// Values are what the person installing gives on top of the model; stored with each revision as JSON.
type Values struct {
	Env      map[string]map[string]string `json:"env,omitempty"`      // component -> variable -> value; wins over the model's env
	Replicas map[string]int               `json:"replicas,omitempty"` // component -> replicas (>= 0)
	Domains  map[string]string            `json:"domains,omitempty"`  // "component/port-name" -> host name, for external http/grpc ports
}

// envName is a portable environment variable name, as the app model requires.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValuesError lists every problem of Values, so that all can be fixed in one go.
type ValuesError struct {
	Problems []string // each says what is wrong, where, and how to fix it
}

func (e *ValuesError) Error() string {
	return "invalid values:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Validate checks v against the app: unknown component and port names, bad environment variable names, negative
// replicas and bad host names. It returns a *ValuesError listing every problem, or nil.
func (v Values) Validate(a *app.App) error {
	if a == nil {
		return &ValuesError{Problems: []string{"no app to check the values against"}}
	}
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	names := make([]string, 0, len(a.Components))
	for _, c := range a.Components {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	unknown := func(where, name string) {
		add("%s: %q is not a component of app %s (fix: use one of %s)", where, name, a.Key, strings.Join(names, ", "))
	}
	for _, comp := range sortedKeys(v.Env) {
		if a.Component(comp) == nil {
			unknown("env", comp)
			continue
		}
		for _, k := range sortedKeys(v.Env[comp]) {
			if !envName.MatchString(k) {
				add("env[%s]: %q is not a valid environment variable name (fix: use letters, digits and '_', not starting with a digit, such as LOG_LEVEL)", comp, k)
			}
		}
	}
	for _, comp := range sortedKeys(v.Replicas) {
		switch n := v.Replicas[comp]; {
		case a.Component(comp) == nil:
			unknown("replicas", comp)
		case n < 0:
			add("replicas[%s]: %d is negative (fix: use 0 or more)", comp, n)
		}
	}
	for _, key := range sortedKeys(v.Domains) {
		where := fmt.Sprintf("domains[%s]", key)
		comp, portName, ok := strings.Cut(key, "/")
		if !ok {
			add("%s: the key is not COMPONENT/PORT (fix: name the component and its port, such as web/http)", where)
			continue
		}
		c := a.Component(comp)
		if c == nil {
			unknown(where, comp)
			continue
		}
		i := slices.IndexFunc(c.Ports, func(p app.Port) bool { return portName == effPortName(p) })
		if i < 0 {
			var pn []string
			for _, p := range c.Ports {
				pn = append(pn, effPortName(p))
			}
			fix := "component " + comp + " has no ports"
			if len(pn) > 0 {
				fix = "use one of " + strings.Join(pn, ", ")
			}
			add("%s: component %s has no port %q (fix: %s)", where, comp, portName, fix)
			continue
		}
		if !isIngress(c.Ports[i]) {
			add("%s: port %s of %s is not an external http or grpc port; only those are served on a domain (fix: remove it, or set protocol: http and expose: external on the port)", where, portName, comp)
		}
		if msg := checkHost(v.Domains[key]); msg != "" {
			add("%s: %q %s", where, v.Domains[key], msg)
		}
	}
	if len(ps) > 0 {
		return &ValuesError{Problems: ps}
	}
	return nil
}

// effPortName is a port's name, its default when left out.
func effPortName(p app.Port) string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprintf("%s-%d", effProtocol(p), p.Port)
}

func effProtocol(p app.Port) string {
	if p.Protocol != "" {
		return p.Protocol
	}
	return app.ProtocolTCP
}

// isIngress reports whether a port is served through an Ingress: an external http or grpc port.
func isIngress(p app.Port) bool {
	proto := effProtocol(p)
	return p.Expose == app.ExposeExternal && (proto == app.ProtocolHTTP || proto == app.ProtocolGRPC)
}

// isNodePort reports whether a port is served on a node port: an external tcp or udp port.
func isNodePort(p app.Port) bool {
	proto := effProtocol(p)
	return p.Expose == app.ExposeExternal && (proto == app.ProtocolTCP || proto == app.ProtocolUDP)
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
