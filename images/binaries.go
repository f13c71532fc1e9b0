package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// BinariesSource builds a multi-arch image from per-arch Go binaries, the
// way ko does: one layer holding the binary on an empty base.
type BinariesSource struct {
	// Path is the binary's path; "{arch}" in it is replaced by each arch.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Target is the binary's path inside the image. The default is
	// /usr/local/bin/ plus the base name of Path without a "-linux-<arch>"
	// or "-<arch>" suffix.
	Target string `yaml:"target,omitempty" json:"target,omitempty"`
	// Entrypoint defaults to []string{Target}.
	Entrypoint []string `yaml:"entrypoint,omitempty" json:"entrypoint,omitempty"`
	// Env is the config's environment; a standard PATH is added unless
	// Env sets one.
	Env []string `yaml:"env,omitempty" json:"env,omitempty"`
	// Created is the config's creation time and the files' mtime; the zero
	// value means the Unix epoch, so builds are reproducible.
	Created time.Time `yaml:"created,omitempty" json:"created,omitempty"`
	// Layers are tar files (plain, gzip or zstd; "{arch}" in a path is
	// replaced by each arch) added below the binary's layer, the first one
	// lowest, e.g. the userland tools the binary execs. A path without
	// "{arch}" is shared by every arch. Each file is used as it is: make it
	// reproducible (sorted names, fixed mtimes, numeric owners) for
	// reproducible digests.
	Layers []string `yaml:"layers,omitempty" json:"layers,omitempty"`
}

const (
	archPlaceholder = "{arch}"
	defaultPath     = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// elfMachines maps our arches to the ELF machine a binary for them has.
var elfMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"loong64": elf.EM_LOONGARCH,
}

func resolveBinaries(src Source, arches []string) (v1.ImageIndex, error) {
	b := src.Binaries
	if b.Path == "" {
		return nil, errors.New("binaries source has no path")
	}
	if !strings.Contains(b.Path, archPlaceholder) && len(arches) > 1 {
		return nil, fmt.Errorf("binaries path %q has no %s placeholder but %d arches are asked for", b.Path, archPlaceholder, len(arches))
	}
	for i, l := range b.Layers {
		if l == "" {
			return nil, fmt.Errorf("binaries layers[%d] is empty", i)
		}
	}
	// A missing binary or layer file is a missing platform; say which ones
	// have all their files.
	for _, arch := range arches {
		if err := b.missing(arch); err != nil {
			var have []string
			for _, a := range Arches {
				if b.missing(a) == nil {
					have = append(have, "linux/"+a)
				}
			}
			return nil, &MissingPlatformError{Image: src.String(), Arch: arch, Available: have, Err: err}
		}
	}

	created := b.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	out := &resolvedIndex{mediaType: types.OCIImageIndex}
	for _, arch := range arches {
		file := strings.ReplaceAll(b.Path, archPlaceholder, arch)
		target := b.Target
		if target == "" {
			target = defaultTarget(file, arch)
			if first := defaultTarget(strings.ReplaceAll(b.Path, archPlaceholder, arches[0]), arches[0]); target != first {
				return nil, fmt.Errorf("binaries path %q gives a different file name per arch (%s, %s): set target", b.Path, first, target)
			}
		}
		if !path.IsAbs(target) {
			return nil, fmt.Errorf("target %q is not an absolute path", target)
		}
		target = path.Clean(target)
		if err := checkBinary(file, arch); err != nil {
			return nil, err
		}
		img, err := binaryImage(b, arch, file, target, created)
		if err != nil {
			return nil, err
		}
		p, _ := Platform(arch)
		out.entries = append(out.entries, entry{desc: v1.Descriptor{Platform: &p}, img: img})
	}
	return out, nil
}

// missing returns an error wrapping fs.ErrNotExist, naming the file and the
// arch, when the binary or a layer file for arch does not exist.
func (b *BinariesSource) missing(arch string) error {
	file := strings.ReplaceAll(b.Path, archPlaceholder, arch)
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i, l := range b.Layers {
		file := strings.ReplaceAll(l, archPlaceholder, arch)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("layers[%d] for linux/%s: %w", i, arch, err)
		}
	}
	return nil
}

// defaultTarget is /usr/local/bin/<base name of file without an arch suffix>.
func defaultTarget(file, arch string) string {
	base := filepath.Base(file)
	for _, suffix := range []string{"-linux-" + arch, "-" + arch} {
		if s, ok := strings.CutSuffix(base, suffix); ok && s != "" {
			base = s
			break
		}
	}
	return "/usr/local/bin/" + base
}

