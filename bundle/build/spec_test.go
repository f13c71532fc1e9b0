package build

import (
	"path/filepath"
	"strings"
	"testing"
)

const goodSpec = `apiVersion: wutong.io/v1alpha1
kind: BundleSpec
name: wutong
version: 1.0.0
arches: [amd64, arm64]
kubernetesVersion: v1.37.2
files:
  - {name: kubeadm, arch: amd64, path: bin/kubeadm, mode: "0755"}
  - {name: crictl.tgz, url: "https://example.com/c.tgz", sha256: "` + "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789" + `"}
images:
  - ref: registry.k8s.io/pause:3.10
  - {name: example.com/app:1, ociLayout: ./layout, arches: [arm64]}
manifests:
  - path: k8s/flannel.yaml
`

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec([]byte(goodSpec), "testdata/bundle.yaml")
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	if s.Files[1].Arch != ArchAll || s.Files[1].SHA256[:6] != "abcdef" {
		t.Fatalf("defaults not applied: %+v", s.Files[1])
	}
	if s.Images[0].Name != "registry.k8s.io/pause:3.10" {
		t.Fatalf("image name does not default to ref: %q", s.Images[0].Name)
	}
	if got := s.archesOf(&s.Images[1]); len(got) != 1 || got[0] != "arm64" {
		t.Fatalf("image arches = %v", got)
	}
	if !strings.HasSuffix(s.local("bin/kubeadm"), "testdata/bin/kubeadm") {
		t.Fatalf("relative path not resolved against bundle.yaml: %s", s.local("bin/kubeadm"))
	}
}

func TestParseSpecErrors(t *testing.T) {
	cases := []struct {
		name, from, to string
		want           string // substring, including the line number
	}{
		{"unknown arch", "arches: [amd64, arm64]", "arches: [amd64, riscv64]", `bundle.yaml:5: arches[1]: unknown arch "riscv64"`},
		{"duplicate arch", "arches: [amd64, arm64]", "arches: [amd64, amd64]", "listed twice"},
		{"wrong kind", "kind: BundleSpec", "kind: Bundle", `bundle.yaml:2: kind: must be "BundleSpec"`},
		{"bad name", "name: wutong", "name: Wutong/X", "bundle.yaml:3: name"},
		{"file arch not in bundle", "arch: amd64, path", "arch: loong64, path", `bundle.yaml:8: files[0].arch: "loong64" is not one of the bundle's arches`},
		{"url without sha256", `, sha256: "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"`, "", "files[1].sha256: a URL source needs its sha256"},
		{"two file sources", "path: bin/kubeadm", "path: bin/kubeadm, url: https://x/y", "bundle.yaml:8: files[0]: set exactly one of path, url or oci"},
		{"bad mode", `mode: "0755"`, `mode: "rwx"`, "files[0].mode"},
		{"image without source", "- ref: registry.k8s.io/pause:3.10", "- name: x", "images[0]: set exactly one source"},
		{"image arch not in bundle", "arches: [arm64]}", "arches: [loong64]}", "images[1].arches[0]"},
		{"image with no name", "{name: example.com/app:1, ociLayout", "{ociLayout", "images[1].name: an image from ociLayout"},
		{"unknown field, with line", "kubernetesVersion: v1.37.2", "kubernetesVersion: v1.37.2\nregistry: x", "[7:1] unknown field \"registry\""},
		{"yaml syntax, with line", "images:", "images: [", "bundle.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(goodSpec, tc.from, tc.to, 1)
			if src == goodSpec {
				t.Fatalf("test case did not change the spec")
			}
			_, err := ParseSpec([]byte(src), "bundle.yaml")
			if err == nil {
				t.Fatal("bad spec accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(goodSpec))
	f.Add([]byte("apiVersion: wutong.io/v1alpha1\nkind: BundleSpec\nname: a\nversion: 1\narches: [amd64]\nfiles: [{name: x}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data, "fuzz.yaml")
		if err != nil {
			return
		}
		// Whatever is accepted must be buildable in shape: valid arches, one source each, safe file names.
		for _, f := range s.Files {
			if strings.ContainsAny(f.Name, "/\\") || (f.Arch != ArchAll && !contains(s.Arches, f.Arch)) {
				t.Fatalf("accepted bad file %+v", f)
			}
		}
		for _, im := range s.Images {
			if im.Name == "" || count(im.Ref != "", im.OCILayout != "", im.DockerArchive != "", im.Binaries != nil) != 1 {
				t.Fatalf("accepted bad image %+v", im)
			}
		}
	})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

const layersSpec = `apiVersion: wutong.io/v1alpha1
kind: BundleSpec
name: wutong
version: 1.0.0
arches: [amd64, loong64]
images:
  - name: ghcr.io/flannel-io/flannel:v0.28.10
    binaries:
      path: "{arch}/bin/flanneld"
      layers: ["{arch}/layers/iptables.tar", /abs/common.tar]
    arches: [amd64]
`

func TestParseSpecBinariesLayers(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		wantLayers     []string // resolved, relative to testdata/; empty when an error is wanted
		wantErr        string
	}{
		{name: "relative and absolute", wantLayers: []string{"testdata/amd64/layers/iptables.tar", "/abs/common.tar"}},
		{name: "none", from: `      layers: ["{arch}/layers/iptables.tar", /abs/common.tar]` + "\n", to: "", wantLayers: nil},
		{name: "empty path", from: `layers: ["{arch}/layers/iptables.tar",`, to: `layers: ["",`,
			wantErr: `bundle.yaml:10: images[0].binaries.layers[0]: is empty`},
		{name: "listed twice", from: `/abs/common.tar]`, to: `"{arch}/layers/iptables.tar"]`,
			wantErr: `images[0].binaries.layers[1]: "{arch}/layers/iptables.tar" is listed twice`},
		{name: "not a list", from: `layers: ["{arch}/layers/iptables.tar", /abs/common.tar]`, to: `layers: {a: b}`, wantErr: "bundle.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(layersSpec, tc.from, tc.to, 1)
			if tc.from != "" && src == layersSpec {
				t.Fatal("test case did not change the spec")
			}
			s, err := ParseSpec([]byte(src), "testdata/bundle.yaml")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b := &builder{spec: s}
			got := b.imageSource(&s.Images[0]).Binaries.Layers
			if len(got) != len(tc.wantLayers) {
				t.Fatalf("layers %q, want %q", got, tc.wantLayers)
			}
			for i, w := range tc.wantLayers {
				// "{arch}" stays for images.Resolve to replace; relative paths are resolved against bundle.yaml.
				w = strings.Replace(w, "amd64", "{arch}", 1)
				if !filepath.IsAbs(got[i]) || !strings.HasSuffix(got[i], w) {
					t.Errorf("layers[%d] = %q, want an absolute path ending in %q", i, got[i], w)
				}
			}
		})
	}
}
