package pipeline

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/kube"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func platformInstall(images ...string) *Install {
	on := true
	cl := &cluster.Cluster{Metadata: cluster.Metadata{Name: "lab"}, Spec: cluster.Spec{
		Hosts: []cluster.Host{
			{Name: "cp1", Address: "192.0.2.11", InternalAddress: "10.99.60.11", Roles: []cluster.Role{cluster.RoleControlPlane, cluster.RoleRegistry}},
			{Name: "w1", Address: "192.0.2.12", InternalAddress: "10.99.60.12", Roles: []cluster.Role{cluster.RoleWorker}},
		},
		Registry: cluster.Registry{Domain: "registry.wutong.local", Port: 5443},
		Platform: cluster.Platform{Enabled: &on, NodePort: 30080, StorageSize: "10Gi"},
	}}
	m := &bundle.Manifest{}
	for _, i := range images {
		m.Images = append(m.Images, bundle.Image{Name: i})
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey)
	return &Install{Cluster: cl, Manifest: m, PlatformKeys: []ed25519.PublicKey{key}}
}

// TestPlatformObjects compares the platform's objects with the golden file; the manifest is the product here.
func TestPlatformObjects(t *testing.T) {
	in := platformInstall("registry.k8s.io/pause:3.10.2", "ghcr.io/wutong-paas/wutong:v0.3.0")
	if in.platformImage() != "ghcr.io/wutong-paas/wutong:v0.3.0" || in.PlatformURL() != "http://192.0.2.11:30080" {
		t.Fatalf("image %q url %q", in.platformImage(), in.PlatformURL())
	}
	objs, err := in.platformObjects("golden-admin-pw", "admin", "golden-registry-pw", []byte("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	// What apply will send must decode as Kubernetes objects, with kinds and versions set.
	decoded, err := kube.Decode("platform", out.Bytes())
	if err != nil || len(decoded) != len(objs) {
		t.Fatalf("decode: %d objects, %v", len(decoded), err)
	}
	golden := filepath.Join("testdata", "platform.golden.yaml")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("platform objects differ from %s (run with -update after checking):\n%s", golden, out.String())
	}
}

func TestPlatformSkipped(t *testing.T) {
	if why := (platformPhase{platformInstall("registry.k8s.io/pause:3.10.2")}).skip(); why == "" {
		t.Error("a bundle without the platform image must skip the platform")
	}
	in := platformInstall("ghcr.io/wutong-paas/wutong:v1")
	off := false
	in.Cluster.Spec.Platform.Enabled = &off
	if why := (platformPhase{in}).skip(); why == "" {
		t.Error("platform.enabled: false must skip the platform")
	}
}
