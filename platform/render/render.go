// Package render turns one version of an app model into the Kubernetes objects that the platform's deployer applies
// with server-side apply: for each component a Deployment (stateless) or StatefulSet (stateful), its Services,
// ConfigMaps, Secrets, PersistentVolumeClaims and Ingress; for the app its config groups and raw resources.
//
// Render is a pure function: the same Input gives the same Manifest, byte for byte (Canonical), and nothing is read
// from a cluster. Workloads and Compare serve upgrades: the first keeps the workload (and so the volumes) of a
// renamed component, the second previews what an upgrade changes.
package render

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/wutong-paas/wutong-offline/platform/app"
)

// Labels on every object.
const (
	LabelApp               = "app.wutong.io/app"            // the app key
	LabelInstall           = "app.wutong.io/install"        // the install name
	LabelComponent         = "app.wutong.io/component"      // the component name (not on app-level objects)
	LabelWorkload          = "app.wutong.io/workload"       // on pod templates and selectors: the workload object name
	LabelRevision          = "app.wutong.io/revision"       // the revision number, on object metadata only (never on pod templates, so that a new revision with the same pod spec does not restart pods)
	LabelManagedBy         = "app.kubernetes.io/managed-by" // value ManagedBy
	ManagedBy              = "wutong"
	LabelVersion           = "app.kubernetes.io/version"   // the app version, on object metadata (not on pod templates)
	AnnotationConfigDigest = "app.wutong.io/config-digest" // on pod templates: sha256 of the ConfigMaps/Secrets the pod consumes, so a config change rolls the pods
)

// DefaultIngressClass is the ingressClassName of Ingresses when Input.IngressClass is empty: the Traefik that the
// bundle carries.
const DefaultIngressClass = "traefik"

// Input is what Render needs: one app version and how it is installed.
type Input struct {
	App          *app.App          // a valid model with defaults applied (app.Parse / app.Decode output)
	Install      string            // install name, a DNS label
	Namespace    string            // the team's namespace; set on every object
	Revision     int               // >= 1
	Images       map[string]string // component image reference as written in the model -> cluster registry reference by digest; every component's image must be there
	Values       Values            // what the person installing gives on top of the model
	Workloads    map[string]string // component name -> workload object name; missing: the component's own name (see Workloads)
	IngressClass string            // ingressClassName of Ingresses; default "traefik"
	Domain       string            // base domain for external http/grpc ports with no domain: COMPONENT-INSTALL.NAMESPACE.DOMAIN; empty: the rule has no host (path only)
}

// Kinds of component workloads.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
)

// Limits on names that Kubernetes enforces, or that its controllers need.
const (
	maxServiceName = validation.DNS1035LabelMaxLength // a Service name is a DNS-1035 label
	// maxStatefulSetName leaves room for the controller-revision-hash label (NAME-HASH, at most 63 characters).
	maxStatefulSetName = 52
)

// Render turns in.App into the objects of one revision. It does not change in.App. Its errors say what is wrong,
// where, and how to fix it.
func Render(in Input) (*Manifest, error) {
	r, err := newRenderer(in)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	m, err := r.render()
	if err != nil {
		return nil, fmt.Errorf("render %s %s: %w", r.a.Key, r.a.Version, err)
	}
	return m, nil
}

// renderer holds one Render call: the checked input and what is derived from it.
type renderer struct {
	in        Input
	a         *app.App // a defaulted copy of in.App, components and groups sorted by name
	comps     map[string]*app.Component
	workloads map[string]string                     // component → workload name, for every component
	images    map[string]string                     // component → image by digest
	shared    map[string]*unstructured.Unstructured // config groups by name: their rendered ConfigMap or Secret
	conn      map[string]*unstructured.Unstructured // component → its connection Secret, when it has connection info
}

