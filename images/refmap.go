package images

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DockerHub is the name containerd and LocalRef use for Docker Hub; go-containerregistry calls it index.docker.io.
const DockerHub = "docker.io"

// pathRE is the repository path grammar of the OCI distribution spec (lowercase components separated by '/', each
// component's separators one of '.', '_', '__' or dashes). go-containerregistry checks only the character set.
var pathRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// maxNameLength is the longest repository name (registry host included) the distribution reference grammar accepts.
const maxNameLength = 255

// LocalRef maps an upstream reference (e.g. registry.k8s.io/kube-apiserver:v1.37.2, nginx:1.27,
// docker.io/library/nginx@sha256:...) to its name in the local registry at host (HOST[:PORT]).
//
// The rule: local name = host + "/" + upstream registry + "/" + repository path, keeping the tag and/or digest.
//   - The upstream registry is lower-cased and normalized the way containerd names it: Docker Hub is "docker.io"
//     (never index.docker.io), and Docker Hub official images get their "library/" prefix.
//   - A port in the upstream registry becomes "_PORT" (localhost:5000 -> localhost_5000), because ':' is not allowed
//     in a repository path. Host names cannot contain '_', so this cannot collide with another registry.
//   - A reference with neither tag nor digest gets ":latest", as a pull of it would.
//   - A reference whose registry already is host is returned unchanged.
//
// Examples, for host 10.99.0.10:5000:
//
//	registry.k8s.io/kube-apiserver:v1.37.2 -> 10.99.0.10:5000/registry.k8s.io/kube-apiserver:v1.37.2
//	nginx:1.27                             -> 10.99.0.10:5000/docker.io/library/nginx:1.27
//	localhost:5000/app@sha256:…            -> 10.99.0.10:5000/localhost_5000/app@sha256:…
//
// Because the source registry is part of the path, names from different registries never collide. containerd
// expresses the same rule with certs.d/<upstream>/hosts.toml mirroring to https://host/v2/<upstream-path-component>
// with override_path (see HostsTOML), so nodes pull upstream names unchanged and get the local copies.
//
// IPv6 literal registries ([::1]:5000) have no mapping and are an error, as is a result longer than the 255
// characters a repository name may have.
func LocalRef(upstream, host string) (string, error) {
	if err := checkHost(host); err != nil {
		return "", fmt.Errorf("map %q to local registry: %w", upstream, err)
	}
	ref, err := name.ParseReference(upstream)
	if err != nil {
		return "", fmt.Errorf("map %q to local registry: not an image reference: %w", upstream, err)
	}
	reg := ref.Context().RegistryStr()
	if strings.EqualFold(reg, host) {
		return upstream, nil
	}
	comp, err := RegistryPath(reg)
	if err != nil {
		return "", fmt.Errorf("map %q to local registry: %w", upstream, err)
	}
	path := ref.Context().RepositoryStr()
	if comp == DockerHub && !strings.Contains(path, "/") {
		path = "library/" + path // an official image named with an upper-case Docker.io
	}
	repo := comp + "/" + path
	if !pathRE.MatchString(repo) {
		return "", fmt.Errorf("map %q to local registry: repository path %q is not valid (lowercase letters, digits, and '.', '_', '__' or '-' between them)", upstream, ref.Context().RepositoryStr())
	}
	if n := len(host) + 1 + len(repo); n > maxNameLength {
		return "", fmt.Errorf("map %q to local registry: %s/%s is %d characters long; the limit is %d", upstream, host, repo, n, maxNameLength)
	}
	tag, dig := splitIdentifier(upstream, ref)
	out := host + "/" + repo
	if tag != "" {
		out += ":" + tag
	}
	if dig != "" {
		out += "@" + dig
	}
	if _, err := name.ParseReference(out, name.StrictValidation); err != nil {
		return "", fmt.Errorf("map %q to local registry: result %q is not a valid reference: %w", upstream, out, err)
	}
	return out, nil
}

// RegistryPath is the path component under which LocalRef stores images of registry reg (HOST[:PORT]): the
// lower-cased host, docker.io for Docker Hub, with ':' replaced by '_'. It is also the last element of the mirror
// URL in the registry's hosts.toml.
func RegistryPath(reg string) (string, error) {
	reg = NormalizeRegistry(reg)
	if strings.ContainsAny(reg, "[]") {
		return "", fmt.Errorf("registry %q: IPv6 literal registries cannot be mirrored; give it a host name", reg)
	}
	if strings.Contains(reg, "_") {
		return "", fmt.Errorf("registry %q: '_' is not allowed in a host name (it stands for ':' in local paths)", reg)
	}
	comp := strings.ReplaceAll(reg, ":", "_")
	if !pathRE.MatchString(comp) || strings.Contains(comp, "/") {
		return "", fmt.Errorf("registry %q cannot be used as a repository path component", reg)
	}
	return comp, nil
}

// NormalizeRegistry lower-cases a registry host and names Docker Hub docker.io, as containerd's certs.d does.
func NormalizeRegistry(reg string) string {
	reg = strings.ToLower(reg)
	if reg == name.DefaultRegistry || reg == "registry-1.docker.io" {
		return DockerHub
	}
	return reg
}

// checkHost accepts HOST[:PORT] with nothing else: no scheme, path, user or empty parts.
func checkHost(host string) error {
	if host == "" {
		return fmt.Errorf("local registry host is empty")
	}
	if strings.ContainsAny(host, "/@ ") || strings.HasSuffix(host, ":") {
		return fmt.Errorf("local registry %q must be HOST[:PORT], without scheme or path", host)
	}
	if h := strings.ToLower(host); h != "localhost" && !strings.ContainsAny(h, ".:") {
		return fmt.Errorf("local registry %q needs a '.' or a port (or be localhost); otherwise references read it as a Docker Hub path", host)
	}
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil {
		return fmt.Errorf("local registry %q must be HOST[:PORT]: %w", host, err)
	}
	return nil
}

// splitIdentifier returns the tag and the digest of ref as written in s; a reference with neither gets "latest".
func splitIdentifier(s string, ref name.Reference) (tag, dig string) {
	switch r := ref.(type) {
	case name.Tag:
		return r.TagStr(), ""
	case name.Digest:
		dig = r.DigestStr()
		base, _, _ := strings.Cut(s, "@")
		if i := strings.LastIndexByte(base, ':'); i > strings.LastIndexByte(base, '/') {
			tag = base[i+1:]
		}
		return tag, dig
	}
	return ref.Identifier(), ""
}