// checkBinary makes sure file is a regular file and, if it is an ELF
// binary, that it was built for arch.
func checkBinary(file, arch string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("binary %s is not a regular file", file)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	magic := make([]byte, len(elf.ELFMAG))
	if _, err := io.ReadFull(f, magic); err != nil || !bytes.Equal(magic, []byte(elf.ELFMAG)) {
		return nil // not ELF (a script, say): nothing to check
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("read ELF header of %s: %w", file, err)
	}
	if ef.Machine != elfMachines[arch] {
		return fmt.Errorf("binary %s is built for %s, not %s (%s)", file, ef.Machine, arch, elfMachines[arch])
	}
	return nil
}

func binaryImage(b *BinariesSource, arch, file, target string, created time.Time) (v1.Image, error) {
	env := slices.Clone(b.Env)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		env = append([]string{defaultPath}, env...)
	}
	entrypoint := b.Entrypoint
	if len(entrypoint) == 0 {
		entrypoint = []string{target}
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Created:      v1.Time{Time: created},
		OS:           "linux",
		Architecture: arch,
		Config:       v1.Config{Entrypoint: entrypoint, Env: env},
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	for i, l := range b.Layers {
		lfile := strings.ReplaceAll(l, archPlaceholder, arch)
		layer, err := tarLayer(lfile)
		if err != nil {
			return nil, fmt.Errorf("layers[%d] for linux/%s: %w", i, arch, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer: layer,
			History: v1.History{
				Created:   v1.Time{Time: created},
				CreatedBy: "wutong-offline: ADD " + filepath.Base(lfile) + " /",
			},
		})
		if err != nil {
			return nil, err
		}
	}
	return mutate.Append(img, mutate.Addendum{
		Layer: &binaryLayer{file: file, target: target, mtime: created},
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "wutong-offline: COPY " + filepath.Base(file) + " " + target,
		},
	})
}

// tarLayer is a layer read from a tar file, streamed each time it is read.
// A plain tar is gzip-compressed (deterministically, so digests are
// reproducible); a gzip or zstd tar is used as it is.
func tarLayer(file string) (v1.Layer, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("layer %s is not a regular file", file)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	magic := make([]byte, 4)
	_, err = io.ReadFull(f, magic)
	f.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read layer %s: %w", file, err)
	}
	mt := types.OCILayer
	if bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		mt = types.OCILayerZStd
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return os.Open(file) },
		tarball.WithMediaType(mt), tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, fmt.Errorf("read layer %s: %w", file, err)
	}
	// Make sure it is a tar stream, not some other file given by mistake.
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("read layer %s: %w", file, err)
	}
	defer rc.Close()
	if _, err := tar.NewReader(rc).Next(); err != nil && err != io.EOF {
		return nil, fmt.Errorf("layer %s is not a tar file: %w", file, err)
	}
	return l, nil
}

// binaryLayer is a gzip-compressed layer holding one binary. It is
// generated from the file whenever read; digests are computed in one pass,
// the first time they are needed.
type binaryLayer struct {
	file, target string
	mtime        time.Time

	once           sync.Once
	digest, diffID v1.Hash
	size           int64
	err            error
}

var _ v1.Layer = (*binaryLayer)(nil)

func (l *binaryLayer) compute() error {
	l.once.Do(func() {
		diff, comp := sha256.New(), sha256.New()
		cw := &countWriter{w: comp}
		zw, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
		if err != nil {
			l.err = err
			return
		}
		if err := l.writeTar(io.MultiWriter(diff, zw)); err != nil {
			l.err = err
			return
		}
		if err := zw.Close(); err != nil {
			l.err = err
			return
		}
		l.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.Sum(nil))}
		l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(comp.Sum(nil))}
		l.size = cw.n
	})
	return l.err
}

func (l *binaryLayer) Digest() (v1.Hash, error) { return l.digest, l.compute() }

func (l *binaryLayer) DiffID() (v1.Hash, error) { return l.diffID, l.compute() }

func (l *binaryLayer) Size() (int64, error) { return l.size, l.compute() }

func (l *binaryLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

func (l *binaryLayer) Uncompressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(l.writeTar(pw)) }()
	return pr, nil
}

func (l *binaryLayer) Compressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		zw, err := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		if err == nil {
			err = l.writeTar(zw)
		}
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// writeTar writes the layer's tar stream: the target's parent directories
// and the binary, owned by root, with a fixed mtime.
func (l *binaryLayer) writeTar(w io.Writer) error {
	f, err := os.Open(l.file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	name := strings.TrimPrefix(l.target, "/")
	var dirs []string
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		dirs = append([]string{d + "/"}, dirs...)
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: l.mtime}); err != nil {
			return err
		}
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: fi.Size(), ModTime: l.mtime}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return fmt.Errorf("read binary %s: %w", l.file, err)
	}
	return tw.Close()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