func newRenderer(in Input) (*renderer, error) {
	if in.App == nil {
		return nil, errors.New("no app given")
	}
	// Canonical validates; Decode gives a defaulted, sorted copy, so that Render neither changes in.App nor trips on
	// a model built in code without defaults.
	canon, err := in.App.Canonical()
	if err != nil {
		return nil, err
	}
	a, err := app.Decode(canon)
	if err != nil {
		return nil, err
	}
	var problems []string
	if errs := content.IsDNS1123Label(in.Install); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("install name %q is not a DNS label (%s): use at most 63 lowercase letters, digits and '-'", in.Install, errs[0]))
	}
	if errs := content.IsDNS1123Label(in.Namespace); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("namespace %q is not a valid namespace name (%s)", in.Namespace, errs[0]))
	}
	if in.Revision < 1 {
		problems = append(problems, fmt.Sprintf("revision %d is not 1 or more: revisions count from 1", in.Revision))
	}
	if in.Domain != "" {
		if msg := checkHost(in.Domain); msg != "" {
			problems = append(problems, fmt.Sprintf("base domain %q %s", in.Domain, msg))
		}
	}
	if errs := content.IsDNS1123Subdomain(cmp.Or(in.IngressClass, DefaultIngressClass)); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("ingress class %q is not a valid name (%s)", in.IngressClass, errs[0]))
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	if err := in.Values.Validate(a); err != nil {
		return nil, err
	}
	r := &renderer{in: in, a: a, comps: map[string]*app.Component{}, workloads: map[string]string{},
		images: map[string]string{}, shared: map[string]*unstructured.Unstructured{}, conn: map[string]*unstructured.Unstructured{}}
	r.in.IngressClass = cmp.Or(in.IngressClass, DefaultIngressClass)
	for i := range a.Components {
		r.comps[a.Components[i].Name] = &a.Components[i]
	}
	if err := r.checkComponents(); err != nil {
		return nil, err
	}
	return r, nil
}

