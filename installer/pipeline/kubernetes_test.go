package pipeline

import (
	"encoding/json"
	"testing"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/kubeadm"
)

func TestParseTaint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want kubeadm.Taint
		err  bool
	}{
		{"dedicated=db:NoSchedule", kubeadm.Taint{Key: "dedicated", Value: "db", Effect: "NoSchedule"}, false},
		{"gpu:NoExecute", kubeadm.Taint{Key: "gpu", Effect: "NoExecute"}, false},
		{"gpu", kubeadm.Taint{}, true},
	} {
		got, err := parseTaint(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseTaint(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestFlannelConfig(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		want map[string]any
	}{
		{"10.244.0.0/16", map[string]any{"Network": "10.244.0.0/16", "Backend": map[string]any{"Type": "vxlan"}}},
		{"10.244.0.0/16,fd00:10:244::/56", map[string]any{"Network": "10.244.0.0/16", "IPv6Network": "fd00:10:244::/56",
			"EnableIPv6": true, "Backend": map[string]any{"Type": "vxlan"}}},
	} {
		u, err := flannelConfig(tc.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if u.GetNamespace() != "kube-flannel" || u.GetName() != "kube-flannel-cfg" {
			t.Fatalf("object %s/%s", u.GetNamespace(), u.GetName())
		}
		var got map[string]any
		data := u.Object["data"].(map[string]any)["net-conf.json"].(string)
		if err := json.Unmarshal([]byte(data), &got); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(tc.want)
		if string(gb) != string(wb) {
			t.Errorf("net-conf.json for %s = %s, want %s", tc.cidr, gb, wb)
		}
	}
}

func TestKubeadmOptions(t *testing.T) {
	cl := &cluster.Cluster{Metadata: cluster.Metadata{Name: "lab"}, Spec: cluster.Spec{
		Hosts: []cluster.Host{
			{Name: "cp1", InternalAddress: "10.99.60.11", Roles: []cluster.Role{cluster.RoleControlPlane, cluster.RoleRegistry}},
			{Name: "w1", InternalAddress: "10.99.60.12", Roles: []cluster.Role{cluster.RoleWorker}, Taints: []string{"gpu=yes:NoSchedule"}},
			{Name: "both", InternalAddress: "10.99.60.13", Roles: []cluster.Role{cluster.RoleControlPlane, cluster.RoleWorker}},
		},
		Kubernetes: cluster.Kubernetes{ControlPlaneEndpoint: "10.99.60.11", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/16", DNSDomain: "cluster.local", CNI: "flannel"},
		Registry:   cluster.Registry{Domain: "registry.wutong.local", Port: 5443},
	}}
	in := &Install{Cluster: cl, Manifest: &bundle.Manifest{KubernetesVersion: "v1.37.2", Images: []bundle.Image{
		{Name: "registry.k8s.io/kube-apiserver:v1.37.2"}, {Name: "registry.k8s.io/coredns/coredns:v1.12.1"}, {Name: "registry.k8s.io/pause:3.10.1"},
	}}}
	o, err := in.kubeadmOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.ImageRepository != "registry.wutong.local:5443/registry.k8s.io" || o.DNSImageRepository != "registry.wutong.local:5443/registry.k8s.io/coredns" {
		t.Errorf("repositories = %q, %q", o.ImageRepository, o.DNSImageRepository)
	}
	if o.ControlPlaneEndpoint != "10.99.60.11:6443" || o.KubernetesVersion != "v1.37.2" || o.ClusterName != "lab" {
		t.Errorf("options = %+v", o)
	}
	if len(o.ControlPlaneAddresses) != 2 {
		t.Errorf("control-plane addresses = %v", o.ControlPlaneAddresses)
	}
	if err := kubeadm.Validate(o); err != nil {
		t.Errorf("the options the pipeline makes do not validate: %v", err)
	}
	w, err := in.kubeadmNode(cl.Spec.Hosts[1])
	if err != nil || len(w.Taints) != 1 || w.Taints[0].Key != "gpu" {
		t.Errorf("worker node = %+v, %v", w, err)
	}
	b, err := in.kubeadmNode(cl.Spec.Hosts[2])
	if err != nil || b.Taints == nil || len(b.Taints) != 0 {
		t.Errorf("a control plane that is also a worker must have an empty, non-nil taint list: %+v, %v", b, err)
	}
	if in.isJoiner(cl.Spec.Hosts[0]) || !in.isJoiner(cl.Spec.Hosts[1]) || !in.isJoiner(cl.Spec.Hosts[2]) {
		t.Error("joiners: want everything but the first control plane")
	}

	in.Manifest.Images = in.Manifest.Images[2:]
	if _, err := in.kubeadmOptions(); err == nil {
		t.Error("a bundle without kube-apiserver gave options")
	}
	if run, why := (kubePhase{in: in}).ShouldRun(t.Context(), nil); run || why == "" {
		t.Error("kubernetes phases run for a bundle without kubeadm")
	}
	in.Manifest.Entries = []bundle.Entry{{Path: "files/amd64/kubeadm"}}
	if run, _ := (kubePhase{in: in}).ShouldRun(t.Context(), nil); !run {
		t.Error("kubernetes phases skipped for a bundle with kubeadm")
	}
}
