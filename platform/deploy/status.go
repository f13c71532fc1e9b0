package deploy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/render"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// MaxEvents is how many of the last events Status reports.
const MaxEvents = 20

// Status is an install as the cluster shows it now: per component the desired, ready and updated replicas and the
// pods with phase, restarts and node (from the watch caches, no API call), and the last events. A ready install
// with a component that is not ready now is degraded.
func (d *Deployer) Status(ctx context.Context, inst *store.Install) (api.InstallStatus, error) {
	out := api.InstallStatus{State: string(inst.State), Components: []api.ComponentStatus{}, Events: []api.Event{}}
	c, err := d.cluster(inst.Cluster)
	if err != nil {
		return out, err
	}
	m, err := d.manifest(ctx, inst.ID, current(inst))
	if err != nil || m == nil {
		return out, err
	}
	names := []string{}
	allReady := true
	for _, comp := range m.Components {
		cs := api.ComponentStatus{Name: comp.Name, Kind: comp.Kind, Workload: comp.Workload, Pods: []api.PodStatus{}}
		switch comp.Kind {
		case "Deployment":
			if o, err := c.watch.deployments.Deployments(inst.Namespace).Get(comp.Workload); err == nil {
				cs.Desired, cs.Ready, cs.Updated = replicas(o.Spec.Replicas), int(o.Status.ReadyReplicas), int(o.Status.UpdatedReplicas)
			}
		case "StatefulSet":
			if o, err := c.watch.statefulsets.StatefulSets(inst.Namespace).Get(comp.Workload); err == nil {
				cs.Desired, cs.Ready, cs.Updated = replicas(o.Spec.Replicas), int(o.Status.ReadyReplicas), int(o.Status.UpdatedReplicas)
			}
		}
		pods, _ := c.watch.pods.Pods(inst.Namespace).List(labels.SelectorFromSet(labels.Set{
			render.LabelInstall: inst.Name, render.LabelWorkload: comp.Workload}))
		sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
		for _, p := range pods {
			cs.Pods = append(cs.Pods, podStatus(p))
			names = append(names, p.Name)
		}
		if cs.Ready < cs.Desired {
			allReady = false
		}
		names = append(names, comp.Workload)
		out.Components = append(out.Components, cs)
	}
	if inst.State == store.InstallReady && !allReady {
		out.State = api.StateDegraded
	}
	ev, err := lastEvents(ctx, c.cs, inst.Namespace, names, MaxEvents)
	if err != nil {
		return out, err
	}
	out.Events = ev
	return out, nil
}

// current is the revision whose objects are on the cluster, or are being put there.
func current(inst *store.Install) int {
	return inst.Revision
}

func replicas(r *int32) int {
	if r == nil {
		return 1
	}
	return int(*r)
}

func podStatus(p *corev1.Pod) api.PodStatus {
	ps := api.PodStatus{Name: p.Name, Phase: string(p.Status.Phase), Node: p.Spec.NodeName, Problem: podProblem(p)}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			ps.Ready = c.Status == corev1.ConditionTrue
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		ps.Restarts += int(cs.RestartCount)
	}
	return ps
}

// lastEvents are the newest events (at most n) about the named objects of ns, newest last.
func lastEvents(ctx context.Context, cs kubernetes.Interface, ns string, names []string, n int) ([]api.Event, error) {
	want := map[string]bool{}
	for _, x := range names {
		want[x] = true
	}
	l, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %s", ns, apiMessage(err))
	}
	out := []api.Event{}
	for _, e := range l.Items {
		if !want[e.InvolvedObject.Name] && !want[ownerPrefix(e.InvolvedObject.Name, want)] {
			continue
		}
		t := e.LastTimestamp.Time
		if t.IsZero() {
			t = e.EventTime.Time
		}
		if t.IsZero() {
			t = e.CreationTimestamp.Time
		}
		out = append(out, api.Event{Time: t.UTC(), Type: e.Type, Object: e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name,
			Reason: e.Reason, Message: e.Message, Count: int(e.Count)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// ownerPrefix maps a ReplicaSet's name (WORKLOAD-HASH) to its workload's name when that is wanted.
func ownerPrefix(name string, want map[string]bool) string {
	for i := len(name) - 1; i > 0; i-- {
		if name[i] == '-' && want[name[:i]] {
			return name[:i]
		}
	}
	return ""
}

// LogOptions choose the logs of an install.
type LogOptions struct {
	// Component whose pods' logs are streamed. Required.
	Component string
	// Pod narrows to one pod of the component.
	Pod string
	// Follow keeps streaming until ctx ends.
	Follow bool
	// Tail is how many of the last lines of each pod to start with; 0: 100.
	Tail int64
}

// Logs streams the logs of a component's pods to w, each line prefixed with its pod's name when there are several.
func (d *Deployer) Logs(ctx context.Context, inst *store.Install, opts LogOptions, w io.Writer) error {
	c, err := d.cluster(inst.Cluster)
	if err != nil {
		return err
	}
	m, err := d.manifest(ctx, inst.ID, current(inst))
	if err != nil {
		return err
	}
	var comp *render.Component
	for i := range m.Components {
		if m.Components[i].Name == opts.Component {
			comp = &m.Components[i]
		}
	}
	if comp == nil {
		return &NotFoundError{What: "component", Name: opts.Component, In: "install " + inst.Name}
	}
	pods, err := c.watch.pods.Pods(inst.Namespace).List(labels.SelectorFromSet(labels.Set{
		render.LabelInstall: inst.Name, render.LabelWorkload: comp.Workload}))
	if err != nil {
		return err
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	if opts.Pod != "" {
		var one []*corev1.Pod
		for _, p := range pods {
			if p.Name == opts.Pod {
				one = append(one, p)
			}
		}
		if len(one) == 0 {
			return &NotFoundError{What: "pod", Name: opts.Pod, In: "component " + opts.Component}
		}
		pods = one
	}
	if len(pods) == 0 {
		return &NotFoundError{What: "running pod", Name: opts.Component, In: "install " + inst.Name}
	}
	tail := opts.Tail
	if tail <= 0 {
		tail = 100
	}
	var mu sync.Mutex // one line at a time into w
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = streamLogs(ctx, c.cs, p, opts.Follow, tail, len(pods) > 1, &mu, w)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

func streamLogs(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod, follow bool, tail int64, prefix bool, mu *sync.Mutex, w io.Writer) error {
	rc, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Follow: follow, TailLines: &tail}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("logs of pod %s: %s", p.Name, apiMessage(err))
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mu.Lock()
		if prefix {
			_, err = fmt.Fprintf(w, "[%s] %s\n", p.Name, sc.Bytes())
		} else {
			_, err = fmt.Fprintf(w, "%s\n", sc.Bytes())
		}
		if f, ok := w.(interface{ Flush() }); ok && err == nil {
			f.Flush()
		}
		mu.Unlock()
		if err != nil {
			return err
		}
	}
	return sc.Err()
}

// NotFoundError reports a component or pod that an install does not have.
type NotFoundError struct{ What, Name, In string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %q not found in %s", e.What, e.Name, e.In)
}
