package pipeline

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
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

// goldenSecrets are fixed stand-ins, so that the objects are the same on every run.
func goldenSecrets() platformSecrets {
	return platformSecrets{adminPassword: "golden-admin-pw", regUser: "admin", regPassword: "golden-registry-pw",
		caPEM:   []byte("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"),
		certPEM: []byte("-----BEGIN CERTIFICATE-----\nPLATFORM\n-----END CERTIFICATE-----\n"),
		keyPEM:  []byte("-----BEGIN PRIVATE KEY-----\nPLATFORM\n-----END PRIVATE KEY-----\n")}
}

// TestPlatformObjects compares the platform's objects with the golden file; the manifest is the product here.
func TestPlatformObjects(t *testing.T) {
	in := platformInstall("registry.k8s.io/pause:3.10.2", "ghcr.io/wutong-paas/wutong:v0.3.0")
	if in.platformImage() != "ghcr.io/wutong-paas/wutong:v0.3.0" || in.PlatformURL() != "https://192.0.2.11:30080" {
		t.Fatalf("image %q url %q", in.platformImage(), in.PlatformURL())
	}
	objs, err := in.platformObjects(goldenSecrets())
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

// platformParts picks the Deployment, the Service and the TLS Secret (nil when absent) out of the objects.
func platformParts(t *testing.T, objs []*unstructured.Unstructured) (*appsv1.Deployment, *corev1.Service, *corev1.Secret) {
	t.Helper()
	var d *appsv1.Deployment
	var s *corev1.Service
	var sec *corev1.Secret
	for _, o := range objs {
		var into any
		switch {
		case o.GetKind() == "Deployment":
			d = &appsv1.Deployment{}
			into = d
		case o.GetKind() == "Service":
			s = &corev1.Service{}
			into = s
		case o.GetKind() == "Secret" && o.GetName() == PlatformTLSSecret:
			sec = &corev1.Secret{}
			into = sec
		default:
			continue
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
			t.Fatal(err)
		}
	}
	if d == nil || s == nil {
		t.Fatal("no Deployment or no Service among the platform's objects")
	}
	return d, s, sec
}

// TestPlatformHTTPSOrPlain checks both ways of serving: HTTPS by default, plain HTTP only with insecureHTTP.
func TestPlatformHTTPSOrPlain(t *testing.T) {
	for _, tc := range []struct {
		insecure    bool
		url, scheme string
		portName    string
		port        int32
		args, never []string
		secret      bool
	}{
		{insecure: false, url: "https://192.0.2.11:30080", scheme: "HTTPS", portName: "https", port: 443,
			args:  []string{"--tls-cert /etc/wutong/tls/tls.crt", "--tls-key /etc/wutong/tls/tls.key"},
			never: []string{"--insecure-http"}, secret: true},
		{insecure: true, url: "http://192.0.2.11:30080", scheme: "HTTP", portName: "http", port: 80,
			args: []string{"--insecure-http"}, never: []string{"--tls-cert", "--tls-key"}},
	} {
		t.Run(fmt.Sprintf("insecureHTTP=%v", tc.insecure), func(t *testing.T) {
			in := platformInstall("ghcr.io/wutong-paas/wutong:v1")
			in.Workdir = "/srv/wt work"
			in.Cluster.Spec.Platform.InsecureHTTP = tc.insecure
			if got := in.PlatformURL(); got != tc.url {
				t.Errorf("PlatformURL %q, want %q", got, tc.url)
			}
			sec := goldenSecrets()
			if tc.insecure {
				sec.certPEM, sec.keyPEM = nil, nil
			}
			objs, err := in.platformObjects(sec)
			if err != nil {
				t.Fatal(err)
			}
			d, svc, tlsSecret := platformParts(t, objs)
			c := d.Spec.Template.Spec.Containers[0]
			args := strings.Join(c.Args, " ")
			for _, a := range tc.args {
				if !strings.Contains(args, a) {
					t.Errorf("args lack %q: %s", a, args)
				}
			}
			for _, a := range tc.never {
				if strings.Contains(args, a) {
					t.Errorf("args have %q: %s", a, args)
				}
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil || string(p.HTTPGet.Scheme) != tc.scheme {
					t.Errorf("probe %+v, want scheme %s", p, tc.scheme)
				}
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != tc.port || svc.Spec.Ports[0].Name != tc.portName ||
				svc.Spec.Ports[0].NodePort != 30080 || svc.Spec.Ports[0].TargetPort.IntValue() != platformPort {
				t.Errorf("service ports %+v, want %s %d → %d on node port 30080", svc.Spec.Ports, tc.portName, tc.port, platformPort)
			}
			if len(c.Ports) != 1 || c.Ports[0].Name != tc.portName {
				t.Errorf("container ports %+v, want one named %s", c.Ports, tc.portName)
			}
			mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return m.MountPath == platformTLSDir && m.ReadOnly && m.Name == "tls"
			})
			fromSecret := slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
				return v.Name == "tls" && v.Secret != nil && v.Secret.SecretName == PlatformTLSSecret
			})
			hash := d.Spec.Template.Annotations[platformCertAnnotation]
			if !tc.secret {
				if tlsSecret != nil || mounted || fromSecret || hash != "" {
					t.Errorf("plain HTTP must carry no certificate: secret %v, mounted %v, volume %v, annotation %q", tlsSecret != nil, mounted, fromSecret, hash)
				}
			} else {
				if tlsSecret == nil || tlsSecret.Type != corev1.SecretTypeTLS || !bytes.Equal(tlsSecret.Data["tls.crt"], sec.certPEM) ||
					!bytes.Equal(tlsSecret.Data["tls.key"], sec.keyPEM) {
					t.Errorf("TLS secret %+v", tlsSecret)
				}
				if !mounted || !fromSecret {
					t.Errorf("the certificate must be mounted read-only from %s: mounted %v, volume %v", PlatformTLSSecret, mounted, fromSecret)
				}
				// A new certificate changes the pod template, so the running server picks it up.
				other := sec
				other.certPEM = []byte("another certificate")
				objs2, err := in.platformObjects(other)
				if err != nil {
					t.Fatal(err)
				}
				d2, _, _ := platformParts(t, objs2)
				if hash == "" || d2.Spec.Template.Annotations[platformCertAnnotation] == hash {
					t.Errorf("certificate annotation %q does not follow the certificate", hash)
				}
			}

			a := in.PlatformAccess()
			wantLogin := "wtctl app login " + tc.url + " --user admin"
			if !tc.insecure {
				if a.CAFile != "/srv/wt work/pki/ca.crt" {
					t.Errorf("CA file %q", a.CAFile)
				}
				wantLogin += " --ca-cert '/srv/wt work/pki/ca.crt'"
			} else if a.CAFile != "" {
				t.Errorf("plain HTTP has no CA to trust, got %q", a.CAFile)
			}
			if a.URL != tc.url || a.HTTPS == tc.insecure || a.Login != wantLogin || a.PasswordCommand != PlatformPasswordHint() {
				t.Errorf("access %+v, want login %q", a, wantLogin)
			}
		})
	}
}

func TestPlatformObjectsNeedCertificate(t *testing.T) {
	in := platformInstall("ghcr.io/wutong-paas/wutong:v1")
	sec := goldenSecrets()
	sec.keyPEM = nil
	if _, err := in.platformObjects(sec); err == nil || !strings.Contains(err.Error(), "no server certificate") {
		t.Errorf("HTTPS without a key must fail, got %v", err)
	}
}

func TestPlatformURLIPv6(t *testing.T) {
	in := platformInstall("ghcr.io/wutong-paas/wutong:v1")
	in.Cluster.Spec.Hosts[0].Address = "fd00::11"
	if got := in.PlatformURL(); got != "https://[fd00::11]:30080" {
		t.Errorf("PlatformURL %q", got)
	}
}
