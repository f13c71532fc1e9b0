package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/facts"
	"github.com/wutong-paas/wutong-offline/installer/kube"
)

// traefikManifest is the repo's copy of the manifest that scripts/k8s/addons.sh puts into the bundle.
var traefikManifest = filepath.Join("..", "..", "scripts", "k8s", "manifests", ingressManifest)

// addonsVar reads NAME=VALUE from scripts/k8s/addons.sh, so that the manifest and the build agree.
func addonsVar(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "scripts", "k8s", "addons.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `=([^\s$]+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("scripts/k8s/addons.sh sets no %s", name)
	}
	return string(m[1])
}

// decodeStrict decodes every document of data into the typed object its kind names in client-go's scheme,
// rejecting unknown and duplicate fields, so that a misspelt field fails here rather than being dropped.
func decodeStrict(t *testing.T, source string, data []byte) []runtime.Object {
	t.Helper()
	objs, err := kube.Decode(source, data)
	if err != nil {
		t.Fatal(err)
	}
	ser := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{Strict: true})
	var out []runtime.Object
	for _, u := range objs {
		b, err := u.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		o, gvk, err := ser.Decode(b, nil, nil)
		if err != nil {
			t.Fatalf("%s: %s %s: %v", source, u.GetKind(), u.GetName(), err)
		}
		if gvk.Kind != u.GetKind() {
			t.Fatalf("%s: decoded %s as %s", source, u.GetKind(), gvk.Kind)
		}
		out = append(out, o)
	}
	return out
}

