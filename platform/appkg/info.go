package appkg

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/platform/app"
)

// Info describes an app package: what it holds, who signed it, and its digests.
type Info struct {
	// Path is the package file; empty for a package opened from a stream (Open) or written to one (Export).
	Path string `json:"path,omitempty"`
	// Size is the package's size in bytes as stored (compressed); 0 when unknown (Open).
	Size int64 `json:"size,omitempty"`
	// PayloadSize is the sum of the payload entries' sizes, uncompressed.
	PayloadSize int64 `json:"payloadSize"`
	// App is the app model decoded from app.json.
	App *app.App `json:"-"`
	// ContentDigest is app.Digest of app.json: "sha256:<hex>" of the canonical model.
	ContentDigest string `json:"contentDigest"`
	// PackageDigest is "sha256:<hex>" of the exact manifest bytes, which the signature covers and which pin every
	// entry of the package.
	PackageDigest string `json:"packageDigest"`
	// Signer is the fingerprint of the signing key; empty when unsigned.
	Signer string `json:"signer,omitempty"`
	// Trusted is true when the signature was checked with a trusted key. Build and Export leave it false: they know
	// the signer (Signer) but do not judge it.
	Trusted bool `json:"trusted"`
	// TrustProblem says why a package accepted with InsecureSkipVerify is not trusted.
	TrustProblem string `json:"trustProblem,omitempty"`
	// Arches are the package arches: every image holds exactly these.
	Arches []string `json:"arches"`
	// Images lists every image with its index digest and per-arch manifest digests.
	Images []bundle.Image `json:"images"`
	// Created is the build time recorded in the manifest.
	Created time.Time `json:"created"`
}

// Progress is one step's byte counter, as shown by the caller (internal/progress.Bar fits).
type Progress interface {
	Add(n int64)
	Done()
}

type noProgress struct{}

func (noProgress) Add(int64) {}
func (noProgress) Done()     {}

// DefaultArches are the package arches when neither the options nor the app name any: the two arches that nearly
// every upstream image provides. loong64 must be asked for (--arch), since few public images carry it.
var DefaultArches = []string{"amd64", "arm64"}

// newInfo fills the fields every Info shares from a manifest and its app.
func newInfo(m *bundle.Manifest, mb []byte, a *app.App, canonical []byte) Info {
	sum := sha256.Sum256(mb)
	return Info{
		PayloadSize: m.PayloadSize(), App: a, ContentDigest: app.Digest(canonical),
		PackageDigest: "sha256:" + hex.EncodeToString(sum[:]),
		Arches:        m.Arches, Images: m.Images, Created: m.Created,
	}
}

// refuse is the error for a package whose parts disagree: an IntegrityError, so that callers map it like any other
// damaged archive.
func refuse(entry, what, hint string) error {
	return &bundle.IntegrityError{Entry: entry, What: what, Hint: hint}
}

const rebuildHint = "rebuild the package with 'wtctl app package build' (or export it again), which packs exactly the images the app names"

// checkImages compares the images the app model names with the manifest's image list, both ways, and each image's
// arches with those the app needs of it (see imageArches).
func checkImages(a *app.App, m *bundle.Manifest) error {
	names := a.Images()
	listed := map[string]bool{}
	for _, im := range m.Images {
		if listed[im.Name] {
			return refuse(bundle.ManifestName, fmt.Sprintf("image %q is listed twice", im.Name), rebuildHint)
		}
		listed[im.Name] = true
	}
	for _, n := range names {
		if !listed[n] {
			return refuse(AppEntry, fmt.Sprintf("image %q, which the app uses, is missing from the package", n), rebuildHint)
		}
	}
	want, err := imageArches(a, m.Arches)
	if err != nil {
		return refuse(AppEntry, err.Error(), rebuildHint)
	}
	for _, im := range m.Images {
		if !slices.Contains(names, im.Name) {
			return refuse(bundle.ManifestName, fmt.Sprintf("image %q is in the package but the app does not use it", im.Name), rebuildHint)
		}
		have := make([]string, 0, len(im.Arches))
		for _, x := range m.Arches {
			if _, ok := im.Arches[x]; ok {
				have = append(have, x)
			}
		}
		if len(have) != len(im.Arches) || !slices.Equal(have, want[im.Name]) {
			return refuse(bundle.ManifestName, fmt.Sprintf("image %q holds %s, but the app needs it for %s", im.Name, strings.Join(slices.Sorted(maps.Keys(im.Arches)), ", "), strings.Join(want[im.Name], ", ")), rebuildHint)
		}
	}
	return nil
}

