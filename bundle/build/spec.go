// Package build turns a bundle.yaml into a signed bundle archive: it resolves every file and image source, stages
// one deduplicated OCI image layout, and streams the archive through bundle.Write, leaving no partial output when
// anything fails.
package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
)

// SpecKind is the kind of a bundle.yaml.
const SpecKind = "BundleSpec"

// ArchAll marks a file that serves every arch.
const ArchAll = "all"

// Spec is bundle.yaml: what goes into a bundle and where each piece comes from. Relative paths are relative to the
// directory holding bundle.yaml.
type Spec struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// Name and Version name the archive NAME-VERSION.tar.zst.
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
	// Arches are the target arches: amd64, arm64, loong64.
	Arches []string `yaml:"arches"`
	// KubernetesVersion is recorded in the manifest for the installer, e.g. v1.37.2.
	KubernetesVersion string      `yaml:"kubernetesVersion"`
	Files             []FileSpec  `yaml:"files"`
	Images            []ImageSpec `yaml:"images"`
	// Manifests are Kubernetes manifests (YAML files) carried under manifests/.
	Manifests []PathSpec `yaml:"manifests"`
	// Apps are app package files carried under apps/, as opaque files covered by the bundle's signature.
	Apps []PathSpec `yaml:"apps"`

	dir  string // directory of bundle.yaml
	file string // path of bundle.yaml, for messages
}

// FileSpec is one carried file. Exactly one of Path, URL or OCI is set.
type FileSpec struct {
	// Name is the file name in the bundle: files/<arch>/<name>.
	Name string `yaml:"name"`
	// Arch is the arch the file belongs to, or "all" (default) for an arch-independent file.
	Arch string `yaml:"arch"`
	// Path is a local file.
	Path string `yaml:"path"`
	// URL is an http(s) URL; SHA256 is then required and checked.
	URL    string `yaml:"url"`
	SHA256 string `yaml:"sha256"`
	// OCI is an OCI artifact reference; its single layer (or the one titled Name) becomes the file.
	OCI string `yaml:"oci"`
	// Mode is the octal file mode, e.g. "0755". Default: the local file's mode, or 0644.
	Mode string `yaml:"mode"`
}

// ImageSpec is one image. Exactly one source (Ref, OCILayout, DockerArchive, Binaries) is set.
type ImageSpec struct {
	// Name is the image's name in the bundle, e.g. registry.k8s.io/pause:3.10. Default: Ref.
	Name string `yaml:"name"`
	// Ref pulls from a registry, with credentials from the docker config.
	Ref string `yaml:"ref"`
	// OCILayout reads from an OCI image layout directory; RefName picks one image from it.
	OCILayout string `yaml:"ociLayout"`
	RefName   string `yaml:"refName"`
	// DockerArchive reads a `docker save` tarball; Tag picks one image from it.
	DockerArchive string `yaml:"dockerArchive"`
	Tag           string `yaml:"tag"`
	// Binaries builds the image from per-arch binaries ("{arch}" in Path is replaced).
	Binaries *BinariesSpec `yaml:"binaries"`
	// Arches limits this image to some of the bundle's arches. Default: all of them.
	Arches []string `yaml:"arches"`
}

// BinariesSpec builds an image from one static binary per arch, the way ko does.
type BinariesSpec struct {
	Path       string   `yaml:"path"`
	Target     string   `yaml:"target"`
	Entrypoint []string `yaml:"entrypoint"`
	Env        []string `yaml:"env"`
	// Layers are tar files ("{arch}" is replaced) added below the binary, the first one lowest, e.g. the iptables
	// userland that kube-proxy or flanneld exec.
	Layers []string `yaml:"layers"`
}

// PathSpec names a local file.
type PathSpec struct {
	Path string `yaml:"path"`
}

// LoadSpec reads and validates bundle.yaml. Errors carry the file name and line.
func LoadSpec(p string) (*Spec, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read bundle spec: %w", err)
	}
	return ParseSpec(data, p)
}

// ParseSpec parses bundle.yaml content; name is the file it came from (for messages and relative paths).
func ParseSpec(data []byte, name string) (spec *Spec, err error) {
	var s Spec
	if err := decodeYAML(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %s", name, err)
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, fmt.Errorf("parse bundle spec: %w", err)
	}
	s.dir, s.file = filepath.Dir(abs), name
	if err := s.validate(data); err != nil {
		return nil, err
	}
	return &s, nil
}

// decodeYAML decodes strictly (unknown fields are errors) and formats errors with the line and the source. The
// YAML library can panic on some malformed input (found by FuzzParseSpec); that becomes an error too.
func decodeYAML(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed YAML (%v); check the file's syntax", r)
		}
	}()
	if err := yaml.UnmarshalWithOptions(data, v, yaml.Strict()); err != nil {
		return errors.New(yaml.FormatError(err, false, true))
	}
	return nil
}

// specError is a validation error pointing at a field of bundle.yaml.
type specError struct {
	file  string
	line  int
	field string
	msg   string
}

func (e *specError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.file, e.line, e.field, e.msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.file, e.field, e.msg)
}

