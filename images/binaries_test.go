package images

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// fakeELF is a minimal little-endian ELF64 executable header for machine.
func fakeELF(t *testing.T, machine elf.Machine) []byte {
	t.Helper()
	h := elf.Header64{
		Ident:   [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:    uint16(elf.ET_EXEC),
		Machine: uint16(machine),
		Version: uint32(elf.EV_CURRENT),
		Ehsize:  64,
	}
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	b.WriteString("not really code")
	return b.Bytes()
}

// layerFiles reads the single layer of img: tar name -> (mode, content).
func layerFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		t.Fatalf("layers: %d, %v", len(ls), err)
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) && !h.ModTime.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("%s: uid %d gid %d mtime %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		out[h.Name] = fs.FileMode(h.Mode).String() + " " + string(b)
	}
}

func TestResolveBinaries(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range Arches {
		write("dist/wutong-linux-"+a, []byte("fake wutong for "+a))
		write("tool-"+a, []byte("fake tool for "+a))
		write(a+"/agent", []byte("fake agent for "+a))
	}
	write("partial/x-linux-amd64", []byte("amd64 only"))
	write("partial/x-linux-arm64", []byte("arm64 only"))
	write("elf/app-amd64", fakeELF(t, elf.EM_X86_64))
	write("elf/app-arm64", fakeELF(t, elf.EM_X86_64)) // wrong: an amd64 binary
	write("elf/app-loong64", fakeELF(t, elf.EM_LOONGARCH))
	write("plain", []byte("no arch in the name"))
	p := func(s string) string { return filepath.Join(dir, s) }
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	for _, tc := range []struct {
		name       string
		src        BinariesSource
		arches     []string
		target     string
		entrypoint []string
		env        []string
		created    time.Time
		wantErr    []string
	}{
		{name: "defaults", src: BinariesSource{Path: p("dist/wutong-linux-{arch}")}, arches: Arches,
			target: "/usr/local/bin/wutong", entrypoint: []string{"/usr/local/bin/wutong"}, env: []string{defaultPath}, created: time.Unix(0, 0)},
		{name: "arch suffix", src: BinariesSource{Path: p("tool-{arch}"), Env: []string{"A=1"}}, arches: []string{"arm64", "amd64"},
			target: "/usr/local/bin/tool", entrypoint: []string{"/usr/local/bin/tool"}, env: []string{defaultPath, "A=1"}, created: time.Unix(0, 0)},
		{name: "arch dir", src: BinariesSource{Path: p("{arch}/agent")}, arches: []string{"loong64"},
			target: "/usr/local/bin/agent", entrypoint: []string{"/usr/local/bin/agent"}, env: []string{defaultPath}, created: time.Unix(0, 0)},
		{name: "explicit", src: BinariesSource{Path: p("dist/wutong-linux-{arch}"), Target: "/app/wutong", Entrypoint: []string{"/app/wutong", "serve"},
			Env: []string{"PATH=/app"}, Created: created}, arches: []string{"amd64"},
			target: "/app/wutong", entrypoint: []string{"/app/wutong", "serve"}, env: []string{"PATH=/app"}, created: created},
		{name: "matching ELF", src: BinariesSource{Path: p("elf/app-{arch}")}, arches: []string{"amd64", "loong64"},
			target: "/usr/local/bin/app", entrypoint: []string{"/usr/local/bin/app"}, env: []string{defaultPath}, created: time.Unix(0, 0)},
		{name: "wrong ELF machine", src: BinariesSource{Path: p("elf/app-{arch}")}, arches: []string{"amd64", "arm64"},
			wantErr: []string{p("elf/app-arm64"), "EM_X86_64", "not arm64"}},
		{name: "missing arch", src: BinariesSource{Path: p("partial/x-linux-{arch}")}, arches: Arches,
			wantErr: []string{"linux/loong64", "linux/amd64, linux/arm64", p("partial/x-linux-loong64")}},
		{name: "no placeholder", src: BinariesSource{Path: p("plain")}, arches: []string{"amd64", "arm64"}, wantErr: []string{"{arch}"}},
		{name: "relative target", src: BinariesSource{Path: p("plain"), Target: "bin/x"}, arches: []string{"amd64"}, wantErr: []string{"bin/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idx, err := Resolve(t.Context(), Source{Binaries: &tc.src}, tc.arches)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				t.Log(err)
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				var mp *MissingPlatformError
				if errors.As(err, &mp) && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("missing platform error hides its cause: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := archOrder(t, idx); !slices.Equal(got, tc.arches) {
				t.Fatalf("arches = %v, want %v", got, tc.arches)
			}
			checkIndex(t, idx)
			for arch, h := range digestsByArch(t, idx) {
				img, err := idx.Image(h)
				if err != nil {
					t.Fatal(err)
				}
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.OS != "linux" || cf.Architecture != arch || !cf.Created.Time.Equal(tc.created) ||
					!slices.Equal(cf.Config.Entrypoint, tc.entrypoint) || !slices.Equal(cf.Config.Env, tc.env) {
					t.Errorf("%s config: os %s arch %s created %v entrypoint %q env %q", arch, cf.OS, cf.Architecture, cf.Created, cf.Config.Entrypoint, cf.Config.Env)
				}
				want, err := os.ReadFile(strings.ReplaceAll(tc.src.Path, "{arch}", arch))
				if err != nil {
					t.Fatal(err)
				}
				files := layerFiles(t, img)
				if got := files[strings.TrimPrefix(tc.target, "/")]; got != "-rwxr-xr-x "+string(want) {
					t.Errorf("%s: %s holds %q (all: %q)", arch, tc.target, got, files)
				}
				if len(files) != strings.Count(tc.target, "/") {
					t.Errorf("%s: want the file and its parent dirs, got %q", arch, files)
				}
			}
			// Reproducible: the same inputs give the same digest.
			again, err := Resolve(t.Context(), Source{Binaries: &tc.src}, tc.arches)
			if err != nil {
				t.Fatal(err)
			}
			if mustDigest(t, again) != mustDigest(t, idx) {
				t.Error("resolving the same binaries twice gave different digests")
			}
		})
	}
}