// imageArches maps each image the app uses to the package arches it must hold: every package arch, except for an
// image whose components all name their arches, which holds only the package arches among those. An image left
// with no arch is an error.
func imageArches(a *app.App, pkg []string) (map[string][]string, error) {
	need := map[string]map[string]bool{}
	for _, c := range a.Components {
		if need[c.Image] == nil {
			need[c.Image] = map[string]bool{}
		}
		for _, x := range pkg {
			if len(c.Arches) == 0 || slices.Contains(c.Arches, x) {
				need[c.Image][x] = true
			}
		}
	}
	out := map[string][]string{}
	for _, n := range a.Images() {
		var l []string
		for _, x := range pkg {
			if need[n] == nil || need[n][x] {
				l = append(l, x)
			}
		}
		if len(l) == 0 {
			return nil, fmt.Errorf("image %s is used only by components for other arches than the package's (%s); add one of their arches to the package, or drop it from the components", n, strings.Join(pkg, ", "))
		}
		out[n] = l
	}
	return out, nil
}

// checkEntries checks the manifest's shape: kind, entry order and names, blob names equal to their sha256, and every
// image's index and arch manifests present as blobs, for package arches only.
func checkEntries(m *bundle.Manifest) error {
	if m.Kind != bundle.KindApp {
		return &bundle.IntegrityError{Entry: bundle.ManifestName, What: "not an app package", Expected: "kind " + bundle.KindApp,
			Actual: "kind " + m.Kind, Hint: "a cluster bundle is read with 'wtctl bundle', not imported as an app"}
	}
	want := []string{AppEntry, ociLayoutEntry, ociIndexEntry}
	for i, p := range want {
		if i >= len(m.Entries) || m.Entries[i].Path != p {
			got := "nothing"
			if i < len(m.Entries) {
				got = m.Entries[i].Path
			}
			return &bundle.IntegrityError{Entry: p, What: fmt.Sprintf("payload entry %d", i+1), Expected: p, Actual: got,
				Hint: "an app package starts with app.json, oci/oci-layout and oci/index.json; " + rebuildHint}
		}
	}
	limits := map[string]int64{AppEntry: maxAppJSON, ociLayoutEntry: 1 << 10, ociIndexEntry: maxIndexJSON}
	blobs := map[string]int64{}
	for i, e := range m.Entries {
		if e.IsSymlink() {
			return refuse(e.Path, "symlinks are not allowed in an app package", rebuildHint)
		}
		if i < len(want) {
			if e.Size > limits[e.Path] {
				return &bundle.IntegrityError{Entry: e.Path, What: "too large", Expected: fmt.Sprintf("at most %d bytes", limits[e.Path]), Actual: fmt.Sprint(e.Size)}
			}
			continue
		}
		hexd, ok := strings.CutPrefix(e.Path, ociBlobPrefix)
		switch {
		case !ok:
			return refuse(e.Path, "not part of an app package (app.json and oci/ only)", "was it built by a newer wtctl? use a matching wtctl, or "+rebuildHint)
		case hexd != e.SHA256:
			return &bundle.IntegrityError{Entry: e.Path, What: "blob name differs from its sha256", Expected: hexd, Actual: e.SHA256, Hint: rebuildHint}
		}
		blobs[hexd] = e.Size
	}
	for _, im := range m.Images {
		if err := hasBlob(blobs, im.Name, "index", im.Digest); err != nil {
			return err
		}
		if len(im.Arches) == 0 {
			return refuse(bundle.ManifestName, fmt.Sprintf("image %q has no arch", im.Name), rebuildHint)
		}
		for a, d := range im.Arches {
			if !slices.Contains(m.Arches, a) {
				return refuse(bundle.ManifestName, fmt.Sprintf("image %q has a %s manifest, but the package is for %s", im.Name, a, strings.Join(m.Arches, ", ")), rebuildHint)
			}
			if err := hasBlob(blobs, im.Name, a+" manifest", d); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasBlob(blobs map[string]int64, image, what, digest string) error {
	hexd, ok := strings.CutPrefix(digest, "sha256:")
	if _, there := blobs[hexd]; !ok || !there {
		return refuse(ociBlobPrefix+hexd, fmt.Sprintf("the %s %s of image %q is missing from the package", what, digest, image), rebuildHint)
	}
	return nil
}

// archesFor picks and checks the package arches: asked (or the app's, or DefaultArches), each valid and, when the
// app names its arches, one of them.
func archesFor(asked []string, a *app.App) ([]string, error) {
	arches := asked
	if len(arches) == 0 {
		arches = a.Arches
	}
	if len(arches) == 0 {
		arches = DefaultArches
	}
	var out []string
	for _, x := range arches {
		if !images.ValidArch(x) {
			return nil, fmt.Errorf("arch %q is not supported: use %s", x, strings.Join(images.Arches, ", "))
		}
		if len(a.Arches) > 0 && !slices.Contains(a.Arches, x) {
			return nil, fmt.Errorf("arch %s is not one of the app's arches (%s): drop it from --arch, or add it to the app's arches", x, strings.Join(a.Arches, ", "))
		}
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out, nil
}
