package kube

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/wutong-paas/wutong-offline/installer/kubeadm"
)

func TestJoinToken(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	valid, err := kubeadm.TokenSecret("abcdef.0123456789abcdef", 3*time.Hour, now, "")
	if err != nil {
		t.Fatal(err)
	}
	expiring, err := kubeadm.TokenSecret("zyxwvu.0123456789abcdef", 30*time.Minute, now, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		old         string
		secrets     []*corev1.Secret
		wantRenewed bool
	}{
		{"first run", "", nil, true},
		{"valid token reused", "abcdef.0123456789abcdef", []*corev1.Secret{valid}, false},
		{"secret of another value", "abcdef.ffffffffffffffff", []*corev1.Secret{valid}, true},
		{"expires within the hour", "zyxwvu.0123456789abcdef", []*corev1.Secret{expiring}, true},
		{"deleted from the cluster", "abcdef.0123456789abcdef", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			for _, s := range tc.secrets {
				if _, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			c := &Client{Kubernetes: cs}
			tok, renewed, err := c.JoinToken(t.Context(), tc.old, now)
			if err != nil {
				t.Fatal(err)
			}
			if renewed != tc.wantRenewed {
				t.Fatalf("renewed = %v, want %v", renewed, tc.wantRenewed)
			}
			if !renewed {
				if tok != tc.old {
					t.Fatalf("token = %q, want the old %q", tok, tc.old)
				}
				return
			}
			if tok == tc.old {
				t.Fatal("renewed but the same token")
			}
			id, secret, _ := strings.Cut(tok, ".")
			s, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Get(t.Context(), bootstrapapi.BootstrapTokenSecretPrefix+id, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("the new token's secret: %v", err)
			}
			if string(s.Data[bootstrapapi.BootstrapTokenSecretKey]) != secret {
				t.Fatal("the secret holds another token secret")
			}
			if kubeadm.TokenExpired(s, now.Add(TokenTTL-time.Minute)) || !kubeadm.TokenExpired(s, now.Add(TokenTTL+time.Minute)) {
				t.Fatalf("the new token's expiry is not now+%s: %s", TokenTTL, s.Data[bootstrapapi.BootstrapTokenExpirationKey])
			}
		})
	}
}

func TestDecode(t *testing.T) {
	objs, err := Decode("x.yaml", []byte("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: a}\ndata: {k: v}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetKind() != "Namespace" || objs[1].GetNamespace() != "a" {
		t.Fatalf("objects = %v", objs)
	}
	for _, bad := range []string{"kind: ConfigMap\nmetadata: {name: b}\n", "apiVersion: v1\nkind: ConfigMap\n", "apiVersion: v1\nkind: [\n"} {
		if _, err := Decode("bad.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "bad.yaml: document 1") {
			t.Errorf("Decode(%q) = %v, want an error naming the document", bad, err)
		}
	}
}

func TestStatusOf(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp1", Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}},
		Status: corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "cp1"}, {Type: corev1.NodeInternalIP, Address: "10.99.60.11"}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "cni plugin not initialized"}},
			NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", Architecture: "amd64"},
		}}
	s := statusOf(n)
	if s.Ready || s.Reason != "KubeletNotReady: cni plugin not initialized" || s.InternalIP != "10.99.60.11" ||
		len(s.Roles) != 1 || s.Roles[0] != "control-plane" || s.KubeletVersion != "v1.37.2" {
		t.Fatalf("status = %+v", s)
	}
	n.Status.Conditions[0].Status = corev1.ConditionTrue
	if s := statusOf(n); !s.Ready || s.Reason != "" {
		t.Fatalf("ready node = %+v", s)
	}
}

func TestPodProblem(t *testing.T) {
	ready := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
	for _, tc := range []struct {
		pod  corev1.Pod
		want string
	}{
		{corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{ready}}}, ""},
		{corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, ""},
		{corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
			{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}}}}}}, "ImagePullBackOff not found"},
		{corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}}}, "not ready"},
		{corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}}, "Pending"},
	} {
		if got := podProblem(&tc.pod); got != tc.want {
			t.Errorf("podProblem = %q, want %q", got, tc.want)
		}
	}
}