func (s *Spec) validate(data []byte) error {
	errAt := func(field, format string, a ...any) error {
		e := &specError{file: s.file, field: field, msg: fmt.Sprintf(format, a...)}
		e.line = lineOf(data, field)
		return e
	}
	if s.APIVersion != bundle.APIVersion {
		return errAt("apiVersion", "must be %q, got %q", bundle.APIVersion, s.APIVersion)
	}
	if s.Kind != SpecKind {
		return errAt("kind", "must be %q, got %q", SpecKind, s.Kind)
	}
	if !bundle.ValidName(s.Name) {
		return errAt("name", "%q is invalid: use lower-case letters, digits, '.', '_' and '-'", s.Name)
	}
	if s.Version == "" || strings.ContainsAny(s.Version, "/\\ \t") {
		return errAt("version", "%q is invalid: give a version such as 1.0.0", s.Version)
	}
	if len(s.Arches) == 0 {
		return errAt("arches", "list at least one of %s", strings.Join(images.Arches, ", "))
	}
	seenArch := map[string]bool{}
	for i, a := range s.Arches {
		if !images.ValidArch(a) {
			return errAt(fmt.Sprintf("arches[%d]", i), "unknown arch %q: use %s", a, strings.Join(images.Arches, ", "))
		}
		if seenArch[a] {
			return errAt(fmt.Sprintf("arches[%d]", i), "%q is listed twice", a)
		}
		seenArch[a] = true
	}
	seenFile := map[string]bool{}
	for i := range s.Files {
		f := &s.Files[i]
		at := fmt.Sprintf("files[%d]", i)
		if f.Name == "" || strings.ContainsAny(f.Name, "/\\") || f.Name == "." || f.Name == ".." {
			return errAt(at+".name", "%q is not a plain file name", f.Name)
		}
		if f.Arch == "" {
			f.Arch = ArchAll
		}
		if f.Arch != ArchAll && !seenArch[f.Arch] {
			return errAt(at+".arch", "%q is not one of the bundle's arches (%s) or %q", f.Arch, strings.Join(s.Arches, ", "), ArchAll)
		}
		key := f.Arch + "/" + f.Name
		if seenFile[key] {
			return errAt(at+".name", "files/%s is declared twice", key)
		}
		seenFile[key] = true
		switch n := count(f.Path != "", f.URL != "", f.OCI != ""); {
		case n != 1:
			return errAt(at, "set exactly one of path, url or oci")
		case f.URL != "":
			if !strings.HasPrefix(f.URL, "https://") && !strings.HasPrefix(f.URL, "http://") {
				return errAt(at+".url", "%q is not an http(s) URL", f.URL)
			}
			if len(f.SHA256) != 64 || strings.Trim(strings.ToLower(f.SHA256), "0123456789abcdef") != "" {
				return errAt(at+".sha256", "a URL source needs its sha256 (64 hex digits), got %q", f.SHA256)
			}
			f.SHA256 = strings.ToLower(f.SHA256)
		}
		if f.Mode != "" {
			if m, err := strconv.ParseUint(f.Mode, 8, 32); err != nil || m&^0o777 != 0 {
				return errAt(at+".mode", "%q is not an octal mode such as \"0755\"", f.Mode)
			}
		}
	}
	seenImage := map[string]bool{}
	for i := range s.Images {
		im := &s.Images[i]
		at := fmt.Sprintf("images[%d]", i)
		if im.Name == "" {
			im.Name = im.Ref
		}
		if im.Name == "" {
			return errAt(at+".name", "an image from ociLayout, dockerArchive or binaries needs a name, e.g. example.com/app:1.0")
		}
		if seenImage[im.Name] {
			return errAt(at+".name", "image %q is declared twice", im.Name)
		}
		seenImage[im.Name] = true
		if count(im.Ref != "", im.OCILayout != "", im.DockerArchive != "", im.Binaries != nil) != 1 {
			return errAt(at, "set exactly one source: ref, ociLayout, dockerArchive or binaries")
		}
		if im.Binaries != nil && !strings.Contains(im.Binaries.Path, "{arch}") && len(s.archesOf(im)) > 1 {
			return errAt(at+".binaries.path", "%q must contain {arch} to build for several arches", im.Binaries.Path)
		}
		if im.Binaries != nil {
			seenLayer := map[string]bool{}
			for j, l := range im.Binaries.Layers {
				field := fmt.Sprintf("%s.binaries.layers[%d]", at, j)
				if l == "" {
					return errAt(field, "is empty")
				}
				if seenLayer[l] {
					return errAt(field, "%q is listed twice", l)
				}
				seenLayer[l] = true
			}
		}
		for j, a := range im.Arches {
			if !seenArch[a] {
				return errAt(fmt.Sprintf("%s.arches[%d]", at, j), "%q is not one of the bundle's arches (%s)", a, strings.Join(s.Arches, ", "))
			}
		}
	}
	for _, group := range []struct {
		name  string
		paths []PathSpec
	}{{"manifests", s.Manifests}, {"apps", s.Apps}} {
		seen := map[string]bool{}
		for i, p := range group.paths {
			base := filepath.Base(p.Path)
			if p.Path == "" {
				return errAt(fmt.Sprintf("%s[%d].path", group.name, i), "is empty")
			}
			if seen[base] {
				return errAt(fmt.Sprintf("%s[%d].path", group.name, i), "another entry is also named %q", base)
			}
			seen[base] = true
		}
	}
	return nil
}

// lineOf finds the line of a field path such as images[2].ref, or 0 when it cannot.
func lineOf(data []byte, field string) (line int) {
	defer func() {
		if recover() != nil {
			line = 0
		}
	}()
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return 0
	}
	yp, err := yaml.PathString("$." + field)
	if err != nil {
		return 0
	}
	n, err := yp.FilterFile(f)
	if err != nil || n == nil || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

func (s *Spec) archesOf(im *ImageSpec) []string {
	if len(im.Arches) > 0 {
		return im.Arches
	}
	return s.Arches
}

// local resolves a path from bundle.yaml.
func (s *Spec) local(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.dir, p)
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
