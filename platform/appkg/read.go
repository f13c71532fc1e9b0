package appkg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/internal/stream"
	"github.com/wutong-paas/wutong-offline/platform/app"
)

// Inspect reads the head of the package at path (a file, or any of its parts): the manifest, the signature and
// app.json, and nothing after them. The signature is judged by ro like every reader does; to show an untrusted
// package instead of refusing it, set ro.InsecureSkipVerify and look at Info.Trusted and Info.TrustProblem.
func Inspect(ctx context.Context, path string, ro bundle.ReadOptions) (*Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	br, src, err := bundle.Open(path, ro)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	info, _, err := readHead(br, ro)
	if err != nil {
		return nil, err
	}
	info.Path, info.Size = src.Path, src.Size
	return &info, nil
}

// Verify reads the whole package at path and checks everything: the signature, every entry against the signed
// manifest, app.json against the manifest, and the OCI layout: it names exactly the app's images, each index holds
// exactly the package arches and every manifest, config and layer they need is in the package. Nothing is written.
func Verify(ctx context.Context, path string, ro bundle.ReadOptions) (*Info, error) {
	br, src, err := bundle.Open(path, ro)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	p, err := openPackage(br, ro)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, stream.DefaultBufSize)
	err = p.rest(ctx, func(_ string, r io.Reader) error {
		_, err := stream.Copy(ctx, io.Discard, r, buf, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	info := p.Info
	info.Path, info.Size = src.Path, src.Size
	return &info, nil
}

// Package is an app package opened from a stream for import: its signature is checked, app.json is read, decoded
// and checked against the manifest, and oci/index.json is read and checked against both. The rest of the stream,
// the blobs, is read by ExtractLayout.
type Package struct {
	// Info describes the package. Path and Size are empty: a stream has neither.
	Info Info

	r      *bundle.Reader
	layout []byte // oci/oci-layout, already read
	index  []byte // oci/index.json, already read
	used   bool
}

// Open reads the head of an app package from r: manifest, signature, app.json and the OCI layout's index.json, and
// refuses it when the signature is not trusted (*bundle.TrustError) or when its parts disagree or are damaged
// (*bundle.IntegrityError naming the entry or image). Close releases it; r itself is not closed.
func Open(ctx context.Context, r io.Reader, ro bundle.ReadOptions) (*Package, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	br, err := bundle.NewReader(r, ro)
	if err != nil {
		return nil, err
	}
	p, err := openPackage(br, ro)
	if err != nil {
		br.Close()
		return nil, err
	}
	return p, nil
}

// Close releases the decoder.
func (p *Package) Close() error {
	return p.r.Close()
}

// ExtractLayout writes the package's OCI image layout (the oci/ entries, without that prefix) into dir while
// checking every entry, then checks the layout itself: each image index holds exactly the package arches and every
// manifest, config and layer is there. It returns nil only after the whole archive verified. dir must not exist or
// be empty; on error it is removed (or emptied, when it existed). It may be called once.
func (p *Package) ExtractLayout(ctx context.Context, dir string) (err error) {
	if p.used {
		return errors.New("extract layout: the package stream was already read")
	}
	p.used = true
	created, err := prepareDir(dir)
	if err != nil {
		return fmt.Errorf("extract layout: %w", err)
	}
	defer func() {
		if err != nil {
			cleanDir(dir, created)
		}
	}()
	var need int64
	for _, e := range p.r.Manifest.Entries {
		if strings.HasPrefix(e.Path, OCIPrefix) {
			need += e.Size
		}
	}
	if err := bundle.CheckFreeSpace(dir, need); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("extract layout: %w", err)
	}
	defer root.Close()
	if err := root.MkdirAll("blobs/sha256", 0o755); err != nil {
		return fmt.Errorf("extract layout: %w", err)
	}
	buf := make([]byte, stream.DefaultBufSize)
	write := func(rel string, r io.Reader) error {
		f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("extract layout: %w", err)
		}
		_, err = stream.Copy(ctx, f, r, buf, nil)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("extract layout: %w", cerr)
		}
		return err
	}
	if err := write("oci-layout", bytes.NewReader(p.layout)); err != nil {
		return err
	}
	if err := write("index.json", bytes.NewReader(p.index)); err != nil {
		return err
	}
	return p.rest(ctx, write)
}

// prepareDir makes sure dir exists and is empty, and says whether it created it.
func prepareDir(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, os.MkdirAll(dir, 0o755)
	case err != nil:
		return false, err
	case len(ents) > 0:
		return false, fmt.Errorf("%s is not empty; extract into a new or empty directory", dir)
	}
	return false, nil
}

