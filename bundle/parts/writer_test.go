package parts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const (
	testPartSize = 4 << 10
	testPayload  = testPartSize - HeaderSize // 3584
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeParts streams data through a Writer in chunks of chunk bytes (0: one Write).
func writeParts(t *testing.T, archive string, data []byte, partSize int64, chunk int) []string {
	t.Helper()
	w, err := NewWriter(archive, partSize)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if chunk <= 0 {
		chunk = len(data) + 1
	}
	for rest := data; len(rest) > 0; {
		n := min(chunk, len(rest))
		if m, err := w.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("Write: %d, %v", m, err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.Parts()
}

// makeSet splits data into parts of testPartSize in dir and returns the part paths.
func makeSet(t *testing.T, dir, name string, data []byte) []string {
	t.Helper()
	return writeParts(t, filepath.Join(dir, name), data, testPartSize, 1000)
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		chunk     int
		wantParts int
	}{
		{"empty archive gives one empty part", 0, 0, 1},
		{"one byte", 1, 0, 1},
		{"payload minus one", testPayload - 1, 0, 1},
		{"exactly one payload", testPayload, 0, 1},
		{"payload plus one", testPayload + 1, 0, 2},
		{"exact multiple, one write", 3 * testPayload, 0, 3},
		{"exact multiple, byte writes", 3 * testPayload, 1, 3},
		{"exact multiple plus one, odd writes", 3*testPayload + 1, 777, 4},
		{"larger, part-sized writes", 100_000, testPayload, 28},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data := randomBytes(uint64(i), tt.size)
			paths := writeParts(t, filepath.Join(dir, "demo-0.1.0.tar.zst"), data, testPartSize, tt.chunk)
			if len(paths) != tt.wantParts {
				t.Fatalf("got %d parts, want %d", len(paths), tt.wantParts)
			}
			if got := len(listDir(t, dir)); got != tt.wantParts {
				t.Fatalf("dir holds %d files, want %d: %v", got, tt.wantParts, listDir(t, dir))
			}
			for i, p := range paths {
				if want := PartName(filepath.Join(dir, "demo-0.1.0.tar.zst"), i+1); p != want {
					t.Errorf("part %d is %s, want %s", i+1, p, want)
				}
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() > testPartSize || (i < len(paths)-1 && st.Size() != testPartSize) {
					t.Errorf("part %d has %d bytes (part size %d)", i+1, st.Size(), testPartSize)
				}
			}
			s, err := Open(paths[len(paths)-1])
			if err != nil {
				t.Fatal(err)
			}
			if s.TotalSize() != int64(len(data)) || s.Archive() != "demo-0.1.0.tar.zst" || len(s.Parts()) != tt.wantParts {
				t.Fatalf("set: total %d archive %q parts %d", s.TotalSize(), s.Archive(), len(s.Parts()))
			}
			// Plain concatenation of the payloads is the archive.
			var cat []byte
			for _, p := range paths {
				b, _ := os.ReadFile(p)
				cat = append(cat, b[HeaderSize:]...)
			}
			if !bytes.Equal(cat, data) {
				t.Fatal("concatenated payloads differ from the archive")
			}
			r := s.Reader()
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Reader: %d bytes, %v; want %d identical bytes", len(got), err, len(data))
			}
			var progressed int64
			if err := s.Verify(context.Background(), func(n int64) { progressed += n }); err != nil {
				t.Fatal(err)
			}
			if progressed != int64(len(data)) {
				t.Fatalf("progress reported %d bytes, want %d", progressed, len(data))
			}
		})
	}
}

func TestSplitJoin(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		outDir bool // split into a separate directory
		out    string
	}{
		{"next to archive, default out", 10_000, false, ""},
		{"separate dir, out is a dir", 5 * testPayload, true, "."},
		{"empty archive, explicit out file", 0, true, "joined.tar.zst"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			archive := filepath.Join(src, "demo-0.1.0.tar.zst")
			data := randomBytes(uint64(100+i), tt.size)
			if err := os.WriteFile(archive, data, 0o644); err != nil {
				t.Fatal(err)
			}
			partDir := src
			if tt.outDir {
				partDir = t.TempDir()
			}
			outArg := ""
			if tt.outDir {
				outArg = partDir
			}
			paths, err := Split(context.Background(), archive, testPartSize, outArg)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Dir(paths[0]) != partDir {
				t.Fatalf("parts written to %s, want %s", filepath.Dir(paths[0]), partDir)
			}
			if !tt.outDir {
				// Joining next to the parts would replace the original; move it away first.
				if err := os.Rename(archive, archive+".orig"); err != nil {
					t.Fatal(err)
				}
			}
			joinDir := t.TempDir()
			out := ""
			if tt.out != "" {
				out = filepath.Join(joinDir, tt.out)
			}
			got, err := Join(context.Background(), paths[len(paths)/2], out)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"": filepath.Join(partDir, "demo-0.1.0.tar.zst"),
				".": filepath.Join(joinDir, "demo-0.1.0.tar.zst"), "joined.tar.zst": filepath.Join(joinDir, "joined.tar.zst")}[tt.out]
			if got != want {
				t.Fatalf("Join wrote %s, want %s", got, want)
			}
			b, err := os.ReadFile(got)
			if err != nil || !bytes.Equal(b, data) {
				t.Fatalf("joined archive differs from the original (%d vs %d bytes, %v)", len(b), len(data), err)
			}
			for _, name := range listDir(t, filepath.Dir(got)) {
				if strings.HasSuffix(name, ".tmp") {
					t.Errorf("temporary file %s left behind", name)
				}
			}
		})
	}
}

