package kube

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubectl/pkg/drain"
)

// NodeStatus is what the installer shows of a node.
type NodeStatus struct {
	Name           string   `json:"name"`
	Ready          bool     `json:"ready"`
	Reason         string   `json:"reason,omitempty"` // why not Ready, from the Ready condition
	Roles          []string `json:"roles"`
	KubeletVersion string   `json:"kubeletVersion"`
	InternalIP     string   `json:"internalIP"`
	OS             string   `json:"os"`
	Arch           string   `json:"arch"`
	Runtime        string   `json:"runtime"`
	Unschedulable  bool     `json:"unschedulable,omitempty"`
}

// Nodes lists the cluster's nodes, sorted by name.
func (c *Client) Nodes(ctx context.Context) ([]NodeStatus, error) {
	list, err := c.Kubernetes.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make([]NodeStatus, 0, len(list.Items))
	for _, n := range list.Items {
		out = append(out, statusOf(&n))
	}
	slices.SortFunc(out, func(a, b NodeStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func statusOf(n *corev1.Node) NodeStatus {
	s := NodeStatus{Name: n.Name, KubeletVersion: n.Status.NodeInfo.KubeletVersion, OS: n.Status.NodeInfo.OSImage,
		Arch: n.Status.NodeInfo.Architecture, Runtime: n.Status.NodeInfo.ContainerRuntimeVersion,
		Unschedulable: n.Spec.Unschedulable, Reason: "no Ready condition yet"}
	for k := range n.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			s.Roles = append(s.Roles, r)
		}
	}
	slices.Sort(s.Roles)
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && s.InternalIP == "" {
			s.InternalIP = a.Address
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			s.Ready = c.Status == corev1.ConditionTrue
			s.Reason = ""
			if !s.Ready {
				s.Reason = strings.TrimSpace(c.Reason + ": " + c.Message)
			}
		}
	}
	return s
}

// WaitNodesReady waits until every node of names is registered and Ready, calling progress (when not nil) with
// the nodes after each look. On timeout the error names the nodes that are not Ready and why.
func (c *Client) WaitNodesReady(ctx context.Context, names []string, progress func([]NodeStatus)) error {
	return poll(ctx, 3*time.Second, func(ctx context.Context) (bool, error) {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return false, err
		}
		if progress != nil {
			progress(nodes)
		}
		var waiting []string
		for _, name := range names {
			i := slices.IndexFunc(nodes, func(n NodeStatus) bool { return n.Name == name })
			switch {
			case i < 0:
				waiting = append(waiting, name+" (not registered)")
			case !nodes[i].Ready:
				waiting = append(waiting, name+" ("+nodes[i].Reason+")")
			}
		}
		if len(waiting) == 0 {
			return true, nil
		}
		return false, fmt.Errorf("not Ready: %s", strings.Join(waiting, ", "))
	})
}

// Drain cordons the node and evicts its pods (DaemonSet pods stay; emptyDir data is lost, as `kubectl drain
// --ignore-daemonsets --delete-emptydir-data` does), honouring PodDisruptionBudgets, within timeout.
func (c *Client) Drain(ctx context.Context, name string, timeout time.Duration) error {
	node, err := c.Kubernetes.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("drain %s: %w", name, err)
	}
	h := &drain.Helper{Ctx: ctx, Client: c.Kubernetes, Force: true, GracePeriodSeconds: -1, IgnoreAllDaemonSets: true,
		DeleteEmptyDirData: true, Timeout: timeout, Out: discard{}, ErrOut: os.Stderr}
	if err := drain.RunCordonOrUncordon(h, node, true); err != nil {
		return fmt.Errorf("cordon %s: %w", name, err)
	}
	if err := drain.RunNodeDrain(h, name); err != nil {
		return fmt.Errorf("drain %s: %w", name, err)
	}
	return nil
}

// DeleteNode removes the node object; a node that is already gone is fine.
func (c *Client) DeleteNode(ctx context.Context, name string) error {
	err := c.Kubernetes.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// WaitDeployments waits until every deployment of names in namespace ns has all its replicas updated and
// available.
func (c *Client) WaitDeployments(ctx context.Context, ns string, names []string) error {
	return poll(ctx, 3*time.Second, func(ctx context.Context) (bool, error) {
		var waiting []string
		for _, name := range names {
			d, err := c.Kubernetes.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				waiting = append(waiting, name+" ("+err.Error()+")")
				continue
			}
			want := int32(1)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas < want || d.Status.AvailableReplicas < want {
				waiting = append(waiting, fmt.Sprintf("%s (%d/%d available)", name, d.Status.AvailableReplicas, want))
			}
		}
		if len(waiting) == 0 {
			return true, nil
		}
		return false, fmt.Errorf("deployments in %s not available: %s", ns, strings.Join(waiting, ", "))
	})
}

// Status is the cluster's state as `wtctl cluster status` shows it.
type Status struct {
	Version   string       `json:"version"`
	Nodes     []NodeStatus `json:"nodes"`
	NotJoined []string     `json:"notJoined,omitempty"` // hosts of cluster.yaml that are not nodes (filled by the caller)
	Unhealthy []PodProblem `json:"unhealthy"`           // system pods that are not running and ready
}

// PodProblem is a pod that is not running and ready.
type PodProblem struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Node      string `json:"node"`
	Reason    string `json:"reason"`
}

// SystemNamespaces are the namespaces whose pods Status checks.
var SystemNamespaces = []string{metav1.NamespaceSystem, "kube-flannel", "local-path-storage"}

// Status reads the version, the nodes and the system pods that are not running and ready.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	v, err := c.ServerVersion()
	if err != nil {
		return nil, err
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	st := &Status{Version: v, Nodes: nodes, Unhealthy: []PodProblem{}}
	for _, ns := range SystemNamespaces {
		pods, err := c.Kubernetes.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list pods in %s: %w", ns, err)
		}
		for _, p := range pods.Items {
			if reason := podProblem(&p); reason != "" {
				st.Unhealthy = append(st.Unhealthy, PodProblem{Namespace: ns, Name: p.Name, Node: p.Spec.NodeName, Reason: reason})
			}
		}
	}
	return st, nil
}

// podProblem says why a pod is not running and ready, or "" when it is (or has completed).
func podProblem(p *corev1.Pod) string {
	if p.Status.Phase == corev1.PodSucceeded {
		return ""
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return strings.TrimSpace(w.Reason + " " + w.Message)
		}
		if t := cs.State.Terminated; t != nil {
			return fmt.Sprintf("terminated: %s (exit %d)", t.Reason, t.ExitCode)
		}
	}
	if p.Status.Phase != corev1.PodRunning {
		return string(p.Status.Phase)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			return "not ready"
		}
	}
	return ""
}
