package pipeline

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
)

// The platform runs on one known node, and its Service keeps the client's address (externalTrafficPolicy Local).
// With the default policy every connection to a node port is rewritten to come from a node, so the server would
// see one address for everybody: its per-address login limits would then lock everybody out together, and one
// client could take every connection. Local traffic is answered only on the node that runs the pod, so the pod is
// pinned to that node and the URL names it.

// platformDataPVC is the platform's data volume claim.
const platformDataPVC = "wutong-data"

// platformHost is the host that runs the platform: the one chosen by this run's platform phase, else the first
// control plane.
func (in *Install) platformHost() cluster.Host {
	if in.platformAt.Name != "" {
		return in.platformAt
	}
	return in.firstControlPlane()
}

// placePlatform chooses the host that runs the platform. A local-path volume is bound to the node it was made on,
// so once the data volume exists the platform stays on that node; before, it goes to the first control plane.
func (in *Install) placePlatform(ctx context.Context, k kubernetes.Interface) error {
	in.platformAt = in.firstControlPlane()
	name, err := volumeNode(ctx, k)
	if err != nil || name == "" {
		return err
	}
	for _, h := range in.Cluster.Spec.Hosts {
		if h.Name == name {
			in.platformAt = h
			return nil
		}
	}
	return fmt.Errorf("the platform's data volume is on node %q, which cluster.yaml does not list; add the host back, "+
		"or move the data and delete the claim (kubectl -n %s delete pvc %s) to start on the first control plane",
		name, PlatformNamespace, platformDataPVC)
}

// volumeNode is the node the platform's bound data volume lives on, or "" when there is none yet or it is not
// tied to a node.
func volumeNode(ctx context.Context, k kubernetes.Interface) (string, error) {
	pvc, err := k.CoreV1().PersistentVolumeClaims(PlatformNamespace).Get(ctx, platformDataPVC, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the platform's data volume claim: %w", err)
	}
	if pvc.Spec.VolumeName == "" {
		return "", nil
	}
	pv, err := k.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the platform's data volume: %w", err)
	}
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return "", nil
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if e.Key == corev1.LabelHostname && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) == 1 {
				return e.Values[0], nil
			}
		}
		for _, f := range term.MatchFields {
			if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
				return f.Values[0], nil
			}
		}
	}
	return "", nil
}

// platformPlacement pins the pod to the platform host, whatever its NoSchedule taints (a control plane has one).
func (in *Install) platformPlacement() (*corev1.Affinity, []corev1.Toleration) {
	aff := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{
			Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{in.platformHost().Name}}}}}}}}
	return aff, []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
}
