package kubetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

func wait(t *testing.T, timeout time.Duration, what string, f func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func pod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}},
		},
	}
}

// One control plane for the tests of this package: a Deployment on arm64, a never-ready pod, a PVC.
func TestControlPlane(t *testing.T) {
	begin := time.Now()
	cp := Start(t, Options{NeverReady: "kubetest/never-ready=yes", Volumes: 2})
	t.Logf("Start: %v", time.Since(begin).Round(time.Millisecond))
	cs := cp.Client(t)
	ctx := context.Background()

	if st, err := os.Stat(cp.Kubeconfig); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig %s: %v, mode %v; want 0600", cp.Kubeconfig, err, st.Mode().Perm())
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	arches := map[string]string{}
	for _, n := range nodes.Items {
		arches[n.Name] = n.Labels[corev1.LabelArchStable]
		if !nodeReady(&n) {
			t.Errorf("node %s is not Ready after Start", n.Name)
		}
		if n.Status.NodeInfo.Architecture != n.Labels[corev1.LabelArchStable] {
			t.Errorf("node %s: nodeInfo.architecture %q, label %q", n.Name, n.Status.NodeInfo.Architecture, n.Labels[corev1.LabelArchStable])
		}
	}
	if len(arches) != 2 || arches["kwok-amd64-1"] != "amd64" || arches["kwok-arm64-1"] != "arm64" {
		t.Errorf("nodes: %v", arches)
	}

	t.Run("kubectl", func(t *testing.T) {
		out, err := exec.Command(cp.Kubectl, "--kubeconfig", cp.Kubeconfig, "get", "nodes", "-o", "name").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "node/kwok-arm64-1") {
			t.Errorf("kubectl get nodes: %v\n%s", err, out)
		}
	})

	t.Run("DeploymentOnArm64", func(t *testing.T) {
		t.Parallel()
		testDeploymentOnArm64(t, cs)
	})
	t.Run("NeverReady", func(t *testing.T) {
		t.Parallel()
		testNeverReady(t, cs)
	})
	t.Run("VolumeBinds", func(t *testing.T) {
		t.Parallel()
		testVolumeBinds(t, cs)
	})
}

func testDeploymentOnArm64(t *testing.T, cs kubernetes.Interface) {
	ctx := context.Background()
	two := int32(2)
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{corev1.LabelArchStable: "arm64"},
					Containers:   []corev1.Container{{Name: "web", Image: "example.invalid/web:1"}},
				},
			},
		},
	}
	begin := time.Now()
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(t, 60*time.Second, "deployment web 2/2 available", func() (bool, error) {
		got, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && got.Status.AvailableReplicas == 2 && got.Status.ReadyReplicas == 2, err
	})
	t.Logf("deployment 2/2 available in %v", time.Since(begin).Round(time.Millisecond))
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods, want 2", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != "kwok-arm64-1" || p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			t.Errorf("pod %s: node %q, phase %s, ready %v; want Running and Ready on kwok-arm64-1", p.Name, p.Spec.NodeName, p.Status.Phase, podReady(&p))
		}
	}
}

