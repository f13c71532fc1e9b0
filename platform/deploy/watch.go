package deploy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/wutong-paas/wutong-offline/platform/render"
)

// watcher keeps caches of the Deployments, StatefulSets and pods the deployer manages, on every cluster one watch
// per kind, however many installs there are. Waiters are woken on every change and look at the caches again.
type watcher struct {
	cs           kubernetes.Interface
	deployments  appslisters.DeploymentLister
	statefulsets appslisters.StatefulSetLister
	pods         corelisters.PodLister

	mu      sync.Mutex
	changed chan struct{}
}

func newWatcher(cs kubernetes.Interface) *watcher {
	return &watcher{cs: cs, changed: make(chan struct{})}
}

// syncTimeout bounds the wait for the first fill of the caches.
const syncTimeout = time.Minute

// start starts the informers; they stop when ctx ends. It waits up to syncTimeout for their caches to fill.
func (w *watcher) start(ctx context.Context) error {
	managed := informers.NewSharedInformerFactoryWithOptions(w.cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = render.LabelManagedBy + "=" + render.ManagedBy
	}))
	pods := informers.NewSharedInformerFactoryWithOptions(w.cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = render.LabelInstall
	}))
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.notify() },
		UpdateFunc: func(any, any) { w.notify() },
		DeleteFunc: func(any) { w.notify() },
	}
	d, s, p := managed.Apps().V1().Deployments(), managed.Apps().V1().StatefulSets(), pods.Core().V1().Pods()
	for _, inf := range []cache.SharedIndexInformer{d.Informer(), s.Informer(), p.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
	}
	w.deployments, w.statefulsets, w.pods = d.Lister(), s.Lister(), p.Lister()
	managed.Start(ctx.Done())
	pods.Start(ctx.Done())
	wctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	for _, f := range []informers.SharedInformerFactory{managed, pods} {
		for typ, ok := range f.WaitForCacheSync(wctx.Done()) {
			if !ok {
				return fmt.Errorf("watch %v: the cache did not fill within %s: is the API server reachable, and may this server list it?", typ, syncTimeout)
			}
		}
	}
	return nil
}

func (w *watcher) notify() {
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// next is closed at the next change.
func (w *watcher) next() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// rollout is what readiness of one workload is measured against: the generation its last apply produced.
type rollout struct {
	ns, kind, name string
	generation     int64
	started        time.Time // when it was applied
	deadline       time.Time
}

// done says whether the workload's rollout is complete, from the cache. A cache that has not yet seen the applied
// generation is not done.
func (w *watcher) done(r rollout) bool {
	switch r.kind {
	case "Deployment":
		d, err := w.deployments.Deployments(r.ns).Get(r.name)
		return err == nil && deploymentDone(d, r.generation)
	case "StatefulSet":
		s, err := w.statefulsets.StatefulSets(r.ns).Get(r.name)
		return err == nil && statefulSetDone(s, r.generation)
	}
	return true
}

// deploymentDone: the controller saw the applied generation, every replica runs the new template and is available,
// and no old replica is left.
func deploymentDone(d *appsv1.Deployment, gen int64) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	return d.Generation >= gen && st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want &&
		st.AvailableReplicas >= want && st.Replicas == want
}

// statefulSetDone: the controller saw the applied generation, the update revision is reached and all replicas
// are ready.
func statefulSetDone(s *appsv1.StatefulSet, gen int64) bool {
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	st := s.Status
	reached := st.UpdateRevision != "" && (st.CurrentRevision == st.UpdateRevision || st.UpdatedReplicas == want)
	if want == 0 {
		reached = true
	}
	return s.Generation >= gen && st.ObservedGeneration >= s.Generation && reached && st.ReadyReplicas == want &&
		st.Replicas == want
}

// NotReadyError reports a component whose rollout did not complete in time, with what its pods and events say.
type NotReadyError struct {
	Component string
	Workload  string // Kind/name
	Waited    time.Duration
	Reason    string // the failing pod's reason and the last events
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("component %s (%s) was not ready after %s: %s", e.Component, e.Workload, e.Waited.Round(time.Second), e.Reason)
}

// wait blocks until the rollouts are done, one of them passes its deadline (a *NotReadyError), or ctx ends.
func (w *watcher) wait(ctx context.Context, rs map[string]rollout) error {
	for {
		ch := w.next()
		var first string
		var soonest time.Time
		for comp, r := range rs {
			if w.done(r) {
				delete(rs, comp)
				continue
			}
			if first == "" || r.deadline.Before(soonest) {
				first, soonest = comp, r.deadline
			}
		}
		if len(rs) == 0 {
			return nil
		}
		t := time.NewTimer(time.Until(soonest))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-ch:
			t.Stop()
		case <-t.C:
			if r := rs[first]; !w.done(r) {
				return &NotReadyError{Component: first, Workload: r.kind + "/" + r.name, Waited: r.deadline.Sub(r.started),
					Reason: w.diagnose(ctx, r)}
			}
		}
	}
}

// diagnose says why a workload is not ready: the first pod that is not, and the last events of it and the workload.
func (w *watcher) diagnose(ctx context.Context, r rollout) string {
	sel := labels.SelectorFromSet(labels.Set{render.LabelWorkload: r.name})
	pods, _ := w.pods.Pods(r.ns).List(sel)
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	var parts []string
	names := []string{r.name}
	for _, p := range pods {
		if why := podProblem(p); why != "" {
			parts = append(parts, fmt.Sprintf("pod %s: %s", p.Name, why))
			names = append(names, p.Name)
			break
		}
	}
	if len(pods) == 0 {
		parts = append(parts, "no pods were made")
	}
	ev, err := lastEvents(ctx, w.cs, r.ns, names, 5)
	if err == nil && len(ev) > 0 {
		var lines []string
		for _, e := range ev {
			lines = append(lines, fmt.Sprintf("%s %s %s: %s", e.Type, e.Object, e.Reason, e.Message))
		}
		parts = append(parts, "last events: "+strings.Join(lines, "; "))
	}
	if len(parts) == 0 {
		return "the rollout did not finish"
	}
	return strings.Join(parts, "; ")
}

// podProblem says why a pod is not running and ready, or "" when it is.
func podProblem(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "terminating"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if s := cs.State.Waiting; s != nil && s.Reason != "" {
			msg := s.Reason
			if s.Message != "" {
				msg += " (" + s.Message + ")"
			}
			if t := cs.LastTerminationState.Terminated; t != nil {
				msg += fmt.Sprintf(", last exit %d %s", t.ExitCode, t.Reason)
			}
			return msg
		}
		if t := cs.State.Terminated; t != nil {
			return fmt.Sprintf("terminated: %s (exit %d)", t.Reason, t.ExitCode)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return strings.TrimSpace("not scheduled: " + c.Reason + " " + c.Message)
		}
	}
	if p.Status.Phase != corev1.PodRunning {
		return "phase " + string(p.Status.Phase)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			why := "running, not ready"
			if c.Reason != "" || c.Message != "" {
				why += ": " + strings.TrimSpace(c.Reason+" "+c.Message)
			}
			return why
		}
	}
	return ""
}
