package kubeadm

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	testToken   = "abcdef.0123456789abcdef"
	testHash    = "sha256:8d3e3a4c0a0ff8f6fd8e9b1b1f3c2bd5d0b3f0c5b0e6f9d2a7c4e1b8a5d2c9f6"
	testCertKey = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

// single is one control plane on a cgroup v1 host with the lab's long timeouts.
func single() Options {
	return Options{
		KubernetesVersion:     "v1.37.2",
		ControlPlaneEndpoint:  "10.99.60.11:6443",
		ImageRepository:       "registry.wutong.local:5000/registry.k8s.io",
		PodSubnet:             "10.244.0.0/16",
		ServiceSubnet:         "10.96.0.0/16",
		ControlPlaneAddresses: []string{"10.99.60.11"},
		CgroupV1:              true,
		Timeouts: Timeouts{
			ControlPlaneComponentHealthCheck: 20 * time.Minute,
			KubeletHealthCheck:               10 * time.Minute,
			KubernetesAPICall:                5 * time.Minute,
			Discovery:                        15 * time.Minute,
			TLSBootstrap:                     15 * time.Minute,
			EtcdAPICall:                      5 * time.Minute,
		},
	}
}

// ha is three control planes behind a load balancer.
func ha() Options {
	return Options{
		KubernetesVersion:     "v1.37.2",
		ClusterName:           "prod",
		ControlPlaneEndpoint:  "lb.example:6443",
		ImageRepository:       "registry.wutong.local:5000/registry.k8s.io",
		PodSubnet:             "10.244.0.0/16",
		ServiceSubnet:         "10.96.0.0/16",
		DNSDomain:             "corp.local",
		CertSANs:              []string{"k8s.example.com", "10.99.60.100", "lb.example", "*.api.example.com"},
		ControlPlaneAddresses: []string{"10.99.60.13", "10.99.60.11", "10.99.60.12"},
		ProxyMode:             ProxyIPVS,
	}
}

// dualStack is one control plane with IPv4 first and IPv6 second.
func dualStack() Options {
	return Options{
		KubernetesVersion:     "v1.37.2",
		ControlPlaneEndpoint:  "10.99.60.11:6443",
		ImageRepository:       "registry.wutong.local:5000/registry.k8s.io",
		DNSImageRepository:    "registry.wutong.local:5000/coredns",
		PodSubnet:             "10.244.0.0/16,fd00:10:244::/56",
		ServiceSubnet:         "10.96.0.0/16,fd00:10:96::/112",
		ControlPlaneAddresses: []string{"10.99.60.11"},
		ProxyMode:             ProxyNFTables,
	}
}

func cp1() Node { return Node{Name: "cp-1", AdvertiseAddress: "10.99.60.11"} }

type goldenCase struct {
	name string
	gen  func() ([]byte, error)
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{"init-single", func() ([]byte, error) { return InitConfig(single(), cp1(), "") }},
		{"init-ha", func() ([]byte, error) {
			n := cp1()
			n.Labels = map[string]string{"wutong.io/role": "control", "node.kubernetes.io/exclude-from-external-load-balancers": "", "app.example.com/zone": "a"}
			n.Taints = []Taint{}
			n.IgnorePreflightErrors = []string{"NumCPU", "Mem", "NumCPU"}
			return InitConfig(ha(), n, testCertKey)
		}},
		{"init-dualstack", func() ([]byte, error) { return InitConfig(dualStack(), cp1(), "") }},
		{"join-worker", func() ([]byte, error) {
			n := Node{Name: "worker-1", AdvertiseAddress: "10.99.60.21", Labels: map[string]string{"wutong.io/gateway": "true"},
				Taints: []Taint{{Key: "dedicated", Value: "gateway", Effect: "NoSchedule"}}}
			return JoinConfig(single(), n, Join{Token: testToken, CACertHashes: []string{testHash}})
		}},
		{"join-control-plane", func() ([]byte, error) {
			n := Node{Name: "cp-2", AdvertiseAddress: "10.99.60.12", CRISocket: "unix:///var/run/containerd/containerd.sock"}
			return JoinConfig(ha(), n, Join{Token: testToken, CACertHashes: []string{testHash}, CertificateKey: testCertKey, ControlPlane: true})
		}},
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.gen()
			if err != nil {
				t.Fatal(err)
			}
			again, _ := tc.gen()
			if !bytes.Equal(got, again) {
				t.Fatalf("output differs between two runs:\n%s\n---- and ----\n%s", got, again)
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./installer/kubeadm -update creates it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (go test ./installer/kubeadm -update rewrites it); got:\n%s", path, got)
			}
		})
	}
}

