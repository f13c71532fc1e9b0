// Command benchgen writes a synthetic multi-arch OCI image layout for `make bench`, and a bundle.yaml that lists
// every image of it.
//
// The layer blobs are incompressible bytes from a ChaCha8 stream with a fixed seed, so two runs with the same flags
// write the same layout. About half of the unique layer bytes (-shared) are in layers that more than one image
// manifest uses: half of those are common to every image and arch, the other half are shared by the arches of one
// image. The rest is one set of layers per image and arch.
//
// The layout has, per image, one image index (with the platform of each entry) over one image manifest and one
// config per arch, and an index.json entry annotated with org.opencontainers.image.ref.name=imgNN. Layers use the
// media type application/vnd.oci.image.layer.v1.tar+gzip; their content is opaque to wtctl.
//
// It prints key=value lines on stdout, among them unique_blob_bytes: the sum of the sizes of all distinct blobs
// (layers, configs, manifests, indexes), which is what a deduplicating archive has to carry.
//
//	go run ./scripts/benchgen -out /var/tmp/b/layout -spec /var/tmp/b/bundle.yaml -size 1G -images 8
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	refNameKey    = "org.opencontainers.image.ref.name"
)

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type configFile struct {
	Architecture string         `json:"architecture"`
	OS           string         `json:"os"`
	Created      time.Time      `json:"created"`
	Config       map[string]any `json:"config"`
	RootFS       rootFS         `json:"rootfs"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// layerJob is one random layer blob to write; its digest is filled in by the writer.
type layerJob struct {
	id     uint64 // seeds the blob's own ChaCha8 stream, so the content does not depend on scheduling
	size   int64
	digest string
}

// stats are the printed totals.
type stats struct {
	uniqueBlobBytes   int64
	uniqueLayerBytes  int64
	sharedLayerBytes  int64 // unique bytes of layers used by more than one image manifest
	referencedLayerB  int64 // sum over all image manifests of their layer sizes
	blobs, layers     int
	images, manifests int
}

func main() {
	var (
		out      = flag.String("out", "", "OCI layout directory to create (must not exist, or be empty)")
		spec     = flag.String("spec", "", "also write this bundle.yaml, listing every image with ociLayout/refName")
		sizeStr  = flag.String("size", "1G", "total unique layer bytes, e.g. 1G, 0.1G, 512M (binary units)")
		nImages  = flag.Int("images", 8, "number of images")
		shared   = flag.Float64("shared", 0.5, "fraction of unique layer bytes in layers shared across arches/images")
		maxLayer = flag.String("max-layer", "32M", "largest layer; bigger pools are cut into layers of at most this")
		seed     = flag.Uint64("seed", 1, "PRNG seed")
		archList = flag.String("arches", "amd64,arm64,loong64", "comma-separated arches")
		jobs     = flag.Int("j", runtime.GOMAXPROCS(0), "layers written in parallel")
	)
	flag.Parse()
	if err := run(*out, *spec, *sizeStr, *maxLayer, *nImages, *shared, *seed, strings.Split(*archList, ","), *jobs); err != nil {
		fmt.Fprintln(os.Stderr, "benchgen:", err)
		os.Exit(1)
	}
}

func run(out, spec, sizeStr, maxLayerStr string, nImages int, shared float64, seed uint64, arches []string, jobs int) error {
	if out == "" {
		return errors.New("-out is required")
	}
	total, err := parseSize(sizeStr)
	if err != nil {
		return fmt.Errorf("-size: %w", err)
	}
	maxLayer, err := parseSize(maxLayerStr)
	if err != nil || maxLayer <= 0 {
		return fmt.Errorf("-max-layer: bad size %q", maxLayerStr)
	}
	if nImages < 1 || len(arches) < 1 || shared < 0 || shared > 1 || jobs < 1 {
		return errors.New("need -images >= 1, at least one arch, 0 <= -shared <= 1, -j >= 1")
	}
	if err := createLayout(out); err != nil {
		return err
	}
	start := time.Now()
	g := &gen{dir: out, seed: seed}

	// Pools of layer bytes: common to all images and arches, per image (shared by its arches), per image and arch.
	nA := int64(len(arches))
	commonPool := int64(float64(total) * shared / 2)
	imagePool := (int64(float64(total)*shared) - commonPool) / int64(nImages)
	archPool := (total - commonPool - imagePool*int64(nImages)) / (int64(nImages) * nA)
	common := g.pool(commonPool, maxLayer)
	perImage := make([][]*layerJob, nImages)
	perArch := make([][][]*layerJob, nImages)
	for i := range nImages {
		perImage[i] = g.pool(imagePool, maxLayer)
		perArch[i] = make([][]*layerJob, len(arches))
		for a := range arches {
			perArch[i][a] = g.pool(archPool, maxLayer)
		}
	}
	if err := g.writeLayers(jobs); err != nil {
		return err
	}
	st := &g.st
	for _, j := range g.jobs {
		st.uniqueLayerBytes += j.size
	}
	if nImages*len(arches) > 1 {
		for _, j := range common {
			st.sharedLayerBytes += j.size
		}
	}
	if len(arches) > 1 {
		for i := range perImage {
			for _, j := range perImage[i] {
				st.sharedLayerBytes += j.size
			}
		}
	}

	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var top index
	top.SchemaVersion, top.MediaType = 2, mediaIndex
	var specImages []string
	for i := range nImages {
		ref := fmt.Sprintf("img%02d", i+1)
		var ix index
		ix.SchemaVersion, ix.MediaType = 2, mediaIndex
		for a, arch := range arches {
			layers := append(append(append([]*layerJob{}, common...), perImage[i]...), perArch[i][a]...)
			cf := configFile{Architecture: arch, OS: "linux", Created: created,
				Config: map[string]any{"Labels": map[string]string{"bench.image": ref}}}
			cf.RootFS.Type = "layers"
			m := manifest{SchemaVersion: 2, MediaType: mediaManifest}
			for _, l := range layers {
				// The layers are opaque random bytes; their digests stand in for the diff IDs.
				cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, l.digest)
				m.Layers = append(m.Layers, descriptor{MediaType: mediaLayer, Digest: l.digest, Size: l.size})
				st.referencedLayerB += l.size
			}
			cd, err := g.writeJSON(cf, mediaConfig)
			if err != nil {
				return err
			}
			m.Config = cd
			md, err := g.writeJSON(m, mediaManifest)
			if err != nil {
				return err
			}
			md.Platform = &platform{Architecture: arch, OS: "linux"}
			ix.Manifests = append(ix.Manifests, md)
			st.manifests++
		}
		id, err := g.writeJSON(ix, mediaIndex)
		if err != nil {
			return err
		}
		id.Annotations = map[string]string{refNameKey: ref}
		top.Manifests = append(top.Manifests, id)
		specImages = append(specImages, ref)
		st.images++
	}
	b, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "index.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if spec != "" {
		if err := writeSpec(spec, out, arches, specImages); err != nil {
			return err
		}
	}
	el := time.Since(start)
	fmt.Printf("layout=%s\n", out)
	fmt.Printf("images=%d\nimage_manifests=%d\narches=%s\n", st.images, st.manifests, strings.Join(arches, ","))
	fmt.Printf("blobs=%d\nlayers=%d\n", st.blobs, st.layers)
	fmt.Printf("unique_layer_bytes=%d\nshared_layer_bytes=%d\n", st.uniqueLayerBytes, st.sharedLayerBytes)
	fmt.Printf("shared_fraction=%.3f\n", float64(st.sharedLayerBytes)/float64(max(st.uniqueLayerBytes, 1)))
	fmt.Printf("referenced_layer_bytes=%d\n", st.referencedLayerB)
	fmt.Printf("unique_blob_bytes=%d\n", st.uniqueBlobBytes)
	fmt.Printf("seconds=%.2f\n", el.Seconds())
	return nil
}

type gen struct {
	dir    string
	seed   uint64
	nextID uint64
	jobs   []*layerJob
	mu     sync.Mutex
	st     stats
}

// pool cuts n bytes into layers of at most maxLayer bytes, nearly equal in size.
func (g *gen) pool(n, maxLayer int64) []*layerJob {
	if n <= 0 {
		return nil
	}
	k := (n + maxLayer - 1) / maxLayer
	var out []*layerJob
	for i := range k {
		size := n / k
		if i < n%k {
			size++
		}
		g.nextID++
		j := &layerJob{id: g.nextID, size: size}
		out = append(out, j)
		g.jobs = append(g.jobs, j)
	}
	return out
}

func (g *gen) writeLayers(jobs int) error {
	ch := make(chan *layerJob)
	errc := make(chan error, jobs)
	var wg sync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for j := range ch {
				if err := g.writeLayer(j, buf); err != nil {
					errc <- err
					for range ch {
					}
					return
				}
			}
		}()
	}
	for _, j := range g.jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (g *gen) writeLayer(j *layerJob, buf []byte) error {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[0:], g.seed)
	binary.LittleEndian.PutUint64(s[8:], j.id)
	copy(s[16:], "wutong-benchgen!")
	rng := rand.NewChaCha8(s)
	digest, err := g.writeBlob(func(w io.Writer) error {
		for left := j.size; left > 0; {
			b := buf[:min(int64(len(buf)), left)]
			_, _ = rng.Read(b) // never fails
			if _, err := w.Write(b); err != nil {
				return err
			}
			left -= int64(len(b))
		}
		return nil
	}, j.size)
	if err != nil {
		return err
	}
	j.digest = digest
	g.mu.Lock()
	g.st.layers++
	g.mu.Unlock()
	return nil
}

func (g *gen) writeJSON(v any, mediaType string) (descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, err
	}
	d, err := g.writeBlob(func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}, int64(len(b)))
	if err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, nil
}

// writeBlob writes a blob through fill into a temp file, then renames it to blobs/sha256/<hex>. A blob that is
// already there (same content) is not counted twice.
func (g *gen) writeBlob(fill func(io.Writer) error, size int64) (string, error) {
	dir := filepath.Join(g.dir, "blobs", "sha256")
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	if err := fill(io.MultiWriter(f, h)); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	hx := hex.EncodeToString(h.Sum(nil))
	dst := filepath.Join(dir, hx)
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, err := os.Stat(dst); err == nil {
		return "sha256:" + hx, nil
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return "", err
	}
	g.st.blobs++
	g.st.uniqueBlobBytes += size
	return "sha256:" + hx, nil
}

func createLayout(dir string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s exists and is not empty", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n"), 0o644)
}

func writeSpec(path, layout string, arches, refs []string) error {
	abs, err := filepath.Abs(layout)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# Written by scripts/benchgen for `make bench`.\n")
	b.WriteString("apiVersion: wutong.io/v1alpha1\nkind: BundleSpec\nname: bench\nversion: 1.0.0\n")
	fmt.Fprintf(&b, "arches: [%s]\n", strings.Join(arches, ", "))
	b.WriteString("images:\n")
	for i, ref := range refs {
		fmt.Fprintf(&b, "  - {name: bench.local/img%d:1, ociLayout: %s, refName: %s}\n", i+1, strconv.Quote(abs), ref)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// parseSize reads a byte count with an optional binary unit: 1G, 0.1G, 512M, 64K, 1GiB, 100.
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(f * float64(mult)), nil
}
