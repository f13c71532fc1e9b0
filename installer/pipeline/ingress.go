package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/kube"
)

// The ingress controller: the bundle's manifests/traefik.yaml (scripts/k8s/manifests/traefik.yaml, copied by
// scripts/k8s/addons.sh), Traefik as a DaemonSet answering on ports 80 and 443 of every node, with the IngressClass
// "traefik" that the platform's Ingress objects name (the cluster's default class).
const (
	ingressManifest = "traefik.yaml"
	// IngressClass is the class of the Ingress objects the controller serves.
	IngressClass = "traefik"
)

// ingressWanted reports whether the ingress controller is to be deployed: spec.ingress.enabled and a bundle
// that carries its manifest.
func (in *Install) ingressWanted() bool {
	return in.Manifest != nil && IngressWanted(in.Cluster, in.Manifest)
}

// IngressWanted says whether an install of cluster c from the bundle of manifest m deploys the ingress controller:
// spec.ingress.enabled, and the bundle carries its manifest. With no bundle (m nil) only the spec decides.
func IngressWanted(c *cluster.Cluster, m *bundle.Manifest) bool {
	if !c.Spec.Ingress.IsEnabled() {
		return false
	}
	return m == nil || slices.ContainsFunc(m.Entries, func(e bundle.Entry) bool { return e.Path == "manifests/"+ingressManifest })
}

// ingressPlan is what the ingress phase applies and waits for, read from the manifest.
type ingressPlan struct {
	data       []byte
	images     []string    // the images the manifest's pods run
	daemonSets []objectKey // the DaemonSets to wait for
}

// objectKey names a namespaced object.
type objectKey struct{ Namespace, Name string }

// planIngress decodes the manifest and picks out the DaemonSets to wait for and the images its pods run.
func planIngress(data []byte) (*ingressPlan, error) {
	objs, err := kube.Decode("manifests/"+ingressManifest, data)
	if err != nil {
		return nil, err
	}
	p := &ingressPlan{data: data}
	for _, o := range objs {
		if o.GetKind() != "DaemonSet" {
			continue
		}
		var ds appsv1.DaemonSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &ds); err != nil {
			return nil, fmt.Errorf("manifests/%s: DaemonSet %s: %w", ingressManifest, o.GetName(), err)
		}
		ns := ds.Namespace
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		p.daemonSets = append(p.daemonSets, objectKey{ns, ds.Name})
		for _, c := range slices.Concat(ds.Spec.Template.Spec.InitContainers, ds.Spec.Template.Spec.Containers) {
			if !slices.Contains(p.images, c.Image) {
				p.images = append(p.images, c.Image)
			}
		}
	}
	if len(p.daemonSets) == 0 {
		return nil, fmt.Errorf("manifests/%s has no DaemonSet", ingressManifest)
	}
	return p, nil
}

// missingImages are the plan's images that the bundle does not carry for one of arches, as "IMAGE (ARCH)" or
// "IMAGE" when it carries none of it.
func (in *Install) missingImages(images, arches []string) []string {
	var missing []string
	for _, want := range images {
		wref, err := name.ParseReference(want)
		if err != nil {
			missing = append(missing, want)
			continue
		}
		i := slices.IndexFunc(in.Manifest.Images, func(img bundle.Image) bool {
			ref, err := name.ParseReference(img.Name)
			return err == nil && ref.Name() == wref.Name()
		})
		if i < 0 {
			missing = append(missing, want)
			continue
		}
		for _, a := range arches {
			if _, ok := in.Manifest.Images[i].Arches[a]; !ok && len(in.Manifest.Images[i].Arches) > 0 {
				missing = append(missing, want+" ("+a+")")
			}
		}
	}
	return missing
}

// nodeArches are the arches of the cluster's Kubernetes nodes that the facts phase learned.
func (in *Install) nodeArches() []string {
	var arches []string
	for _, h := range in.Cluster.Spec.Hosts {
		if !isNode(h) {
			continue
		}
		if f := in.factsOf(h.Name).facts; f != nil && f.Arch != "" && !slices.Contains(arches, f.Arch) {
			arches = append(arches, f.Arch)
		}
	}
	slices.Sort(arches)
	return arches
}

// ingressPhase deploys the bundle's ingress controller (manifests/traefik.yaml) with server-side apply and waits
// until its DaemonSet runs on every node it should. It is skipped with spec.ingress.enabled false and when the
// bundle carries no manifest; a manifest whose image the bundle lacks (for a node's arch) is an error, before
// anything is applied.
type ingressPhase struct{ in *Install }

func (ingressPhase) Title() string { return "ingress" }

// skip says why the phase does nothing, or "".
func (p ingressPhase) skip() string {
	switch {
	case !p.in.Cluster.Spec.Ingress.IsEnabled():
		return "spec.ingress.enabled is false: no ingress controller deployed"
	case !p.in.ingressWanted():
		return "the bundle carries no manifests/" + ingressManifest + ": no ingress controller deployed"
	}
	return ""
}