func cleanDir(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// openPackage reads and checks everything up to and including oci/index.json.
func openPackage(br *bundle.Reader, ro bundle.ReadOptions) (*Package, error) {
	info, _, err := readHead(br, ro)
	if err != nil {
		return nil, err
	}
	p := &Package{Info: info, r: br}
	if p.layout, err = readSmall(br, ociLayoutEntry); err != nil {
		return nil, err
	}
	var ol struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(p.layout, &ol); err != nil || ol.Version == "" {
		return nil, refuse(ociLayoutEntry, "not an OCI image layout marker", rebuildHint)
	}
	if p.index, err = readSmall(br, ociIndexEntry); err != nil {
		return nil, err
	}
	if err := checkIndexJSON(p.index, br.Manifest); err != nil {
		return nil, err
	}
	return p, nil
}

// readHead reads app.json, the first payload entry, and checks it and the manifest against each other.
func readHead(br *bundle.Reader, ro bundle.ReadOptions) (Info, *app.App, error) {
	m := br.Manifest
	if err := checkEntries(m); err != nil {
		return Info{}, nil, err
	}
	data, err := readSmall(br, AppEntry)
	if err != nil {
		return Info{}, nil, err
	}
	a, err := app.Decode(data)
	if err != nil {
		return Info{}, nil, &bundle.IntegrityError{Entry: AppEntry, What: "invalid app model", Actual: err.Error(), Hint: rebuildHint}
	}
	if c, err := a.Canonical(); err != nil || !bytes.Equal(c, data) {
		return Info{}, nil, refuse(AppEntry, "not in canonical form, so its content digest is not stable", rebuildHint)
	}
	if a.Key != m.Name || a.Version != m.Version {
		return Info{}, nil, &bundle.IntegrityError{Entry: AppEntry, What: "app differs from the manifest",
			Expected: m.Name + " " + m.Version, Actual: a.Key + " " + a.Version, Hint: rebuildHint}
	}
	for _, x := range m.Arches {
		if len(a.Arches) > 0 && !slices.Contains(a.Arches, x) {
			return Info{}, nil, refuse(AppEntry, fmt.Sprintf("the package is for %s, which is not one of the app's arches (%s)", x, strings.Join(a.Arches, ", ")), rebuildHint)
		}
	}
	if err := checkImages(a, m); err != nil {
		return Info{}, nil, err
	}
	info := newInfo(m, br.ManifestBytes, a, data)
	info.Signer, info.Trusted = br.SignerKeyID, br.Trusted
	if !info.Trusted {
		info.TrustProblem = trustProblem(br, ro)
	}
	return info, a, nil
}

// trustProblem says why an archive accepted with InsecureSkipVerify is not trusted.
func trustProblem(br *bundle.Reader, ro bundle.ReadOptions) string {
	keys := ro.Keys
	if len(keys) == 0 {
		dir := ro.TrustDir
		if dir == "" {
			dir = bundle.DefaultTrustDir
		}
		keys, _ = bundle.LoadTrustDir(dir)
	}
	if _, _, err := bundle.CheckSignature(br.ManifestBytes, br.Signature, keys, false); err != nil {
		return err.Error()
	}
	return ""
}

// readSmall reads the next entry, which must be want, into memory (its size was bounded by checkEntries).
func readSmall(br *bundle.Reader, want string) ([]byte, error) {
	e, r, err := br.Next()
	if errors.Is(err, io.EOF) {
		return nil, &bundle.IntegrityError{Entry: want, What: "missing"}
	}
	if err != nil {
		return nil, err
	}
	if e.Path != want {
		return nil, &bundle.IntegrityError{Entry: want, What: "order", Expected: want, Actual: e.Path}
	}
	return io.ReadAll(r)
}

// checkIndexJSON checks that the layout's index.json names exactly the manifest's images, each with its index digest.
func checkIndexJSON(data []byte, m *bundle.Manifest) error {
	im, err := v1.ParseIndexManifest(bytes.NewReader(data))
	if err != nil {
		return &bundle.IntegrityError{Entry: ociIndexEntry, What: "unreadable", Actual: err.Error(), Hint: rebuildHint}
	}
	seen := map[string]bool{}
	for _, d := range im.Manifests {
		n := d.Annotations[images.AnnotationRefName]
		i := slices.IndexFunc(m.Images, func(x bundle.Image) bool { return x.Name == n })
		switch {
		case n == "":
			return refuse(ociIndexEntry, fmt.Sprintf("entry %s has no %s annotation", d.Digest, images.AnnotationRefName), rebuildHint)
		case seen[n]:
			return refuse(ociIndexEntry, fmt.Sprintf("image %q is named twice", n), rebuildHint)
		case i < 0:
			return refuse(ociIndexEntry, fmt.Sprintf("image %q is in the layout but not in the manifest's image list", n), rebuildHint)
		case m.Images[i].Digest != d.Digest.String():
			return &bundle.IntegrityError{Entry: ociIndexEntry, What: fmt.Sprintf("digest of image %q", n), Expected: m.Images[i].Digest, Actual: d.Digest.String(), Hint: rebuildHint}
		case !d.MediaType.IsIndex():
			return refuse(ociIndexEntry, fmt.Sprintf("image %q is a %s, not a multi-arch index", n, d.MediaType), rebuildHint)
		}
		if e, ok := m.Entry(ociBlobPrefix + d.Digest.Hex); !ok || e.Size != d.Size {
			return refuse(ociIndexEntry, fmt.Sprintf("image %q: its index %s is not in the package with size %d", n, d.Digest, d.Size), rebuildHint)
		}
		seen[n] = true
	}
	for _, x := range m.Images {
		if !seen[x.Name] {
			return refuse(ociIndexEntry, fmt.Sprintf("image %q, which the app uses, is missing from the OCI layout", x.Name), rebuildHint)
		}
	}
	return nil
}

// rest reads every entry after oci/index.json, handing each blob to write as blobs/sha256/<hex>, and then checks
// the layout's graph with the image indexes and manifests it kept.
func (p *Package) rest(ctx context.Context, write func(rel string, r io.Reader) error) error {
	g := newGraph(p.r.Manifest)
	if err := g.tooLarge(); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, r, err := p.r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(e.Path, OCIPrefix)
		if path.Dir(rel) != "blobs/sha256" {
			return refuse(e.Path, "unexpected entry", rebuildHint) // checkEntries allows only blobs here
		}
		if g.keep[e.SHA256] {
			data, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			g.kept[e.SHA256] = data
			r = bytes.NewReader(data)
		}
		if err := write(rel, r); err != nil {
			return err
		}
	}
	return g.check()
}
