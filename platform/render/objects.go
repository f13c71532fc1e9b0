package render

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wutong-paas/wutong-offline/platform/app"
)

// configGroup renders a config group: a ConfigMap, or a Secret when the group is secret.
func (r *renderer) configGroup(g app.ConfigGroup) (*unstructured.Unstructured, error) {
	data := map[string]string{}
	for _, it := range g.Items {
		data[it.Key] = it.Value
	}
	name := r.in.Install + "-" + g.Name
	if g.Secret {
		return r.secret(name, "", data)
	}
	return r.configMap(name, "", data)
}

// connectionSecret renders the Secret that holds a component's connection info, which its dependants receive.
func (r *renderer) connectionSecret(c app.Component) (*unstructured.Unstructured, error) {
	data := map[string]string{}
	for _, e := range c.ConnectionInfo {
		data[e.Name] = e.Value
	}
	return r.secret(r.workloads[c.Name]+"-connection", c.Name, data)
}

func (r *renderer) objectMeta(name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: r.in.Namespace, Labels: r.metaLabels(component)}
}

func (r *renderer) configMap(name, component string, data map[string]string) (*unstructured.Unstructured, error) {
	return toUnstructured(&corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: r.objectMeta(name, component),
		Data:       data,
	})
}

// secret renders an Opaque Secret. It sets data (base64), not stringData: stringData is write-only, so server-side
// apply could neither see its keys again nor remove them.
func (r *renderer) secret(name, component string, data map[string]string) (*unstructured.Unstructured, error) {
	bin := make(map[string][]byte, len(data))
	for k, v := range data {
		bin[k] = []byte(v)
	}
	return toUnstructured(&corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: r.objectMeta(name, component),
		Type:       corev1.SecretTypeOpaque,
		Data:       bin,
	})
}

// rawObject carries a raw resource of the app: a copy with numbers as int64 or float64, the namespace set and our
// labels added (ours win over labels of the same key).
func (r *renderer) rawObject(raw app.Object) (*unstructured.Unstructured, error) {
	v, err := plainJSON(map[string]any(raw))
	if err != nil {
		return nil, err
	}
	obj, _ := v.(map[string]any)
	u := &unstructured.Unstructured{Object: obj}
	u.SetNamespace(r.in.Namespace)
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range r.metaLabels("") {
		labels[k] = v
	}
	u.SetLabels(labels)
	return u, nil
}

// plainJSON deep-copies a JSON value with its numbers as int64 (when whole and in range) or float64, which
// unstructured objects can hold, unlike json.Number.
func plainJSON(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := plainJSON(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case app.Object:
		return plainJSON(map[string]any(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := plainJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return f, nil
	case string, bool, nil, int64, float64:
		return x, nil
	default:
		// Not from JSON (a model built in code): go through JSON once.
		data, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		var back any
		if err := decodeJSONNumbers(data, &back, false); err != nil {
			return nil, err
		}
		return plainJSON(back)
	}
}

// fileKeys gives each config file a ConfigMap key: its base name made safe ([-._a-zA-Z0-9]), with a short hash of
// its path added when two files would share a key. Keys depend only on the paths, so they are stable.
func fileKeys(files []app.ConfigFile) map[string]string {
	base := func(p string) string {
		b := []byte(path.Base(p))
		for i, c := range b {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				b[i] = '_'
			}
		}
		s := strings.Trim(string(b), ".")
		if s == "" {
			s = "file"
		}
		return s
	}
	count := map[string]int{}
	for _, f := range files {
		count[base(f.Path)]++
	}
	paths := make([]string, 0, len(files))
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	sort.Strings(paths)
	keys, used := map[string]string{}, map[string]bool{}
	for _, p := range paths {
		k := base(p)
		if count[k] > 1 {
			sum := sha256.Sum256([]byte(p))
			k += "-" + hex.EncodeToString(sum[:4])
		}
		for n := 2; used[k]; n++ {
			k = base(p) + "-" + strconv.Itoa(n)
		}
		used[k] = true
		keys[p] = k
	}
	return keys
}

// services renders a component's Services: the ClusterIP Service named after it (when it has ports), the headless
// Service of a StatefulSet, and the NodePort Service of its external tcp and udp ports.
func (r *renderer) services(c app.Component) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	svc := func(name string, spec corev1.ServiceSpec) error {
		spec.Selector = r.selector(c.Name)
		o, err := toUnstructured(&corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: r.objectMeta(name, c.Name),
			Spec:       spec,
		})
		if err == nil {
			out = append(out, o)
		}
		return err
	}
	var ports, nodePorts []corev1.ServicePort
	for _, p := range c.Ports {
		sp := corev1.ServicePort{Name: effPortName(p), Protocol: k8sProtocol(p), Port: int32(p.Port), TargetPort: intstr.FromInt32(int32(p.Port))}
		switch effProtocol(p) {
		case app.ProtocolHTTP:
			sp.AppProtocol = new("http")
		case app.ProtocolGRPC:
			sp.AppProtocol = new("kubernetes.io/h2c")
		}
		ports = append(ports, sp)
		if isNodePort(p) {
			nodePorts = append(nodePorts, sp)
		}
	}
	if len(ports) > 0 {
		if err := svc(c.Name, corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: ports}); err != nil {
			return nil, err
		}
	}
	if c.Kind == app.KindStateful {
		if err := svc(r.workloads[c.Name]+"-headless", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP,
			ClusterIP: corev1.ClusterIPNone, PublishNotReadyAddresses: true, Ports: ports}); err != nil {
			return nil, err
		}
	}
	if len(nodePorts) > 0 {
		if err := svc(c.Name+"-nodeport", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: nodePorts}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func k8sProtocol(p app.Port) corev1.Protocol {
	if effProtocol(p) == app.ProtocolUDP {
		return corev1.ProtocolUDP
	}
	return corev1.ProtocolTCP
}

// ingress renders the Ingress of a component's external http and grpc ports, or nil when it has none. routes holds
// the host and path of every rule rendered so far, so that two ports are never served at the same place.
func (r *renderer) ingress(c app.Component, routes map[string]string) (*unstructured.Unstructured, error) {
	var rules []networkingv1.IngressRule
	for _, p := range c.Ports {
		if !isIngress(p) {
			continue
		}
		name := effPortName(p)
		host := r.in.Values.Domains[c.Name+"/"+name]
		if host == "" {
			host = p.Domain
		}
		if host == "" && r.in.Domain != "" {
			host = c.Name + "-" + r.in.Install + "." + r.in.Namespace + "." + r.in.Domain
			if msg := checkHost(host); msg != "" {
				return nil, fmt.Errorf("port %s: the generated host name %q %s (fix: give the port a domain in the values, domains: {%q: HOST})",
					name, host, msg, c.Name+"/"+name)
			}
		}
		routePath := p.Path
		if routePath == "" {
			routePath = app.DefaultHTTPPath
		}
		route := host + routePath
		if prev, ok := routes[route]; ok {
			where := "without a host name"
			if host != "" {
				where = "on " + host
			}
			return nil, fmt.Errorf("port %s would be served %s at path %s, as port %s already is (fix: give one of them its own domain in the values, such as domains: {%q: HOST}, or another path)",
				name, where, routePath, prev, c.Name+"/"+name)
		}
		routes[route] = c.Name + "/" + name
		rp := networkingv1.HTTPIngressPath{Path: routePath, PathType: new(networkingv1.PathTypePrefix),
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: c.Name,
				Port: networkingv1.ServiceBackendPort{Name: name}}}}
		if i := indexRule(rules, host); i >= 0 {
			rules[i].HTTP.Paths = append(rules[i].HTTP.Paths, rp)
			continue
		}
		rules = append(rules, networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{rp}}}})
	}
	if len(rules) == 0 {
		return nil, nil
	}
	return toUnstructured(&networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: r.objectMeta(c.Name, c.Name),
		Spec:       networkingv1.IngressSpec{IngressClassName: new(r.in.IngressClass), Rules: rules},
	})
}

