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
