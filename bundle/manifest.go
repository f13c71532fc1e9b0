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

// MaxManifestSize and MaxSignatureSize bound the first two entries, which a reader holds in memory before anything
// is verified, so that a server opening many untrusted archives at once needs little memory for each. A manifest
// entry takes about 250 bytes, so 8 MiB lists some 30,000 entries, ten times what a cluster bundle needs; a
// signature entry is a few hundred bytes. Write refuses a manifest that readers would refuse.
const (
	MaxManifestSize  = 8 << 20
	MaxSignatureSize = 4 << 10
)

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
		return nil, fmt.Errorf("parse manifest: %s", clipText(err.Error())) // may quote a field name of any length
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

// Validate checks the manifest's own consistency: kind, names, and every entry path safe and unique. Every symlink
// target must resolve inside the archive in one hop: no entry lies inside a linked directory, and no link points
// at or through another link, wherever that link is listed. Unsafe entries are *UnsafeEntryError.
func (m *Manifest) Validate() error {
	if m.APIVersion != APIVersion {
		return fmt.Errorf("manifest apiVersion %s is not supported: this wtctl reads %q; use a matching wtctl", quoteName(m.APIVersion), APIVersion)
	}
	if m.Kind != KindBundle && m.Kind != KindApp {
		return fmt.Errorf("manifest kind %s is not %q or %q", quoteName(m.Kind), KindBundle, KindApp)
	}
	if !ValidName(m.Name) {
		return fmt.Errorf("manifest name %s is invalid: use lower-case letters, digits, '.', '_' and '-'", quoteName(m.Name))
	}
	if m.Version == "" || strings.ContainsAny(m.Version, "/\\ \t\n") {
		return fmt.Errorf("manifest version %s is invalid", quoteName(m.Version))
	}
	seen := make(map[string]bool, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		where := func() string { return fmt.Sprintf("manifest entries[%d] (%s)", i, quoteName(e.Path)) }
		if why := pathProblem(e.Path); why != "" {
			return fmt.Errorf("manifest entries[%d]: %w", i, &UnsafeEntryError{Entry: e.Path, Reason: "its path " + why})
		}
		if e.Path == ManifestName || e.Path == SignatureName {
			return fmt.Errorf("%s: reserved name", where())
		}
		if seen[e.Path] {
			return fmt.Errorf("%s: duplicate path", where())
		}
		seen[e.Path] = true
		if e.Size < 0 {
			return fmt.Errorf("%s: negative size %d", where(), e.Size)
		}
		if e.Mode&^0o777 != 0 {
			return fmt.Errorf("%s: mode %o has bits beyond 0777", where(), e.Mode)
		}
		switch e.Type {
		case "", TypeFile:
			if !sha256RE.MatchString(e.SHA256) {
				return fmt.Errorf("%s: sha256 %s is not 64 lower-case hex digits", where(), quoteName(e.SHA256))
			}
		case TypeSymlink:
			if e.Size != 0 || e.SHA256 != "" {
				return fmt.Errorf("%s: a symlink has no size or sha256", where())
			}
		default:
			return fmt.Errorf("%s: unsupported type %s (want %q or %q)", where(), quoteName(e.Type), TypeFile, TypeSymlink)
		}
	}
	links := symlinkSet(m)
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := checkNoLinkParent(e.Path, links); err != nil {
			return fmt.Errorf("manifest entries[%d]: %w", i, err)
		}
		if !e.IsSymlink() {
			continue
		}
		if why := linkProblem(e.Path, e.Target, links); why != "" {
			return fmt.Errorf("manifest entries[%d]: %w", i, &UnsafeEntryError{Entry: e.Path, Reason: why})
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

// CheckPath refuses entry paths that are not clean, relative, slash-separated paths inside the archive root, or
// longer than MaxNameLength.
func CheckPath(p string) error {
	if why := pathProblem(p); why != "" {
		return fmt.Errorf("path %s %s", quoteName(p), why)
	}
	return nil
}

// pathProblem says what is wrong with entry path p, without naming it, or returns "".
func pathProblem(p string) string {
	switch {
	case p == "":
		return "is empty"
	case len(p) > MaxNameLength:
		return fmt.Sprintf("is %d bytes, over the %d-byte limit", len(p), MaxNameLength)
	case strings.HasPrefix(p, "/"):
		return "is absolute, which is not allowed"
	case strings.ContainsRune(p, '\\'), strings.ContainsRune(p, 0):
		return "contains a backslash or NUL"
	case p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.."):
		return "climbs out with '..'"
	case path.Clean(p) != p || p == ".":
		return fmt.Sprintf("is not clean (want %s)", quoteName(path.Clean(p)))
	}
	return ""
}