func indexRule(rules []networkingv1.IngressRule, host string) int {
	for i, rl := range rules {
		if rl.Host == host {
			return i
		}
	}
	return -1
}

// claimSpec is the PersistentVolumeClaim spec of a volume the component declares.
func claimSpec(v app.Volume) (corev1.PersistentVolumeClaimSpec, error) {
	size, err := resource.ParseQuantity(v.Size)
	if err != nil {
		return corev1.PersistentVolumeClaimSpec{}, fmt.Errorf("volume %s: size %q: %w", v.Name, v.Size, err)
	}
	mode := v.AccessMode
	if mode == "" {
		mode = app.ReadWriteOnce
	}
	return corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.PersistentVolumeAccessMode(mode)},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
	}, nil
}

// claims renders the PersistentVolumeClaims of a stateless component's own volumes.
func (r *renderer) claims(c app.Component) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, v := range c.Volumes {
		if v.From != "" {
			continue
		}
		spec, err := claimSpec(v)
		if err != nil {
			return nil, err
		}
		o, err := toUnstructured(&corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: r.objectMeta(r.workloads[c.Name]+"-"+v.Name, c.Name),
			Spec:       spec,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// configDigest is the sha256 of the data of the ConfigMaps and Secrets a pod consumes.
func configDigest(objs []*unstructured.Unstructured) string {
	h := sha256.New()
	for _, o := range objs {
		fmt.Fprintf(h, "%s/%s\n", o.GetKind(), o.GetName())
		data, _, _ := unstructured.NestedFieldNoCopy(o.Object, "data")
		m, _ := data.(map[string]any)
		for _, k := range sortedKeys(m) {
			s, _ := m[k].(string)
			fmt.Fprintf(h, "%d:%s=%d:%s\n", len(k), k, len(s), s)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// toUnstructured converts a typed object into a clean apply configuration: no status, no empty creationTimestamp.
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", obj, err)
	}
	delete(m, "status")
	clean(m)
	return &unstructured.Unstructured{Object: m}, nil
}

// clean drops, at any depth, what typed zero values leave behind: creationTimestamp: null, status: {} (of
// volumeClaimTemplates), resources: {} and updateStrategy: {}.
func clean(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch {
			case k == "creationTimestamp" && e == nil:
				delete(x, k)
			case (k == "status" || k == "resources" || k == "updateStrategy") && isEmptyMap(e):
				delete(x, k)
			default:
				clean(e)
			}
		}
	case []any:
		for _, e := range x {
			clean(e)
		}
	}
}

func isEmptyMap(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

// decodeBase64 is the inverse of how Secrets hold data.
func decodeBase64(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return s
	}
	return string(b)
}