// TestDocumentsDecodeStrictly parses every generated document back with unknown fields forbidden: the kubelet and
// kube-proxy documents into the official types, the kubeadm ones into this package's structs (which must then
// marshal back to the same bytes).
func TestDocumentsDecodeStrictly(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.gen()
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, doc := range strings.Split(string(out), "---\n") {
				var tm struct{ APIVersion, Kind string }
				if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
					t.Fatal(err)
				}
				kinds = append(kinds, tm.Kind)
				var target any
				switch tm.Kind {
				case kindInit:
					target = &initConfiguration{}
				case kindCluster:
					target = &clusterConfiguration{}
				case kindJoin:
					target = &joinConfiguration{}
				case "KubeletConfiguration":
					checkAPIVersion(t, tm.Kind, tm.APIVersion, "kubelet.config.k8s.io/v1beta1")
					var k kubeletv1beta1.KubeletConfiguration
					if err := yaml.UnmarshalStrict([]byte(doc), &k); err != nil {
						t.Fatalf("KubeletConfiguration: %v\n%s", err, doc)
					}
					checkKubelet(t, tc.name, k)
					continue
				case "KubeProxyConfiguration":
					checkAPIVersion(t, tm.Kind, tm.APIVersion, "kubeproxy.config.k8s.io/v1alpha1")
					var p kubeproxyv1alpha1.KubeProxyConfiguration
					if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
						t.Fatalf("KubeProxyConfiguration: %v\n%s", err, doc)
					}
					if p.ClusterCIDR == "" || p.Mode == "" {
						t.Errorf("KubeProxyConfiguration without clusterCIDR or mode:\n%s", doc)
					}
					continue
				default:
					t.Fatalf("unexpected kind %q", tm.Kind)
				}
				checkAPIVersion(t, tm.Kind, tm.APIVersion, "kubeadm.k8s.io/v1beta4")
				if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
					t.Fatalf("%s: %v\n%s", tm.Kind, err, doc)
				}
				back, err := yaml.Marshal(reflect.ValueOf(target).Elem().Interface())
				if err != nil {
					t.Fatal(err)
				}
				if string(back) != doc {
					t.Errorf("%s does not round-trip:\n%s\n---- became ----\n%s", tm.Kind, doc, back)
				}
			}
			want := []string{kindInit, kindCluster, "KubeletConfiguration", "KubeProxyConfiguration"}
			if strings.HasPrefix(tc.name, "join") {
				want = []string{kindJoin}
			}
			if !reflect.DeepEqual(kinds, want) {
				t.Errorf("documents %v, want %v", kinds, want)
			}
		})
	}
}

func checkAPIVersion(t *testing.T, kind, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s apiVersion %q, want %q", kind, got, want)
	}
}

