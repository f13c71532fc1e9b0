package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// boundData is the platform's claim bound to a local-path volume on node.
func boundData(node string) []runtime.Object {
	return []runtime.Object{
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: platformDataPVC, Namespace: PlatformNamespace},
			Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pvc-123"}},
		&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-123"}, Spec: corev1.PersistentVolumeSpec{
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}}},
	}
}

// The platform runs where its data is, or on the first control plane before there is any; the URL and the pod's
// node affinity follow, and the Service keeps client addresses.
func TestPlatformPlacement(t *testing.T) {
	for _, tc := range []struct {
		name     string
		objs     []runtime.Object
		node     string
		url, err string
	}{
		{name: "fresh install", node: "cp1", url: "https://192.0.2.11:30080"},
		{name: "claim not bound yet", objs: boundData("w1")[:1], node: "cp1", url: "https://192.0.2.11:30080"},
		{name: "data on the worker", objs: boundData("w1"), node: "w1", url: "https://192.0.2.12:30080"},
		{name: "data on a host no longer listed", objs: boundData("old9"), err: `node "old9", which cluster.yaml does not list`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.objs) == 1 {
				tc.objs[0].(*corev1.PersistentVolumeClaim).Spec.VolumeName = ""
			}
			in := platformInstall("ghcr.io/wutong-paas/wutong:v0.3.0")
			err := in.placePlatform(context.Background(), fake.NewClientset(tc.objs...))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.platformHost().Name != tc.node || in.PlatformURL() != tc.url {
				t.Fatalf("placed on %s at %s, want %s at %s", in.platformHost().Name, in.PlatformURL(), tc.node, tc.url)
			}
			objs, err := in.platformObjects(goldenSecrets())
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				switch o.GetKind() {
				case "Deployment":
					v, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "template", "spec", "affinity", "nodeAffinity",
						"requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
					vals := fmt.Sprint(v)
					if !strings.Contains(vals, "metadata.name") || !strings.Contains(vals, tc.node) {
						t.Errorf("the pod is not pinned to %s: %s", tc.node, vals)
					}
				case "Service":
					if p, _, _ := unstructured.NestedString(o.Object, "spec", "externalTrafficPolicy"); p != "Local" {
						t.Errorf("externalTrafficPolicy %q: the platform would see every client as a node", p)
					}
				}
			}
		})
	}
}