// TestTraefikManifest decodes scripts/k8s/manifests/traefik.yaml with the Kubernetes scheme and checks what the
// cluster relies on: the default IngressClass "traefik", the RBAC of the kubernetesIngress provider, and a
// DaemonSet on every node (control planes too) with ports 80 and 443, probed on /ping, running the bundle's image.
func TestTraefikManifest(t *testing.T) {
	data, err := os.ReadFile(traefikManifest)
	if err != nil {
		t.Fatal(err)
	}
	var (
		sa    *corev1.ServiceAccount
		role  *rbacv1.ClusterRole
		bind  *rbacv1.ClusterRoleBinding
		class *networkingv1.IngressClass
		ds    *appsv1.DaemonSet
	)
	for _, o := range decodeStrict(t, traefikManifest, data) {
		switch o := o.(type) {
		case *corev1.ServiceAccount:
			sa = o
		case *rbacv1.ClusterRole:
			role = o
		case *rbacv1.ClusterRoleBinding:
			bind = o
		case *networkingv1.IngressClass:
			class = o
		case *appsv1.DaemonSet:
			ds = o
		default:
			t.Errorf("unexpected object %T", o)
		}
	}
	if sa == nil || role == nil || bind == nil || class == nil || ds == nil {
		t.Fatalf("want a ServiceAccount, ClusterRole, ClusterRoleBinding, IngressClass and DaemonSet; got %v %v %v %v %v",
			sa != nil, role != nil, bind != nil, class != nil, ds != nil)
	}

	// The class the platform's Ingress objects name, and the default for those that name none.
	if class.Name != IngressClass || class.Spec.Controller != "traefik.io/ingress-controller" ||
		class.Annotations[networkingv1.AnnotationIsDefaultIngressClass] != "true" {
		t.Errorf("IngressClass %s: controller %q, annotations %v", class.Name, class.Spec.Controller, class.Annotations)
	}

	// RBAC: what Traefik's kubernetesIngress provider reads and writes.
	allowed := func(group, resource, verb string) bool {
		return slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb)
		})
	}
	for _, need := range [][2]string{{"", "services"}, {"", "secrets"}, {"", "nodes"}, {"discovery.k8s.io", "endpointslices"},
		{"networking.k8s.io", "ingresses"}, {"networking.k8s.io", "ingressclasses"}} {
		for _, verb := range []string{"list", "watch"} {
			if !allowed(need[0], need[1], verb) {
				t.Errorf("ClusterRole %s does not allow %s on %s.%s", role.Name, verb, need[1], need[0])
			}
		}
	}
	if !allowed("networking.k8s.io", "ingresses/status", "update") {
		t.Errorf("ClusterRole %s does not allow update on ingresses/status", role.Name)
	}
	if bind.RoleRef.Kind != "ClusterRole" || bind.RoleRef.Name != role.Name || len(bind.Subjects) != 1 ||
		bind.Subjects[0].Kind != "ServiceAccount" || bind.Subjects[0].Name != sa.Name || bind.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("ClusterRoleBinding %s: roleRef %+v, subjects %+v", bind.Name, bind.RoleRef, bind.Subjects)
	}

	// The DaemonSet.
	if ds.Namespace != metav1.NamespaceSystem || sa.Namespace != ds.Namespace || ds.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("DaemonSet %s/%s runs as %q; ServiceAccount %s/%s", ds.Namespace, ds.Name, ds.Spec.Template.Spec.ServiceAccountName, sa.Namespace, sa.Name)
	}
	if sel := ds.Spec.Selector; sel == nil || ds.Spec.Template.Labels["app.kubernetes.io/name"] != sel.MatchLabels["app.kubernetes.io/name"] {
		t.Errorf("selector %v does not match the template's labels %v", sel, ds.Spec.Template.Labels)
	}
	pod := ds.Spec.Template.Spec
	if pod.HostNetwork {
		t.Error("hostNetwork: the ports are published with hostPort, not the node's network")
	}
	if !slices.ContainsFunc(pod.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Key == "node-role.kubernetes.io/control-plane" && tl.Operator == corev1.TolerationOpExists && tl.Effect == corev1.TaintEffectNoSchedule
	}) {
		t.Errorf("tolerations %+v do not tolerate the control-plane taint", pod.Tolerations)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	version := addonsVar(t, "TRAEFIK_VERSION")
	if want := "docker.io/library/traefik:" + version; c.Image != want {
		t.Errorf("image %q, want %q (TRAEFIK_VERSION in scripts/k8s/addons.sh)", c.Image, want)
	}
	if len(c.Command) != 1 || c.Command[0] != "/usr/local/bin/traefik" {
		t.Errorf("command %q: the bundle's image has the binary at /usr/local/bin/traefik", c.Command)
	}
	args := map[string]string{}
	for _, a := range c.Args {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	for _, a := range []string{"--providers.kubernetesingress", "--ping"} {
		if _, ok := args[a]; !ok {
			t.Errorf("args %q lack %s", c.Args, a)
		}
	}
	if args["--global.checkNewVersion"] != "false" || args["--global.sendAnonymousUsage"] != "false" {
		t.Errorf("args %q: an air-gapped cluster must not call home", c.Args)
	}
	// hostPort 80 → the web entry point, 443 → websecure; the probes ask /ping on the ping entry point.
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	for _, tc := range []struct {
		name     string
		hostPort int32
	}{{"web", 80}, {"websecure", 443}, {"traefik", 0}} {
		p, ok := ports[tc.name]
		if !ok {
			t.Errorf("no container port %q", tc.name)
			continue
		}
		if p.HostPort != tc.hostPort {
			t.Errorf("port %s: hostPort %d, want %d", tc.name, p.HostPort, tc.hostPort)
		}
		if addr := args["--entryPoints."+tc.name+".address"]; addr != ":"+strconv.Itoa(int(p.ContainerPort)) {
			t.Errorf("entry point %s listens on %q, but its container port is %d", tc.name, addr, p.ContainerPort)
		}
		if tc.hostPort != 0 && !slices.Contains(cluster.IngressPorts, int(tc.hostPort)) {
			t.Errorf("hostPort %d is not in cluster.IngressPorts %v (which the firewall opens)", tc.hostPort, cluster.IngressPorts)
		}
	}
	if ep := args["--ping.entryPoint"]; ep != "traefik" {
		t.Errorf("ping on entry point %q, want traefik", ep)
	}
	for what, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != "/ping" || pr.HTTPGet.Port.String() != "traefik" {
			t.Errorf("%s probe %+v, want GET /ping on port traefik", what, pr)
		}
	}
	// Not root: the entry points listen above 1024, and hostPort maps 80 and 443 to them.
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("pod security context %+v: run as a non-root user", pod.SecurityContext)
	}
	for name, p := range ports {
		if p.ContainerPort < 1024 {
			t.Errorf("container port %s is %d: a non-root Traefik cannot bind it", name, p.ContainerPort)
		}
	}

	// What the phase waits for and checks in the bundle.
	plan, err := planIngress(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.daemonSets) != 1 || plan.daemonSets[0] != (objectKey{ds.Namespace, ds.Name}) || !slices.Equal(plan.images, []string{c.Image}) {
		t.Errorf("plan: daemonsets %v, images %v", plan.daemonSets, plan.images)
	}
}