func checkKubelet(t *testing.T, name string, k kubeletv1beta1.KubeletConfiguration) {
	t.Helper()
	wantDNS := map[string]string{"init-single": "10.96.0.10", "init-ha": "10.96.0.10", "init-dualstack": "10.96.0.10"}[name]
	if k.CgroupDriver != "systemd" || k.ContainerRuntimeEndpoint != DefaultCRISocket || !k.RotateCertificates ||
		k.ServerTLSBootstrap || k.FailSwapOn == nil || !*k.FailSwapOn || !reflect.DeepEqual(k.ClusterDNS, []string{wantDNS}) {
		t.Errorf("%s: kubelet configuration %+v", name, k)
	}
	if cg1 := name == "init-single"; cg1 != (k.FailCgroupV1 != nil && !*k.FailCgroupV1) {
		t.Errorf("%s: failCgroupV1 %v", name, k.FailCgroupV1)
	}
	if k.FailCgroupV1 != nil && name != "init-single" {
		t.Errorf("%s: failCgroupV1 set without a cgroup v1 node", name)
	}
}

func TestTaints(t *testing.T) {
	for _, tc := range []struct {
		name         string
		taints       []Taint
		controlPlane bool
		want         string
	}{
		{"control plane default", nil, true, "- effect: NoSchedule\n  key: node-role.kubernetes.io/control-plane\n"},
		{"control plane none", []Taint{}, true, "[]\n"},
		{"worker default", nil, false, "[]\n"},
		{"sorted", []Taint{{"b", "", "NoExecute"}, {"a", "x", "NoSchedule"}}, false,
			"- effect: NoSchedule\n  key: a\n  value: x\n- effect: NoExecute\n  key: b\n"},
	} {
		b, err := yaml.Marshal(taints(tc.taints, tc.controlPlane))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s: got\n%s want\n%s", tc.name, b, tc.want)
		}
	}
}

func TestClusterDNS(t *testing.T) {
	for _, tc := range []struct{ subnet, want string }{
		{"10.96.0.0/12", "10.96.0.10"},
		{"10.96.0.0/16,fd00:10:96::/112", "10.96.0.10"},
		{"fd00:10:96::/112,10.96.0.0/16", "fd00:10:96::a"},
		{"10.96.0.5/12", "10.96.0.10"}, // kubeadm masks the address first
		{"172.20.0.0/28", "172.20.0.10"},
		{"172.20.0.0/29", ""},
		{"nonsense", ""},
	} {
		got, err := ClusterDNS(tc.subnet)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ClusterDNS(%q) = %s, want an error", tc.subnet, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ClusterDNS(%q) = %s, %v; want %s", tc.subnet, got, err, tc.want)
		}
	}
}

func TestWarnings(t *testing.T) {
	if ws := dualStack().Warnings(); len(ws) != 0 {
		t.Errorf("warnings without cause: %v", ws)
	}
	ws := single().Warnings()
	if len(ws) != 1 || !strings.Contains(ws[0].EN, "cgroup v1") || !strings.Contains(ws[0].ZH, "cgroup v1") ||
		ws[0].In("zh-CN") != ws[0].ZH || ws[0].In("en") != ws[0].EN {
		t.Errorf("cgroup v1 warnings: %+v", ws)
	}
	if ws := ha().Warnings(); len(ws) != 1 || !strings.Contains(ws[0].EN, "ipvs") || !strings.Contains(ws[0].ZH, "ipvs") {
		t.Errorf("ipvs warnings: %+v", ws)
	}
}

func TestGeneratorsRejectInvalidInput(t *testing.T) {
	o := single()
	o.PodSubnet = "10.96.0.0/16" // overlaps the service subnet
	if _, err := InitConfig(o, cp1(), ""); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("InitConfig: %v", err)
	}
	if _, err := InitConfig(single(), cp1(), "abc"); err == nil || !strings.Contains(err.Error(), "certificateKey") {
		t.Errorf("InitConfig with a bad certificate key: %v", err)
	}
	if _, err := JoinConfig(single(), Node{Name: "w"}, Join{Token: "bad"}); err == nil ||
		!strings.Contains(err.Error(), "Join.Token") || !strings.Contains(err.Error(), "Join.CACertHashes") {
		t.Errorf("JoinConfig: %v", err)
	}
}