func testNeverReady(t *testing.T, cs kubernetes.Interface) {
	ctx := context.Background()
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("stuck", map[string]string{"kubetest/never-ready": "yes"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("fine", map[string]string{"kubetest/never-ready": "no"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(t, 60*time.Second, "pod fine Ready and pod stuck Running", func() (bool, error) {
		fine, err := cs.CoreV1().Pods("default").Get(ctx, "fine", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		stuck, err := cs.CoreV1().Pods("default").Get(ctx, "stuck", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return podReady(fine) && stuck.Status.Phase == corev1.PodRunning, nil
	})
	for range 5 {
		stuck, err := cs.CoreV1().Pods("default").Get(ctx, "stuck", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if stuck.Status.Phase != corev1.PodRunning || podReady(stuck) {
			t.Fatalf("pod stuck: phase %s, ready %v; want Running, not Ready", stuck.Status.Phase, podReady(stuck))
		}
		time.Sleep(time.Second)
	}
	// Deleting it still works (pod-delete applies to it).
	if err := cs.CoreV1().Pods("default").Delete(ctx, "stuck", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(t, 30*time.Second, "pod stuck deleted", func() (bool, error) {
		_, err := cs.CoreV1().Pods("default").Get(ctx, "stuck", metav1.GetOptions{})
		return err != nil && strings.Contains(err.Error(), "not found"), nil
	})
}

func testVolumeBinds(t *testing.T, cs kubernetes.Interface) {
	ctx := context.Background()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var volume string
	wait(t, 60*time.Second, "pvc data Bound", func() (bool, error) {
		got, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		volume = got.Spec.VolumeName
		return got.Status.Phase == corev1.ClaimBound, nil
	})
	if !strings.HasPrefix(volume, "kubetest-pv-") {
		t.Errorf("pvc bound to %q, want a kubetest-pv-N", volume)
	}
}

// TestMissingBinaries runs TestHelperStart in a child process with $WUTONG_K8S_BIN an empty directory: it skips
// with a message naming scripts/k8s/controlplane.sh, and fails with WUTONG_LAB_REQUIRED=1.
func TestMissingBinaries(t *testing.T) {
	if os.Getenv(EnvLab) == "off" {
		t.Skip("lab tests are off (WUTONG_LAB=off, as in make cross-test)")
	}
	empty := t.TempDir()
	for _, c := range []struct {
		required string
		want     string
	}{
		{"", "--- SKIP: TestHelperStart"},
		{"1", "--- FAIL: TestHelperStart"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStart$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "KUBETEST_HELPER=1", EnvK8sBin+"="+empty, EnvRequired+"="+c.required, EnvLab+"=")
		out, _ := cmd.CombinedOutput()
		s := string(out)
		if !strings.Contains(s, c.want) || !strings.Contains(s, "scripts/k8s/controlplane.sh") ||
			!strings.Contains(s, filepath.Join(empty, "etcd")) {
			t.Errorf("WUTONG_LAB_REQUIRED=%q: want %q, the missing etcd and scripts/k8s/controlplane.sh in:\n%s", c.required, c.want, s)
		}
	}
}

func TestHelperStart(t *testing.T) {
	if os.Getenv("KUBETEST_HELPER") != "1" {
		t.Skip("a helper of TestMissingBinaries")
	}
	Start(t, Options{})
	t.Error("Start returned")
}

func TestStagesConfig(t *testing.T) {
	p, err := Binaries()
	if err != nil {
		t.Skip(err)
	}
	b, err := stagesConfig(p.Stages, "a.b/c=d")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for doc := range strings.SplitSeq(string(b), "\n---\n") {
		var s struct {
			Metadata struct{ Name string }
			Spec     struct {
				Selector struct {
					MatchLabels      map[string]string
					MatchExpressions []struct {
						Key, Operator string
						Values        []string
					}
				}
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
			t.Fatalf("%v in:\n%s", err, doc)
		}
		names[s.Metadata.Name] = true
		switch s.Metadata.Name {
		case "pod-ready":
			last := s.Spec.Selector.MatchExpressions[len(s.Spec.Selector.MatchExpressions)-1]
			if last.Key != `.metadata.labels["a.b/c"]` || last.Operator != "NotIn" || len(last.Values) != 1 || last.Values[0] != "d" {
				t.Errorf("pod-ready's last expression: %+v", last)
			}
		case "pod-never-ready":
			if s.Spec.Selector.MatchLabels["a.b/c"] != "d" {
				t.Errorf("pod-never-ready's matchLabels: %v", s.Spec.Selector.MatchLabels)
			}
		}
	}
	for _, n := range []string{"node-initialize", "node-heartbeat", "pod-ready", "pod-complete", "pod-delete", "pod-never-ready"} {
		if !names[n] {
			t.Errorf("no stage %s in %v", n, names)
		}
	}
}
