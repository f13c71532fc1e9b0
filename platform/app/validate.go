package app

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
	"k8s.io/apimachinery/pkg/api/validate/content"

	"github.com/wutong-paas/wutong-offline/internal/yamlnode"
)

var (
	// keyRE is an app key: a DNS-1123 label.
	keyRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// dnsLabel names components, volumes and config groups: a DNS-1035 label, as Kubernetes Service names are.
	dnsLabel = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// envName is a portable environment variable name (a C identifier).
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// knownArches are the CPU architectures an app or component may be limited to.
var knownArches = []string{"amd64", "arm64", "loong64"}

// maxNameLen bounds an app's display name, in characters.
const maxNameLen = 128

// Validate runs the checks Parse runs on a model built in code or decoded from JSON, with fields left empty taken
// as their defaults. It returns a *ValidationError listing every problem (without lines), or nil.
func (a *App) Validate() error {
	return finish("", check(a), nil, namesOf(a))
}

// check returns every problem of a, with index paths.
func check(a *App) []problem {
	l := &lister{names: componentNames(a), namer: namesOf(a)}
	if a.APIVersion != "" && a.APIVersion != APIVersion {
		l.addf("apiVersion", "set apiVersion: "+APIVersion, "is %q, expected %q", a.APIVersion, APIVersion)
	}
	if a.Kind != "" && a.Kind != Kind {
		l.addf("kind", "set kind: "+Kind, "is %q, expected %q", a.Kind, Kind)
	}
	switch {
	case a.Key == "":
		l.add("key", "is missing", "add key: the app's stable identity, such as my-app")
	case !keyRE.MatchString(a.Key):
		l.addf("key", "use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, such as my-app",
			"%q is not a valid app key", a.Key)
	}
	if utf8.RuneCountInString(a.Name) > maxNameLen {
		l.addf("name", "shorten it; put the rest in description", "is longer than %d characters", maxNameLen)
	}
	checkVersion(l, a.Version)
	checkArches(l, "arches", a.Arches, nil)
	if len(a.Components) == 0 {
		l.add("components", "lists no component", "add at least one component with a name and an image")
	}
	v := newVolumeIndex(a)
	for i := range a.Components {
		checkComponent(l, a, i, v)
	}
	checkNames(l, a)
	checkDomains(l, a)
	checkCycles(l, a)
	checkConfigGroups(l, a)
	checkInjectedEnv(l, a)
	for i, o := range a.Resources {
		checkObject(l, fmt.Sprintf("resources[%d]", i), o)
	}
	checkObjectClashes(l, a.Resources)
	return l.problems
}

func checkVersion(l *lister, v string) {
	if v == "" {
		l.add("version", "is missing", "add version: a semantic version such as 1.0.0")
		return
	}
	if _, err := semver.StrictNewVersion(v); err != nil {
		fix := "use a semantic version MAJOR.MINOR.PATCH such as 1.0.0 or 1.0.0-rc.1"
		if strings.HasPrefix(v, "v") || strings.HasPrefix(v, "V") {
			fix = "drop the leading v: " + v[1:]
		}
		l.addf("version", fix, "%q is not a strict semantic version", v)
	}
}

// checkArches checks a list of arches: known, unique and, when within is not empty, each in within.
func checkArches(l *lister, path string, arches, within []string) {
	seen := map[string]bool{}
	for i, arch := range arches {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !slices.Contains(knownArches, arch):
			l.addf(p, "use "+strings.Join(knownArches, ", "), "unknown arch %q", arch)
		case seen[arch]:
			l.addf(p, "remove the repeat", "%s is listed twice", arch)
		case len(within) > 0 && !slices.Contains(within, arch):
			l.addf(p, "add it to the app's arches or remove it here", "%s is not one of the app's arches (%s)", arch, strings.Join(within, ", "))
		}
		seen[arch] = true
	}
}

// checkNames checks that component names and former names are unique across the app: an upgrade matches
// components by them.
func checkNames(l *lister, a *App) {
	owner := map[string]string{} // name → "components[0]" or "components[0].formerNames"
	for i, c := range a.Components {
		if c.Name == "" {
			continue
		}
		p := fmt.Sprintf("components[%d]", i)
		if prev, ok := owner[c.Name]; ok {
			l.addf(p+".name", "give each component its own name", "component name %q is already used by %s", c.Name, prev)
			continue
		}
		owner[c.Name] = p
	}
	for i, c := range a.Components {
		p := fmt.Sprintf("components[%d]", i)
		for j, f := range c.FormerNames {
			fp := fmt.Sprintf("%s.formerNames[%d]", p, j)
			switch prev, ok := owner[f]; {
			case f == c.Name:
				l.addf(fp, "remove it", "%q is this component's own name", f)
			case !dnsLabel.MatchString(f):
				l.addf(fp, "former names are component names: a DNS label", "%q is not a valid component name", f)
			case ok:
				l.addf(fp, "a former name may belong to one component only; remove it here or there",
					"%q is already the name or a former name of %s", f, l.namer.name(prev))
			default:
				owner[f] = p + ".formerNames"
			}
		}
	}
}