func TestWriterAbort(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		close bool // call Close (successfully) before Abort
	}{
		{"nothing written", 0, false},
		{"mid part", 100, false},
		{"several parts", 5*testPayload + 17, false},
		{"abort after close keeps parts", 2 * testPayload, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := NewWriter(filepath.Join(dir, "demo.tar.zst"), testPartSize)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(randomBytes(1, tt.size)); err != nil {
				t.Fatal(err)
			}
			if tt.close {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			w.Abort()
			left := listDir(t, dir)
			if tt.close {
				if len(left) != 2 || len(w.Parts()) != 2 {
					t.Fatalf("Abort after Close changed the parts: %v", left)
				}
				return
			}
			if len(left) != 0 {
				t.Fatalf("Abort left %v", left)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Error("Write after Abort succeeded")
			}
			if err := w.Close(); err == nil {
				t.Error("Close after Abort succeeded")
			}
			if w.Parts() != nil {
				t.Error("Parts after Abort is not nil")
			}
		})
	}
}

func TestWriterRemovesStaleParts(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "demo.tar.zst")
	makeSet(t, dir, "demo.tar.zst", randomBytes(1, 5*testPayload)) // 5 parts
	foreign := filepath.Join(dir, "demo.tar.zst.part007")
	if err := os.WriteFile(foreign, []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(2, 2*testPayload)
	paths := writeParts(t, archive, data, testPartSize, 0) // 2 parts
	if len(paths) != 2 {
		t.Fatalf("got %d parts", len(paths))
	}
	want := []string{"demo.tar.zst.part001", "demo.tar.zst.part002", "demo.tar.zst.part007"}
	if got := listDir(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("dir holds %v, want %v (stale parts removed, non-part file kept)", got, want)
	}
	if err := os.Remove(foreign); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(archive); err != nil {
		t.Fatal(err)
	}
}

func TestWriterWriteErrorNamesPart(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full to simulate a full disk:", err)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "demo.tar.zst")
	// Part 2 "lands on a full disk": its .tmp name is a link to /dev/full.
	if err := os.Symlink("/dev/full", PartName(archive, 2)+".tmp"); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(archive, testPartSize)
	if err == nil {
		_, err = w.Write(randomBytes(3, 2*testPayload))
	}
	if err == nil {
		t.Fatal("writing onto a full disk succeeded")
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "demo.tar.zst.part002.tmp") {
		t.Fatalf("error %q should name the part file and wrap ENOSPC", err)
	}
	if err2 := w.Close(); err2 == nil {
		t.Fatal("Close after a write error succeeded")
	}
	if left := listDir(t, dir); len(left) != 0 {
		t.Fatalf("failed writer left %v", left)
	}
}

func TestWriterTooManyParts(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(filepath.Join(dir, "demo.tar.zst"), HeaderSize+1) // one byte per part
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if w.maxParts != MaxParts {
		t.Fatalf("writer allows %d parts, want %d", w.maxParts, MaxParts)
	}
	w.maxParts = 20 // MaxParts files would make the test slow
	if _, err := w.Write(make([]byte, w.maxParts)); err != nil {
		t.Fatalf("writing %d parts: %v", w.maxParts, err)
	}
	_, err = w.Write([]byte{1})
	if err == nil || !strings.Contains(err.Error(), "more than 20 parts of 513 bytes needed; use a larger part size") {
		t.Fatalf("part %d: got %v, want a too-many-parts error", w.maxParts+1, err)
	}
	w.Abort()
	if left := listDir(t, dir); len(left) != 0 {
		t.Fatalf("Abort left %d files", len(left))
	}
}

func TestNewWriterRejectsPartSize(t *testing.T) {
	for _, size := range []int64{0, HeaderSize, MaxPartSize + 1} {
		if _, err := NewWriter(filepath.Join(t.TempDir(), "a.tar.zst"), size); err == nil {
			t.Errorf("NewWriter accepted part size %d", size)
		}
	}
}

func TestSplitFailures(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "demo.tar.zst")
	if err := os.WriteFile(archive, randomBytes(4, 20_000), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := makeSet(t, t.TempDir(), "other.tar.zst", randomBytes(5, 100))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		archive string
		outDir  string
		want    string
	}{
		{"cancelled", cancelled, archive, "", "context canceled"},
		{"missing archive", context.Background(), archive + ".nope", "", "no such file"},
		{"a part", context.Background(), paths[0], "", "already a part"},
		{"missing out dir", context.Background(), archive, filepath.Join(dir, "nope"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.ctx, tt.archive, testPartSize, tt.outDir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Split = %v, %v; want error containing %q", got, err, tt.want)
			}
			if left := listDir(t, dir); len(left) != 1 {
				t.Fatalf("failed Split left %v", left)
			}
		})
	}
}

func TestWriterCloseFailureRemovesEverything(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "demo.tar.zst")
	// A directory in the way of part 2's final name makes its rename fail
	// after part 1 was already renamed.
	blocker := PartName(archive, 2)
	if err := os.MkdirAll(filepath.Join(blocker, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(archive, testPartSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(6, 3*testPayload)); err != nil {
		t.Fatal(err)
	}
	err = w.Close()
	if err == nil || !strings.Contains(err.Error(), "demo.tar.zst.part002.tmp") {
		t.Fatalf("Close = %v, want a rename error naming part 2", err)
	}
	if got := listDir(t, dir); len(got) != 1 || got[0] != filepath.Base(blocker) {
		t.Fatalf("failed Close left %v, want only the blocking directory", got)
	}
	if w.Parts() != nil {
		t.Fatal("Parts after a failed Close is not nil")
	}
}
