package images

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestLocalRef(t *testing.T) {
	const host = "10.99.0.10:5000"
	tests := []struct {
		upstream, host, want, err string
	}{
		{upstream: "registry.k8s.io/kube-apiserver:v1.37.2", want: host + "/registry.k8s.io/kube-apiserver:v1.37.2"},
		{upstream: "registry.k8s.io/pause:3.10", host: "registry.wutong.local", want: "registry.wutong.local/registry.k8s.io/pause:3.10"},
		{upstream: "nginx:1.27", want: host + "/docker.io/library/nginx:1.27"},
		{upstream: "nginx", want: host + "/docker.io/library/nginx:latest"},
		{upstream: "bitnami/redis:7", want: host + "/docker.io/bitnami/redis:7"},
		{upstream: "docker.io/library/nginx@" + testDigest, want: host + "/docker.io/library/nginx@" + testDigest},
		{upstream: "index.docker.io/library/nginx:1", want: host + "/docker.io/library/nginx:1"},
		{upstream: "registry-1.docker.io/library/nginx:1", want: host + "/docker.io/library/nginx:1"},
		{upstream: "Docker.io/nginx:1", want: host + "/docker.io/library/nginx:1"},
		{upstream: "nginx:1.27@" + testDigest, want: host + "/docker.io/library/nginx:1.27@" + testDigest},
		{upstream: "ghcr.io/org/team/app:v1-rc.1", want: host + "/ghcr.io/org/team/app:v1-rc.1"},
		{upstream: "Quay.IO/coreos/etcd:v3", want: host + "/quay.io/coreos/etcd:v3"},
		{upstream: "localhost:5000/x:1", want: host + "/localhost_5000/x:1"},
		{upstream: "localhost/x:1", want: host + "/localhost/x:1"},
		{upstream: "10.0.0.1:8443/team/app@" + testDigest, want: host + "/10.0.0.1_8443/team/app@" + testDigest},
		{upstream: "my-reg.example.com:443/a/b:c", want: host + "/my-reg.example.com_443/a/b:c"},
		// Already local: unchanged, whatever its path.
		{upstream: host + "/registry.k8s.io/pause:3.10", want: host + "/registry.k8s.io/pause:3.10"},
		{upstream: "REGISTRY.local:5000/x:1", host: "registry.local:5000", want: "REGISTRY.local:5000/x:1"},
		// Errors.
		{upstream: "", err: "not an image reference"},
		{upstream: "Nginx:1", err: "not an image reference"},
		{upstream: "nginx:", err: "not an image reference"},
		{upstream: "nginx@sha256:abc", err: "not an image reference"},
		{upstream: "registry.k8s.io/a..b:1", err: "is not valid"},
		{upstream: "registry.k8s.io/-a:1", err: "is not valid"},
		{upstream: "[::1]:5000/x:1", err: "IPv6"},
		{upstream: "registry.k8s.io/" + strings.Repeat("a", 240) + ":1", err: "characters long"},
		{upstream: "nginx:1", host: "", err: "host is empty"},
		{upstream: "nginx:1", host: "https://10.0.0.1", err: "HOST[:PORT]"},
		{upstream: "nginx:1", host: "10.0.0.1:5000/x", err: "HOST[:PORT]"},
		{upstream: "nginx:1", host: "10.0.0.1:", err: "HOST[:PORT]"},
	}
	for _, tt := range tests {
		h := tt.host
		if h == "" && !strings.Contains(tt.err, "empty") {
			h = host
		}
		t.Run(tt.upstream+"@"+h, func(t *testing.T) {
			got, err := LocalRef(tt.upstream, h)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("LocalRef(%q, %q) = %q, %v; want error containing %q", tt.upstream, h, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("LocalRef(%q, %q) = %q, %v; want %q", tt.upstream, h, got, err, tt.want)
			}
			if _, err := name.ParseReference(got, name.StrictValidation); err != nil {
				t.Errorf("result %q does not parse strictly: %v", got, err)
			}
			// Mapping is idempotent.
			if again, err := LocalRef(got, h); err != nil || again != got {
				t.Errorf("LocalRef(LocalRef) = %q, %v; want %q", again, err, got)
			}
		})
	}
}

func TestRegistryPath(t *testing.T) {
	tests := map[string]string{
		"registry.k8s.io":    "registry.k8s.io",
		"index.docker.io":    "docker.io",
		"docker.io":          "docker.io",
		"localhost:5000":     "localhost_5000",
		"Harbor.Example.com": "harbor.example.com",
		"[::1]:5000":         "",
		"bad_host.example:1": "",
		"a/b":                "",
		"":                   "",
	}
	for in, want := range tests {
		got, err := RegistryPath(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("RegistryPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func FuzzLocalRef(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1.27", "registry.k8s.io/pause:3.10", "localhost:5000/x@" + testDigest,
		"docker.io/library/nginx:1@" + testDigest, "[::1]:5000/x", "a/b/c/d:e", "10.99.0.10:5000/docker.io/x:1"} {
		f.Add(s, "10.99.0.10:5000")
		f.Add(s, "registry.local")
	}
	f.Fuzz(func(t *testing.T, upstream, host string) {
		got, err := LocalRef(upstream, host)
		if err != nil {
			return
		}
		if got == upstream {
			return // already local
		}
		ref, err := name.ParseReference(got, name.StrictValidation)
		if err != nil {
			t.Fatalf("LocalRef(%q, %q) = %q, which does not parse: %v", upstream, host, got, err)
		}
		if !pathRE.MatchString(ref.Context().RepositoryStr()) {
			t.Fatalf("LocalRef(%q, %q) = %q: repository path breaks the grammar", upstream, host, got)
		}
		if !strings.EqualFold(ref.Context().RegistryStr(), host) {
			t.Fatalf("LocalRef(%q, %q) = %q: not in the local registry", upstream, host, got)
		}
	})
}
