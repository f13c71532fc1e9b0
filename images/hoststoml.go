package images

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// HostsTOML renders certs.d/<upstream>/hosts.toml that mirrors upstream to the local registry (override_path),
// trusting caPath.
//
// upstream is a registry host as containerd names it (registry.k8s.io, docker.io, localhost:5000); local is the
// local registry's HOST[:PORT]. The file reads:
//
//	server = "https://registry.k8s.io"
//
//	[host."https://10.99.0.10:5000/v2/registry.k8s.io"]
//	  capabilities = ["pull", "resolve"]
//	  ca = "/etc/wutong/pki/ca.crt"
//	  override_path = true
//
// With override_path containerd takes the URL path as the registry's API root instead of appending /v2, so a pull of
// registry.k8s.io/kube-apiserver:v1.37.2 asks https://10.99.0.10:5000/v2/registry.k8s.io/kube-apiserver/manifests/v1.37.2:
// the repository registry.k8s.io/kube-apiserver, exactly where LocalRef puts it. The mirror is tried first; server is
// containerd's last resort, which simply fails in an air-gapped site. Docker Hub's server is
// https://registry-1.docker.io, as containerd's own default. An upstream that RegistryPath refuses has no mirror and
// gets a file with only a comment saying so.
func HostsTOML(upstream, local, caPath string) []byte {
	upstream = NormalizeRegistry(upstream)
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by wtctl: pulls of %s/... are served by the local registry %s.\n", oneLine(upstream), oneLine(local))
	comp, err := RegistryPath(upstream)
	if err != nil {
		fmt.Fprintf(&b, "# No mirror: %s\n", err)
		return []byte(b.String())
	}
	server := "https://" + upstream
	if upstream == DockerHub {
		server = "https://registry-1.docker.io"
	}
	fmt.Fprintf(&b, "server = %s\n\n", tomlString(server))
	fmt.Fprintf(&b, "[host.%s]\n", tomlString("https://"+local+"/v2/"+comp))
	b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
	if caPath != "" {
		fmt.Fprintf(&b, "  ca = %s\n", tomlString(caPath))
	}
	b.WriteString("  override_path = true\n")
	return []byte(b.String())
}

// localHostsTOML is the local registry's own hosts.toml: pull and push straight from it, trusting caPath.
func localHostsTOML(local, caPath string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by wtctl: the local registry %s.\n", oneLine(local))
	fmt.Fprintf(&b, "server = %s\n", tomlString("https://"+local))
	if caPath != "" {
		fmt.Fprintf(&b, "ca = %s\n", tomlString(caPath))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "[host.%s]\n", tomlString("https://"+local))
	b.WriteString("  capabilities = [\"pull\", \"resolve\", \"push\"]\n")
	if caPath != "" {
		fmt.Fprintf(&b, "  ca = %s\n", tomlString(caPath))
	}
	return []byte(b.String())
}

// CertsD returns every file for a node's /etc/containerd/certs.d: one dir per upstream plus one for the local
// registry itself (so pulls of host/... trust the CA), as relative path -> content.
//
// Paths are "<registry>/hosts.toml" with the registry as containerd looks it up (docker.io for Docker Hub, the port
// kept: localhost:5000/hosts.toml). Upstreams are normalized and deduplicated; an upstream equal to local is only
// the local registry's entry.
func CertsD(local, caPath string, upstreams []string) map[string][]byte {
	out := map[string][]byte{path.Join(local, "hosts.toml"): localHostsTOML(local, caPath)}
	seen := map[string]bool{strings.ToLower(local): true}
	ups := append([]string(nil), upstreams...)
	sort.Strings(ups)
	for _, u := range ups {
		u = NormalizeRegistry(u)
		if u == "" || seen[u] || strings.ContainsAny(u, "/\\") || u == "." || u == ".." {
			continue
		}
		seen[u] = true
		out[path.Join(u, "hosts.toml")] = HostsTOML(u, local, caPath)
	}
	return out
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// oneLine drops control characters, so that s cannot end a TOML comment.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