// checkComponents checks what the app model cannot know: images, workload names, name lengths and shared volumes.
func (r *renderer) checkComponents() error {
	var problems []string
	for _, name := range sortedKeys(r.in.Workloads) {
		if r.comps[name] == nil {
			problems = append(problems, fmt.Sprintf("workloads names component %q, which the app does not have", name))
		}
	}
	owner := map[string]string{} // workload → component
	for _, c := range r.a.Components {
		w := cmp.Or(r.in.Workloads[c.Name], c.Name)
		r.workloads[c.Name] = w
		if errs := validation.IsDNS1035Label(w); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("component %s: workload name %q is not a DNS label (%s)", c.Name, w, errs[0]))
		}
		if prev, ok := owner[w]; ok {
			problems = append(problems, fmt.Sprintf("components %s and %s would share the workload %q: each component needs its own", prev, c.Name, w))
		}
		owner[w] = c.Name
		img, ok := r.in.Images[c.Image]
		switch {
		case !ok || img == "":
			problems = append(problems, fmt.Sprintf("component %s: image %s is not in the cluster registry (no entry in Images): import the app package again", c.Name, c.Image))
		default:
			r.images[c.Name] = img
		}
		if c.Kind == app.KindStateful && len(w) > maxStatefulSetName {
			problems = append(problems, fmt.Sprintf("component %s: the StatefulSet name %q is longer than %d characters: give the component a shorter name", c.Name, w, maxStatefulSetName))
		}
		for _, svc := range r.serviceNames(c) {
			if len(svc) > maxServiceName {
				problems = append(problems, fmt.Sprintf("component %s: the Service name %q is longer than %d characters: give the component a shorter name", c.Name, svc, maxServiceName))
			}
		}
		if *c.Replicas > math.MaxInt32 {
			problems = append(problems, fmt.Sprintf("component %s: replicas %d is more than Kubernetes allows (%d)", c.Name, *c.Replicas, math.MaxInt32))
		}
		if n := r.in.Values.Replicas[c.Name]; n > math.MaxInt32 {
			problems = append(problems, fmt.Sprintf("values: replicas[%s] %d is more than Kubernetes allows (%d)", c.Name, n, math.MaxInt32))
		}
		for _, p := range []*app.Probe{c.Probes.Liveness, c.Probes.Readiness} {
			if p != nil && max(p.InitialDelaySeconds, p.PeriodSeconds, p.TimeoutSeconds, p.FailureThreshold) > math.MaxInt32 {
				problems = append(problems, fmt.Sprintf("component %s: a probe's seconds or threshold is more than Kubernetes allows (%d)", c.Name, math.MaxInt32))
			}
		}
		for _, v := range c.Volumes {
			if v.From == "" {
				continue
			}
			if o := r.comps[v.From]; o != nil && o.Kind == app.KindStateful {
				problems = append(problems, fmt.Sprintf("component %s mounts volume %s of %s, which is stateful: a stateful component has one volume per replica, which others cannot mount (fix: make %s stateless with accessMode: ReadWriteMany on %s, or declare the volume on %s itself)",
					c.Name, v.Name, v.From, v.From, v.Name, c.Name))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// serviceNames are the names of the Services a component gets.
func (r *renderer) serviceNames(c app.Component) []string {
	var out []string
	if len(c.Ports) > 0 {
		out = append(out, c.Name)
	}
	if c.Kind == app.KindStateful {
		out = append(out, r.workloads[c.Name]+"-headless")
	}
	if slices.ContainsFunc(c.Ports, isNodePort) {
		out = append(out, c.Name+"-nodeport")
	}
	return out
}

func (r *renderer) render() (*Manifest, error) {
	m := &Manifest{App: r.a.Key, Version: r.a.Version}
	for _, g := range r.a.ConfigGroups {
		o, err := r.configGroup(g)
		if err != nil {
			return nil, err
		}
		r.shared[g.Name] = o
		m.Shared = append(m.Shared, o)
	}
	for i, raw := range r.a.Resources {
		o, err := r.rawObject(raw)
		if err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		m.Shared = append(m.Shared, o)
	}
	for _, c := range r.a.Components {
		if len(c.ConnectionInfo) > 0 {
			o, err := r.connectionSecret(c)
			if err != nil {
				return nil, err
			}
			r.conn[c.Name] = o
		}
	}
	routes := map[string]string{} // host+path → component/port, across the app
	for _, name := range r.a.StartOrder() {
		c := r.comps[name]
		objs, err := r.component(*c, routes)
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", name, err)
		}
		kind := KindDeployment
		if c.Kind == app.KindStateful {
			kind = KindStatefulSet
		}
		m.Components = append(m.Components, Component{Name: name, Workload: r.workloads[name], Kind: kind,
			DependsOn: slices.Clone(c.DependsOn), Objects: objs})
	}
	return m, nil
}

// metaLabels are the labels of an object's metadata; component is empty for app-level objects.
func (r *renderer) metaLabels(component string) map[string]string {
	l := map[string]string{
		LabelApp:       r.a.Key,
		LabelInstall:   r.in.Install,
		LabelRevision:  strconv.Itoa(r.in.Revision),
		LabelManagedBy: ManagedBy,
		LabelVersion:   labelValue(r.a.Version),
	}
	if component != "" {
		l[LabelComponent] = component
	}
	return l
}

// selector selects the pods of a component's workload; it never changes across versions and renames.
func (r *renderer) selector(component string) map[string]string {
	return map[string]string{LabelInstall: r.in.Install, LabelWorkload: r.workloads[component]}
}

// podLabels are the labels of a component's pod template: no revision and no app version, so that a new revision
// or version that leaves a component's pod spec alone does not restart its pods.
func (r *renderer) podLabels(component string) map[string]string {
	return map[string]string{
		LabelApp:       r.a.Key,
		LabelInstall:   r.in.Install,
		LabelComponent: component,
		LabelWorkload:  r.workloads[component],
	}
}

// labelValue makes s a valid label value: characters other than letters, digits, '-', '_' and '.' (such as the '+'
// of semantic version build metadata) become '_', and it is cut to 63 characters that start and end with a letter
// or digit.
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	out := string(b)
	if len(out) > content.LabelValueMaxLength {
		out = out[:content.LabelValueMaxLength]
	}
	return strings.TrimFunc(out, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9')
	})
}

// checkHost returns what is wrong with a host name, or "".
func checkHost(h string) string {
	if errs := content.IsDNS1123Subdomain(h); len(errs) > 0 {
		return "is not a valid host name: use lowercase letters, digits, '-' and '.', such as shop.example.com"
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) > content.DNS1123LabelMaxLength {
			return fmt.Sprintf("has a part longer than %d characters (%q)", content.DNS1123LabelMaxLength, label)
		}
	}
	return ""
}