func TestPlanIngressRejects(t *testing.T) {
	for _, data := range []string{
		"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x, namespace: kube-system}\n", // no DaemonSet
		"apiVersion: v1\nkind: ServiceAccount\n",                                              // no name
		"{",
	} {
		if _, err := planIngress([]byte(data)); err == nil {
			t.Errorf("planIngress(%q) accepted it", data)
		}
	}
}

// ingressInstall is a cluster of a control plane and a worker, with a bundle that carries the ingress manifest and
// the traefik image for amd64 (and arm64 when arm is true).
func ingressInstall(t *testing.T, arm bool) *Install {
	t.Helper()
	in := platformInstall("docker.io/library/traefik:v3.7.13")
	in.Manifest.Images[0].Arches = map[string]string{"amd64": "sha256:a"}
	if arm {
		in.Manifest.Images[0].Arches["arm64"] = "sha256:b"
	}
	in.Manifest.Entries = []bundle.Entry{{Path: "files/amd64/kubeadm"}, {Path: "manifests/" + ingressManifest}}
	dir := t.TempDir()
	data, err := os.ReadFile(traefikManifest)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "manifests"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "manifests", ingressManifest), data, 0o644); err != nil {
		t.Fatal(err)
	}
	in.BundleDir = dir
	return in
}

func TestIngressPhasePlan(t *testing.T) {
	in := ingressInstall(t, false)
	p := ingressPhase{in}
	if why := p.skip(); why != "" {
		t.Fatalf("skipped: %s", why)
	}
	// No facts yet (dry run without the agent): the image is there, the arches are not known.
	if _, err := p.plan(); err != nil {
		t.Fatal(err)
	}
	in.setFacts("cp1", nodeFacts{facts: &facts.Facts{Arch: "amd64"}})
	in.setFacts("w1", nodeFacts{facts: &facts.Facts{Arch: "arm64"}})
	if _, err := p.plan(); err == nil || !strings.Contains(err.Error(), "docker.io/library/traefik:v3.7.13 (arm64)") {
		t.Errorf("an arm64 node without an arm64 image: err = %v", err)
	}
	in = ingressInstall(t, true)
	in.setFacts("cp1", nodeFacts{facts: &facts.Facts{Arch: "amd64"}})
	in.setFacts("w1", nodeFacts{facts: &facts.Facts{Arch: "arm64"}})
	if _, err := (ingressPhase{in}).plan(); err != nil {
		t.Errorf("both arches carried: %v", err)
	}
	// The image is named differently in the bundle (short Docker Hub form): the same image.
	in.Manifest.Images[0].Name = "traefik:v3.7.13"
	if _, err := (ingressPhase{in}).plan(); err != nil {
		t.Errorf("traefik:v3.7.13 is docker.io/library/traefik:v3.7.13: %v", err)
	}
	in.Manifest.Images = nil
	if _, err := (ingressPhase{in}).plan(); err == nil {
		t.Error("a bundle without the image passed")
	}
}

