// Package payload decides which of a bundle's files each node gets: the files for its arch and for all arches,
// the Kubernetes manifests, and the part of the OCI layout its arch needs. Paths are the same in the extracted
// bundle and under NodeRoot on the node, and every file carries its size, sha256 and mode from the signed
// manifest, so the upload can verify without hashing again.
package payload

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
)

// NodeRoot is where the payload lives on a node.
const NodeRoot = "/opt/wutong"

// File is one payload file.
type File struct {
	Path   string      `json:"path"` // relative to the extracted bundle and to NodeRoot, slash-separated
	Size   int64       `json:"size"`
	SHA256 string      `json:"sha256"`
	Mode   fs.FileMode `json:"mode"`
}

// NoArchError is a node arch the bundle carries nothing for.
type NoArchError struct {
	Arch   string
	Arches []string
}

func (e *NoArchError) Error() string {
	return fmt.Sprintf("the bundle has no payload for %s; it carries %s", e.Arch, strings.Join(e.Arches, ", "))
}

// ForArch lists the files a node of arch gets from the bundle extracted at dir, whose verified manifest is m, in
// manifest order.
func ForArch(dir string, m *bundle.Manifest, arch string) ([]File, error) {
	return forNode(dir, m, arch, false)
}

// ForRegistry is ForArch for a registry host: it gets the whole OCI layout, every arch, since nodes of every arch
// pull from it.
func ForRegistry(dir string, m *bundle.Manifest, arch string) ([]File, error) {
	return forNode(dir, m, arch, true)
}

func forNode(dir string, m *bundle.Manifest, arch string, allImages bool) ([]File, error) {
	if !slices.Contains(m.Arches, arch) {
		return nil, &NoArchError{Arch: arch, Arches: m.Arches}
	}
	want := map[string]bool{}
	for _, e := range m.Entries {
		p := e.Path
		switch {
		case strings.HasPrefix(p, "files/"+arch+"/"), strings.HasPrefix(p, "files/all/"), strings.HasPrefix(p, "manifests/"),
			p == "oci/index.json", p == "oci/oci-layout":
			want[p] = true
		case allImages && strings.HasPrefix(p, "oci/blobs/"):
			want[p] = true
		}
	}
	if want["oci/index.json"] && !allImages {
		blobs, err := images.Layout(filepath.Join(dir, "oci")).ArchBlobs(arch)
		if err != nil {
			return nil, fmt.Errorf("payload for %s: %w", arch, err)
		}
		for _, h := range blobs {
			want["oci/blobs/"+h.Algorithm+"/"+h.Hex] = true
		}
	}
	var out []File
	for _, e := range m.Entries {
		if !want[e.Path] || e.IsSymlink() {
			continue
		}
		delete(want, e.Path)
		out = append(out, File{Path: e.Path, Size: e.Size, SHA256: e.SHA256, Mode: fs.FileMode(e.Mode).Perm()})
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for p := range want {
			missing = append(missing, p)
		}
		slices.Sort(missing)
		return nil, fmt.Errorf("payload for %s: the layout needs %s, which the manifest does not list", arch, strings.Join(missing, ", "))
	}
	return out, nil
}

// Size is the bytes of files.
func Size(files []File) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}