// plan reads and checks the bundle's manifest.
func (p ingressPhase) plan() (*ingressPlan, error) {
	data, ok, err := p.in.bundleManifest(ingressManifest)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("the bundle lists manifests/%s but %s has none", ingressManifest, p.in.BundleDir)
	}
	plan, err := planIngress(data)
	if err != nil {
		return nil, err
	}
	if missing := p.in.missingImages(plan.images, p.in.nodeArches()); len(missing) > 0 {
		return nil, engine.WithHint(fmt.Errorf("the ingress controller's image is not in the bundle: %s", strings.Join(missing, ", ")),
			"rebuild the bundle with the traefik image for every arch of the nodes (scripts/k8s/addons.sh --steps traefik), or set spec.ingress.enabled: false",
			"请使用为所有节点架构都包含 traefik 镜像的安装包重新安装（scripts/k8s/addons.sh --steps traefik），或设置 spec.ingress.enabled: false")
	}
	return plan, nil
}

func (p ingressPhase) DryRun(ctx context.Context, env *engine.Env) error {
	node := env.Node(p.in.firstControlPlane().Name)
	if why := p.skip(); why != "" {
		node.Logf("%s", why)
		return nil
	}
	plan, err := p.plan()
	if err != nil {
		return err
	}
	node.Logf("dry run: would apply manifests/%s from the bundle (%s, IngressClass %q, ports %s on every node) and wait for %s",
		ingressManifest, strings.Join(plan.images, ", "), IngressClass, portList(cluster.IngressPorts), daemonSetList(plan.daemonSets))
	return nil
}

func (p ingressPhase) Run(ctx context.Context, env *engine.Env) error {
	in := p.in
	node := env.Node(in.firstControlPlane().Name)
	if why := p.skip(); why != "" {
		node.Logf("%s", why)
		return nil
	}
	plan, err := p.plan()
	if err != nil {
		return err
	}
	c, err := in.kubeClient()
	if err != nil {
		return err
	}
	applied, err := c.Apply(ctx, "manifests/"+ingressManifest, plan.data)
	if err != nil {
		return err
	}
	node.Logf("ingress: applied %d object(s); waiting for %s", len(applied), daemonSetList(plan.daemonSets))
	wctx, cancel := context.WithTimeout(ctx, in.readyTimeout())
	defer cancel()
	last := ""
	err = waitDaemonSets(wctx, c.Kubernetes, plan.daemonSets, 3*time.Second, func(line string) {
		if line != last {
			node.Logf("ingress: %s", line)
			last = line
		}
	})
	if err != nil {
		ds := plan.daemonSets[0]
		return engine.WithHint(fmt.Errorf("wait for the ingress controller: %w", err),
			"see why with: kubectl -n "+ds.Namespace+" describe daemonset "+ds.Name+"; kubectl -n "+ds.Namespace+" get pods -o wide -l app.kubernetes.io/name=traefik "+
				"(its pods need ports 80 and 443 free on every node)",
			"查看原因：kubectl -n "+ds.Namespace+" describe daemonset "+ds.Name+"；kubectl -n "+ds.Namespace+" get pods -o wide -l app.kubernetes.io/name=traefik"+
				"（其 Pod 需要每个节点的 80 和 443 端口空闲）")
	}
	node.Logf("ingress: IngressClass %q answers on ports %s of every node", IngressClass, portList(cluster.IngressPorts))
	return nil
}

// waitDaemonSets polls until every DaemonSet of dss has rolled out: its controller saw the current generation and
// every pod it schedules is updated and available. progress gets a line of the counts after every poll.
func waitDaemonSets(ctx context.Context, cs kubernetes.Interface, dss []objectKey, interval time.Duration, progress func(string)) error {
	var last error
	for {
		var parts, waiting []string
		for _, d := range dss {
			ds, err := cs.AppsV1().DaemonSets(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				parts = append(parts, d.Name+": "+err.Error())
				waiting = append(waiting, d.Name)
				continue
			}
			st := ds.Status
			parts = append(parts, fmt.Sprintf("%s %d/%d available", d.Name, st.NumberAvailable, st.DesiredNumberScheduled))
			if st.ObservedGeneration < ds.Generation || st.UpdatedNumberScheduled < st.DesiredNumberScheduled ||
				st.NumberAvailable < st.DesiredNumberScheduled {
				waiting = append(waiting, fmt.Sprintf("%s (%d/%d available, %d/%d updated)", d.Name,
					st.NumberAvailable, st.DesiredNumberScheduled, st.UpdatedNumberScheduled, st.DesiredNumberScheduled))
			}
		}
		if progress != nil {
			progress(strings.Join(parts, ", "))
		}
		if len(waiting) == 0 {
			return nil
		}
		last = fmt.Errorf("daemonsets not rolled out: %s", strings.Join(waiting, ", "))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}

func daemonSetList(dss []objectKey) string {
	var s []string
	for _, d := range dss {
		s = append(s, "daemonset "+d.Namespace+"/"+d.Name)
	}
	return strings.Join(s, ", ")
}

func portList(ports []int) string {
	var s []string
	for _, p := range ports {
		s = append(s, fmt.Sprint(p))
	}
	return strings.Join(s, " and ")
}