func TestIngressSkipped(t *testing.T) {
	in := ingressInstall(t, false)
	off := false
	in.Cluster.Spec.Ingress.Enabled = &off
	if why := (ingressPhase{in}).skip(); !strings.Contains(why, "spec.ingress.enabled") {
		t.Errorf("spec.ingress.enabled false: skip %q", why)
	}
	if in.ingressWanted() {
		t.Error("ingress wanted while disabled")
	}
	in = ingressInstall(t, false)
	in.Manifest.Entries = in.Manifest.Entries[:1]
	if why := (ingressPhase{in}).skip(); !strings.Contains(why, "no manifests/traefik.yaml") {
		t.Errorf("a bundle without the manifest: skip %q", why)
	}
}

// TestIngressFirewallPorts: nodes open 80 and 443 when the ingress controller is deployed, not otherwise; a
// registry-only host never does.
func TestIngressFirewallPorts(t *testing.T) {
	has := func(args []string, port string) bool {
		for i := range args {
			if args[i] == "--port" && i+1 < len(args) && args[i+1] == port {
				return true
			}
		}
		return false
	}
	in := ingressInstall(t, false)
	in.Cluster.Spec.Hosts = append(in.Cluster.Spec.Hosts, cluster.Host{Name: "reg", InternalAddress: "10.99.60.13", Roles: []cluster.Role{cluster.RoleRegistry}})
	for _, h := range in.Cluster.Spec.Hosts {
		args := in.nodePrepArgs(h)
		want := isNode(h)
		if has(args, "80/tcp") != want || has(args, "443/tcp") != want {
			t.Errorf("%s: args %q, want 80/443 opened: %v", h.Name, args, want)
		}
	}
	off := false
	in.Cluster.Spec.Ingress.Enabled = &off
	if args := in.nodePrepArgs(in.Cluster.Spec.Hosts[0]); has(args, "80/tcp") {
		t.Errorf("ingress disabled, yet %q", args)
	}
}

func TestIngressPhaseOrder(t *testing.T) {
	var titles []string
	for _, p := range (&Install{}).Phases() {
		titles = append(titles, p.Title())
	}
	s, i, p := slices.Index(titles, "storage"), slices.Index(titles, "ingress"), slices.Index(titles, "platform")
	if s < 0 || i != s+1 || p != i+1 {
		t.Errorf("phases %q: want storage, ingress, platform in a row", titles)
	}
}

func TestWaitDaemonSets(t *testing.T) {
	ds := func(gen, observed int64, desired, updated, available int32) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "traefik", Namespace: "kube-system", Generation: gen},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired,
				UpdatedNumberScheduled: updated, NumberAvailable: available}}
	}
	key := []objectKey{{"kube-system", "traefik"}}
	for _, tc := range []struct {
		name string
		ds   *appsv1.DaemonSet
		done bool
	}{
		{"rolled out", ds(2, 2, 3, 3, 3), true},
		{"not observed yet", ds(2, 1, 3, 3, 3), false},
		{"one not available", ds(1, 1, 3, 3, 2), false},
		{"old pods", ds(2, 2, 3, 2, 3), false},
		{"missing", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			if tc.ds != nil {
				cs = fake.NewClientset(tc.ds)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			var lines []string
			err := waitDaemonSets(ctx, cs, key, 10*time.Millisecond, func(l string) { lines = append(lines, l) })
			if (err == nil) != tc.done {
				t.Fatalf("err = %v, want done %v", err, tc.done)
			}
			if len(lines) == 0 {
				t.Error("no progress")
			}
			if !tc.done && !strings.Contains(err.Error(), "traefik") {
				t.Errorf("the error does not name the DaemonSet: %v", err)
			}
		})
	}
	// It keeps polling until the rollout finishes.
	cs := fake.NewClientset(ds(1, 1, 2, 2, 1))
	go func() {
		time.Sleep(30 * time.Millisecond)
		cs.AppsV1().DaemonSets("kube-system").UpdateStatus(context.Background(), ds(1, 1, 2, 2, 2), metav1.UpdateOptions{})
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := waitDaemonSets(ctx, cs, key, 10*time.Millisecond, nil); err != nil {
		t.Errorf("rollout finishing midway: %v", err)
	}
}