// tarOf is a deterministic tar holding files (name -> content), in the order given by names.
func tarOf(t *testing.T, names []string, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o755, Size: int64(len(files[n])), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tarNames lists the entry names of a layer's uncompressed tar.
func tarNames(t *testing.T, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func TestResolveBinariesLayers(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return filepath.Join(dir, s) }
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p(name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Per arch: the binary and a tools layer; shared: a gzip-compressed config layer. arm64 has no tools layer.
	rawTools := map[string][]byte{}
	for _, a := range []string{"amd64", "arm64", "loong64"} {
		write(a+"/bin/app", []byte("app for "+a))
		if a == "arm64" {
			continue
		}
		rawTools[a] = tarOf(t, []string{"usr/sbin/iptables", "usr/sbin/nft"},
			map[string]string{"usr/sbin/iptables": "iptables " + a, "usr/sbin/nft": "nft " + a})
		write(a+"/layers/tools.tar", rawTools[a])
	}
	rawConf := tarOf(t, []string{"etc/app.conf"}, map[string]string{"etc/app.conf": "x=1"})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(rawConf)
	zw.Close()
	write("conf.tar.gz", gz.Bytes())
	zs, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	write("conf.tar.zst", zs.EncodeAll(rawConf, nil))
	zs.Close()
	write("not-a-tar", []byte("hello, I am text and much longer than nothing at all"))
	sha := func(b []byte) v1.Hash {
		h, _, err := v1.SHA256(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	for _, tc := range []struct {
		name    string
		layers  []string
		arches  []string
		want    [][]string // per layer below the binary: its tar names
		wantErr []string
	}{
		{name: "no layers", arches: []string{"amd64"}},
		{name: "tools then conf", layers: []string{p("{arch}/layers/tools.tar"), p("conf.tar.gz")}, arches: []string{"amd64", "loong64"},
			want: [][]string{{"usr/sbin/iptables", "usr/sbin/nft"}, {"etc/app.conf"}}},
		{name: "conf then tools", layers: []string{p("conf.tar.gz"), p("{arch}/layers/tools.tar")}, arches: []string{"loong64"},
			want: [][]string{{"etc/app.conf"}, {"usr/sbin/iptables", "usr/sbin/nft"}}},
		{name: "zstd", layers: []string{p("conf.tar.zst")}, arches: []string{"amd64", "arm64"}, want: [][]string{{"etc/app.conf"}}},
		{name: "missing layer for an arch", layers: []string{p("{arch}/layers/tools.tar")}, arches: []string{"amd64", "arm64"},
			wantErr: []string{p("arm64/layers/tools.tar"), "linux/arm64", "layers[0]", "it has: linux/amd64, linux/loong64"}},
		{name: "not a tar", layers: []string{p("not-a-tar")}, arches: []string{"amd64"}, wantErr: []string{p("not-a-tar"), "not a tar", "linux/amd64"}},
		{name: "empty layer path", layers: []string{""}, arches: []string{"amd64"}, wantErr: []string{"layers[0] is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := Source{Binaries: &BinariesSource{Path: p("{arch}/bin/app"), Layers: tc.layers}}
			idx, err := Resolve(t.Context(), src, tc.arches)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				t.Log(err)
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				var mp *MissingPlatformError
				if errors.As(err, &mp) && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("missing platform error hides its cause: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkIndex(t, idx)
			for arch, h := range digestsByArch(t, idx) {
				img, err := idx.Image(h)
				if err != nil {
					t.Fatal(err)
				}
				ls, err := img.Layers()
				if err != nil {
					t.Fatal(err)
				}
				if len(ls) != len(tc.want)+1 {
					t.Fatalf("%s: %d layers, want %d", arch, len(ls), len(tc.want)+1)
				}
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if len(cf.RootFS.DiffIDs) != len(ls) || len(cf.History) != len(ls) {
					t.Fatalf("%s: %d diff IDs, %d history entries for %d layers", arch, len(cf.RootFS.DiffIDs), len(cf.History), len(ls))
				}
				for i, l := range ls {
					diffID, err := l.DiffID()
					if err != nil {
						t.Fatal(err)
					}
					if diffID != cf.RootFS.DiffIDs[i] {
						t.Errorf("%s layer %d: diff ID %s, config says %s", arch, i, diffID, cf.RootFS.DiffIDs[i])
					}
					wantMT := types.OCILayer
					if i < len(tc.layers) && strings.HasSuffix(tc.layers[i], ".zst") {
						wantMT = types.OCILayerZStd
					}
					if mt, _ := l.MediaType(); mt != wantMT {
						t.Errorf("%s layer %d: media type %s, want %s", arch, i, mt, wantMT)
					}
					if i == len(ls)-1 {
						if got := tarNames(t, l); !slices.Equal(got, []string{"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/app"}) {
							t.Errorf("%s: top layer holds %q, want the binary", arch, got)
						}
						continue
					}
					if got := tarNames(t, l); !slices.Equal(got, tc.want[i]) {
						t.Errorf("%s layer %d holds %q, want %q", arch, i, got, tc.want[i])
					}
					// The diff ID is the sha256 of the tar file as given (uncompressed).
					want := sha(rawConf)
					if tc.want[i][0] != "etc/app.conf" {
						want = sha(rawTools[arch])
					}
					if diffID != want {
						t.Errorf("%s layer %d: diff ID %s, want %s", arch, i, diffID, want)
					}
				}
			}
			// Reproducible: the same inputs give the same digests.
			again, err := Resolve(t.Context(), src, tc.arches)
			if err != nil {
				t.Fatal(err)
			}
			if mustDigest(t, again) != mustDigest(t, idx) {
				t.Error("resolving the same binaries and layers twice gave different digests")
			}
		})
	}
}
