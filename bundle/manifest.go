// Package bundle is the Wutong archive format shared by cluster bundles and app packages: a versioned manifest, a
// streaming tar+zstd writer and reader that check every entry against the signed manifest, ed25519 signatures, and
// safe extraction. Splitting into USB-sized parts lives in bundle/parts; building a bundle from bundle.yaml lives in
// bundle/build.
package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"time"
)

// APIVersion is the version of the manifest schema written by this code.
const APIVersion = "wutong.io/v1alpha1"

// Manifest kinds: one archive format, two kinds of content.
const (
	KindBundle = "Bundle"     // a cluster bundle: Kubernetes, runtime, registry, platform and apps
	KindApp    = "AppPackage" // an offline app package
)

// Names of the first two entries of every archive.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
)

// MaxManifestSize bounds the manifest and signature entries, so a hostile archive cannot make a reader allocate
// without limit before anything is verified.
const MaxManifestSize = 64 << 20

// Entry types.
const (
	TypeFile    = "file"
	TypeSymlink = "symlink"
)

// Manifest describes an archive completely: what it is and every payload entry in archive order.
type Manifest struct {
	APIVersion        string    `json:"apiVersion"`
	Kind              string    `json:"kind"`
	Name              string    `json:"name"`
	Version           string    `json:"version"`
	Arches            []string  `json:"arches"`
	KubernetesVersion string    `json:"kubernetesVersion,omitempty"`
	Created           time.Time `json:"created"`
	// Images lists the images in the archive's OCI layout (under oci/), with per-arch manifest digests.
	Images []Image `json:"images,omitempty"`
	// Files lists the carried files (binaries and such), with the arch they belong to.
	Files []File `json:"files,omitempty"`
	// Entries lists every payload entry, in the order it appears in the archive after the manifest and signature.
	Entries []Entry `json:"entries"`
}

// Image is one image of the archive's OCI layout.
type Image struct {
	Name   string            `json:"name"`   // the image's name, e.g. registry.k8s.io/pause:3.10
	Digest string            `json:"digest"` // digest of its (multi-arch) index
	Arches map[string]string `json:"arches"` // arch -> image manifest digest
	Source string            `json:"source,omitempty"`
	Size   int64             `json:"size,omitempty"` // bytes of all its blobs, shared ones counted
}

// File is one carried file.
type File struct {
	Name   string `json:"name"` // logical name, e.g. kubeadm
	Arch   string `json:"arch"` // an arch, or "all"
	Path   string `json:"path"` // entry path in the archive
	Source string `json:"source,omitempty"`
}

// Entry is one payload entry of the archive.
type Entry struct {
	Path   string `json:"path"`
	Type   string `json:"type,omitempty"` // "file" (default) or "symlink"
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	Mode   uint32 `json:"mode"`
	Target string `json:"target,omitempty"` // symlink target, relative and inside the archive
}

// IsSymlink reports whether e is a symbolic link.
func (e *Entry) IsSymlink() bool { return e.Type == TypeSymlink }

// ParseManifest decodes and validates a manifest. Unknown fields are refused so that an edited or newer manifest is
// not silently misread.
func ParseManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("parse manifest: trailing data after the JSON object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Marshal encodes the manifest in its canonical form, the exact bytes that are signed.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidName reports whether s is usable as a bundle or app name: lower-case letters, digits, '.', '_' and '-'.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Validate checks the manifest's own consistency: kind, names, and every entry path safe and unique.
func (m *Manifest) Validate() error {
	if m.APIVersion != APIVersion {
		return fmt.Errorf("manifest apiVersion %q is not supported: this wtctl reads %q; use a matching wtctl", m.APIVersion, APIVersion)
	}
	if m.Kind != KindBundle && m.Kind != KindApp {
		return fmt.Errorf("manifest kind %q is not %q or %q", m.Kind, KindBundle, KindApp)
	}
	if !ValidName(m.Name) {
		return fmt.Errorf("manifest name %q is invalid: use lower-case letters, digits, '.', '_' and '-'", m.Name)
	}
	if m.Version == "" || strings.ContainsAny(m.Version, "/\\ \t\n") {
		return fmt.Errorf("manifest version %q is invalid", m.Version)
	}
	seen := make(map[string]bool, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		where := fmt.Sprintf("manifest entries[%d] (%q)", i, e.Path)
		if err := CheckPath(e.Path); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if e.Path == ManifestName || e.Path == SignatureName {
			return fmt.Errorf("%s: reserved name", where)
		}
		if seen[e.Path] {
			return fmt.Errorf("%s: duplicate path", where)
		}
		seen[e.Path] = true
		if e.Size < 0 {
			return fmt.Errorf("%s: negative size %d", where, e.Size)
		}
		if e.Mode&^0o777 != 0 {
			return fmt.Errorf("%s: mode %o has bits beyond 0777", where, e.Mode)
		}
		switch e.Type {
		case "", TypeFile:
			if !sha256RE.MatchString(e.SHA256) {
				return fmt.Errorf("%s: sha256 %q is not 64 lower-case hex digits", where, e.SHA256)
			}
		case TypeSymlink:
			if e.Size != 0 || e.SHA256 != "" {
				return fmt.Errorf("%s: a symlink has no size or sha256", where)
			}
			if err := CheckLinkTarget(e.Path, e.Target); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		default:
			return fmt.Errorf("%s: unsupported type %q (want %q or %q)", where, e.Type, TypeFile, TypeSymlink)
		}
	}
	return nil
}

// Entry returns the entry with the given path.
func (m *Manifest) Entry(p string) (*Entry, bool) {
	for i := range m.Entries {
		if m.Entries[i].Path == p {
			return &m.Entries[i], true
		}
	}
	return nil, false
}

// PayloadSize is the sum of all entry sizes.
func (m *Manifest) PayloadSize() int64 {
	var n int64
	for _, e := range m.Entries {
		n += e.Size
	}
	return n
}

// CheckPath refuses entry paths that are not clean, relative, slash-separated paths inside the archive root.
func CheckPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("absolute path %q is not allowed", p)
	case strings.ContainsRune(p, '\\'), strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q contains a backslash or NUL", p)
	case p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.."):
		return fmt.Errorf("path %q climbs out with '..'", p)
	case path.Clean(p) != p || p == ".":
		return fmt.Errorf("path %q is not clean (want %q)", p, path.Clean(p))
	}
	return nil
}

// CheckLinkTarget refuses a symlink target that is absolute or resolves outside the archive root.
func CheckLinkTarget(linkPath, target string) error {
	if target == "" {
		return fmt.Errorf("symlink %q has an empty target", linkPath)
	}
	if strings.HasPrefix(target, "/") {
		return fmt.Errorf("symlink %q points to absolute path %q, outside the archive", linkPath, target)
	}
	resolved := path.Join(path.Dir(linkPath), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("symlink %q points to %q, which escapes the archive", linkPath, target)
	}
	return nil
}