// checkDomains refuses two external http ports served on the same domain and path.
func checkDomains(l *lister, a *App) {
	seen := map[string]string{}
	for i, c := range a.Components {
		for j, p := range c.Ports {
			if p.Domain == "" || effProtocol(p) != ProtocolHTTP || effExpose(p) != ExposeExternal {
				continue
			}
			route := p.Domain + effRoutePath(p)
			here := fmt.Sprintf("components[%d].ports[%d]", i, j)
			if prev, ok := seen[route]; ok {
				l.addf(here+".domain", "use another domain or path", "%s is already served by %s", route, l.namer.name(prev))
				continue
			}
			seen[route] = here
		}
	}
}

// checkCycles reports each dependsOn cycle once, naming its components.
func checkCycles(l *lister, a *App) {
	index := map[string]int{}
	for i, c := range a.Components {
		if _, dup := index[c.Name]; !dup && c.Name != "" {
			index[c.Name] = i
		}
	}
	const (
		unvisited = iota
		active
		done
	)
	state := make([]int, len(a.Components))
	var stack []int
	reported := map[string]bool{}
	var visit func(i int)
	visit = func(i int) {
		state[i] = active
		stack = append(stack, i)
		for _, dep := range a.Components[i].DependsOn {
			j, ok := index[dep]
			if !ok || j == i {
				continue // unknown, or itself: reported on its own
			}
			switch state[j] {
			case unvisited:
				visit(j)
			case active:
				start := slices.Index(stack, j)
				cycle := slices.Clone(stack[start:])
				// Start the cycle at its smallest name, so that it is reported once whichever way it was entered.
				m := 0
				for k := range cycle {
					if a.Components[cycle[k]].Name < a.Components[cycle[m]].Name {
						m = k
					}
				}
				cycle = append(cycle[m:], cycle[:m]...)
				var names []string
				for _, k := range cycle {
					names = append(names, a.Components[k].Name)
				}
				names = append(names, names[0])
				text := strings.Join(names, " → ")
				if !reported[text] {
					reported[text] = true
					l.addf(fmt.Sprintf("components[%d].dependsOn", cycle[0]), "remove one of these dependencies",
						"dependsOn has a cycle: %s", text)
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
	}
	for i := range a.Components {
		if state[i] == unvisited {
			visit(i)
		}
	}
}

func checkConfigGroups(l *lister, a *App) {
	names := map[string]bool{}
	components := l.names
	for i, g := range a.ConfigGroups {
		p := fmt.Sprintf("configGroups[%d]", i)
		switch {
		case g.Name == "":
			l.add(p+".name", "is missing", "name the group, such as database")
		case !dnsLabel.MatchString(g.Name):
			l.addf(p+".name", dnsLabelFix, "%q is not a valid config group name", g.Name)
		case names[g.Name]:
			l.addf(p+".name", "give each group its own name", "config group %q is defined twice", g.Name)
		}
		names[g.Name] = true
		if len(g.Items) == 0 {
			l.add(p+".items", "lists no item", "add items (key, value) or remove the group")
		}
		keys := map[string]bool{}
		for j, it := range g.Items {
			ip := fmt.Sprintf("%s.items[%d].key", p, j)
			switch {
			case it.Key == "":
				l.add(ip, "is missing", "give the item a key: an environment variable name such as DB_HOST")
			case !envName.MatchString(it.Key):
				l.addf(ip, envNameFix, "%q is not a valid environment variable name", it.Key)
			case keys[it.Key]:
				l.addf(ip, "give each item its own key", "key %q is in the group twice", it.Key)
			}
			keys[it.Key] = true
		}
		seen := map[string]bool{}
		for j, target := range g.InjectInto {
			tp := fmt.Sprintf("%s.injectInto[%d]", p, j)
			switch {
			case target == "*" && len(g.InjectInto) > 1:
				l.add(tp, `"*" (all components) stands alone`, `use either ["*"] or a list of component names`)
			case target == "*":
			case seen[target]:
				l.addf(tp, "remove the repeat", "%q is listed twice", target)
			case !sortedContains(components, target):
				l.add(tp, fmt.Sprintf("%q is not a component of this app", target), unknownComponentFix(target, components))
			}
			seen[target] = true
		}
	}
}

// checkInjectedEnv refuses an environment variable that reaches a component from two places (two config groups,
// or connection info of two dependencies) unless the component sets it itself, which wins.
func checkInjectedEnv(l *lister, a *App) {
	for i, c := range a.Components {
		own := map[string]bool{}
		for _, e := range c.Env {
			own[e.Name] = true
		}
		from := map[string]string{}
		reported := map[string]bool{}
		for _, s := range injectedEnv(a, c) {
			if own[s.env.Name] {
				continue
			}
			prev, ok := from[s.env.Name]
			if ok && prev != s.source && !reported[s.env.Name] {
				reported[s.env.Name] = true
				l.addf(fmt.Sprintf("components[%d]", i), fmt.Sprintf("rename it in one of them, or set %s in this component's env, which wins", s.env.Name),
					"environment variable %s comes from both %s and %s", s.env.Name, prev, s.source)
			}
			if !ok {
				from[s.env.Name] = s.source
			}
		}
	}
}

// cluster-scoped kinds an app may not carry: an app lives in its team's namespace and may not change the cluster.
var clusterScoped = []string{
	"APIService", "CertificateSigningRequest", "ClusterIssuer", "ClusterRole", "ClusterRoleBinding", "ComponentStatus",
	"CSIDriver", "CSINode", "CustomResourceDefinition", "DeviceClass", "FlowSchema", "IngressClass", "IPAddress",
	"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "MutatingWebhookConfiguration", "Namespace", "Node",
	"PersistentVolume", "PodSecurityPolicy", "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass",
	"ServiceCIDR", "StorageClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
	"ValidatingWebhookConfiguration", "VolumeAttachment",
}

// checkObject checks a raw Kubernetes object.
func checkObject(l *lister, p string, o Object) {
	if _, err := json.Marshal(o); err != nil {
		l.addf(p, "write numbers and strings only (no .nan, .inf or binary data)", "cannot be written as JSON: %v", err)
		return
	}
	apiVersion, _ := o["apiVersion"].(string)
	kind, _ := o["kind"].(string)
	if apiVersion == "" {
		l.add(p+".apiVersion", "is missing", "give the object's apiVersion, such as v1 or apps/v1")
	}
	if kind == "" {
		l.add(p+".kind", "is missing", "give the object's kind, such as ConfigMap")
	}
	if slices.Contains(clusterScoped, kind) {
		l.addf(p+".kind", "remove it; ask the cluster's operator to create it",
			"%s is cluster-scoped: an app lives in its team's namespace and may not change the cluster", kind)
	}
	meta := asMap(o["metadata"])
	if meta == nil {
		l.add(p+".metadata", "is missing", "give metadata with a name")
		return
	}
	name, _ := meta["name"].(string)
	switch {
	case name == "":
		l.add(p+".metadata.name", "is missing", "give the object a name")
	case len(content.IsDNS1123Subdomain(name)) > 0:
		l.addf(p+".metadata.name", "use lowercase letters, digits, '-' and '.'", "%q is not a valid object name", name)
	}
	if _, ok := meta["namespace"]; ok {
		l.add(p+".metadata.namespace", "is set", "remove it: the app's namespace is chosen when it is installed")
	}
}

// checkObjectClashes refuses two objects of the same kind and name.
func checkObjectClashes(l *lister, objs []Object) {
	seen := map[string]int{}
	for i, o := range objs {
		apiVersion, _ := o["apiVersion"].(string)
		kind, _ := o["kind"].(string)
		name, _ := asMap(o["metadata"])["name"].(string)
		if kind == "" || name == "" {
			continue
		}
		group, _, _ := strings.Cut(apiVersion, "/")
		if !strings.Contains(apiVersion, "/") {
			group = ""
		}
		id := group + "/" + kind + "/" + name
		if prev, ok := seen[id]; ok {
			l.addf(fmt.Sprintf("resources[%d].metadata.name", i), "give each object its own name",
				"%s %q is already defined by resources[%d]", kind, name, prev)
			continue
		}
		seen[id] = i
	}
}

// asMap is a mapping of a raw object, decoded (map[string]any) or built in code (Object).
func asMap(v any) map[string]any {
	switch m := v.(type) {
	case map[string]any:
		return m
	case Object:
		return m
	}
	return nil
}

// componentNames are the names of a's components, sorted, each once.
func componentNames(a *App) []string {
	names := make([]string, 0, len(a.Components))
	for _, c := range a.Components {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// sortedContains reports whether sorted holds s.
func sortedContains(sorted []string, s string) bool {
	_, found := slices.BinarySearch(sorted, s)
	return found
}

// unknownComponentFix suggests the component name meant, or lists them.
func unknownComponentFix(name string, components []string) string {
	set := map[string]bool{}
	for _, c := range components {
		set[c] = true
	}
	if len(components) > 100 {
		return "check the names of the components" // too many to compare with each, or to list
	}
	if s := yamlnode.Closest(name, set); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return "the components are " + strings.Join(components, ", ")
}

const (
	dnsLabelFix = "use at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit"
	envNameFix  = "use letters, digits and '_', not starting with a digit, such as DB_HOST"
)
