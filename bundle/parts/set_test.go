package parts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testArchive = "demo-0.1.0.tar.zst"

// fiveParts makes a 5-part set of testArchive in a new dir and returns the
// dir, the part paths and the archive bytes.
func fiveParts(t *testing.T) (string, []string, []byte) {
	t.Helper()
	dir := t.TempDir()
	data := randomBytes(42, 4*testPayload+100)
	paths := makeSet(t, dir, testArchive, data)
	if len(paths) != 5 {
		t.Fatalf("made %d parts, want 5", len(paths))
	}
	return dir, paths, data
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func flipBit(t *testing.T, path string, off int64, bit uint) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1 << bit
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestOpenProblems(t *testing.T) {
	p := func(i int) string { return fmt.Sprintf("%s.part%03d", testArchive, i) }
	tests := []struct {
		name   string
		mutate func(t *testing.T, dir string, paths []string)
		open   int      // part number to open; 0 opens the archive path
		kind   error    // every reported problem's kind
		want   []string // substrings of the error
		nProbs int      // number of problems reported
	}{
		{
			name:   "missing part",
			mutate: func(t *testing.T, dir string, paths []string) { os.Remove(paths[2]) },
			open:   1, kind: ErrMissingPart, nProbs: 1,
			want: []string{"part 3 of 5 is missing: expected " + p(3) + " next to " + p(1), "copy the missing part from the USB stick"},
		},
		{
			name: "two missing parts, opened via archive path",
			mutate: func(t *testing.T, dir string, paths []string) {
				os.Remove(paths[0])
				os.Remove(paths[3])
			},
			open: 0, kind: ErrMissingPart, nProbs: 2,
			want: []string{"part 1 of 5 is missing", "part 4 of 5 is missing: expected " + p(4) + " next to " + p(2)},
		},
		{
			name: "two parts swapped by name",
			mutate: func(t *testing.T, dir string, paths []string) {
				mustRename(t, paths[1], paths[1]+".x")
				mustRename(t, paths[2], paths[1])
				mustRename(t, paths[1]+".x", paths[2])
			},
			open: 1, kind: ErrRenamedPart, nProbs: 2,
			want: []string{p(2) + " holds part 3 of 5; part files were renamed or swapped: rename it to " + p(3),
				p(3) + " holds part 2 of 5"},
		},
		{
			name:   "one part renamed out of range",
			mutate: func(t *testing.T, dir string, paths []string) { mustRename(t, paths[2], filepath.Join(dir, p(9))) },
			open:   5, kind: ErrRenamedPart, nProbs: 1,
			want: []string{p(9) + " holds part 3 of 5; part files were renamed or swapped: rename it to " + p(3)},
		},
		{
			name:   "duplicate of a part under the next name",
			mutate: func(t *testing.T, dir string, paths []string) { copyFile(t, paths[1], paths[2]) },
			open:   1, nProbs: 2,
			want: []string{p(3) + " holds part 2 of 5; it is a copy of " + p(2) + ": remove it", "part 3 of 5 is missing"},
		},
		{
			name: "part from another set",
			mutate: func(t *testing.T, dir string, paths []string) {
				other := makeSet(t, t.TempDir(), testArchive, randomBytes(9, 4*testPayload+100))
				copyFile(t, other[1], paths[1])
			},
			open: 1, kind: ErrForeignPart, nProbs: 1,
			want: []string{"part 2 of 5 (" + p(2) + "): belongs to another split: expected set ", "parts of different bundles or splits are mixed"},
		},
		{
			name: "part of another bundle",
			mutate: func(t *testing.T, dir string, paths []string) {
				other := makeSet(t, t.TempDir(), "other-2.0.tar.zst", randomBytes(9, 4*testPayload+100))
				copyFile(t, other[3], paths[3])
			},
			open: 1, kind: ErrForeignPart, nProbs: 1,
			want: []string{"part 4 of 5 (" + p(4) + "): belongs to another split", "of other-2.0.tar.zst (part 4 of 5)"},
		},
		{
			name:   "truncated part",
			mutate: func(t *testing.T, dir string, paths []string) { os.Truncate(paths[3], 1000) },
			open:   1, kind: ErrSize, nProbs: 1,
			want: []string{"part 4 of 5 (" + p(4) + "): file is truncated: expected 4096 bytes, got 1000 bytes", "copy it again"},
		},
		{
			name:   "part truncated inside its header",
			mutate: func(t *testing.T, dir string, paths []string) { os.Truncate(paths[1], 100) },
			open:   1, kind: ErrBadHeader, nProbs: 1,
			want: []string{"part 2 of 5 (" + p(2) + "): unreadable header: damaged part header: file ends after 100 of 512"},
		},
		{
			name: "bytes appended to a part",
			mutate: func(t *testing.T, dir string, paths []string) {
				f, _ := os.OpenFile(paths[0], os.O_APPEND|os.O_WRONLY, 0)
				f.Write([]byte("x"))
				f.Close()
			},
			open: 2, kind: ErrSize, nProbs: 1,
			want: []string{"part 1 of 5 (" + p(1) + "): file has extra bytes at the end: expected 4096 bytes, got 4097 bytes"},
		},
		{
			name:   "flipped bit in a header's count",
			mutate: func(t *testing.T, dir string, paths []string) { flipHeaderField(t, paths[1], `"count":5`, 8, 0) },
			open:   1, kind: ErrBadHeader, nProbs: 1,
			want: []string{"part 2 of 5 (" + p(2) + "): header disagrees with " + p(1) + ": expected count 5, totalSize 14436, got count 4,"},
		},
		{
			name:   "flipped bit in a header's offset",
			mutate: func(t *testing.T, dir string, paths []string) { flipHeaderField(t, paths[2], `"offset":7168`, 10, 1) },
			open:   1, kind: ErrBadHeader, nProbs: 1,
			want: []string{"part 3 of 5 (" + p(3) + "): payload offset does not follow the previous part: expected 7168, got 7368"},
		},
		{
			name:   "flipped bit in a header's padding",
			mutate: func(t *testing.T, dir string, paths []string) { flipBit(t, paths[4], HeaderSize-5, 3) },
			open:   1, kind: ErrBadHeader, nProbs: 1,
			want: []string{"part 5 of 5 (" + p(5) + "): unreadable header", "invalid JSON"},
		},
		{
			name: "extra part left over from a longer split",
			mutate: func(t *testing.T, dir string, paths []string) {
				other := makeSet(t, t.TempDir(), testArchive, randomBytes(9, 6*testPayload+1))
				copyFile(t, other[5], filepath.Join(dir, p(6)))
				copyFile(t, other[6], filepath.Join(dir, p(7)))
			},
			open: 1, kind: ErrExtraPart, nProbs: 2,
			want: []string{"part 6 (" + p(6) + "): unexpected extra part from another split: expected at most 5 parts (per " + p(1) + "), got part 6; it is left over from another split: remove it",
				"(" + p(7) + ")"},
		},
		{
			name:   "extra copy of the last part",
			mutate: func(t *testing.T, dir string, paths []string) { copyFile(t, paths[4], filepath.Join(dir, p(6))) },
			open:   3, kind: ErrRenamedPart, nProbs: 1,
			want: []string{p(6) + " holds part 5 of 5; it is a copy of " + p(5) + ": remove it"},
		},
		{
			name: "junk file named like an extra part",
			mutate: func(t *testing.T, dir string, paths []string) {
				os.WriteFile(filepath.Join(dir, p(6)), []byte("junk"), 0o644)
			},
			open: 1, kind: ErrExtraPart, nProbs: 1,
			want: []string{"(" + p(6) + "): unexpected extra part with an unreadable header"},
		},
		{
			name: "whole set renamed",
			mutate: func(t *testing.T, dir string, paths []string) {
				for i, path := range paths {
					mustRename(t, path, filepath.Join(dir, fmt.Sprintf("renamed.tar.zst.part%03d", i+1)))
				}
			},
			open: -1, kind: ErrRenamedPart, nProbs: 5,
			want: []string{"renamed.tar.zst.part001 holds part 1 of 5 of archive " + testArchive + "; the part files were renamed: rename them back to " + testArchive + ".partNNN"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, paths, _ := fiveParts(t)
			tt.mutate(t, dir, paths)
			arg := filepath.Join(dir, testArchive)
			switch {
			case tt.open > 0:
				arg = paths[tt.open-1]
			case tt.open < 0:
				arg = filepath.Join(dir, "renamed.tar.zst.part001")
			}
			s, err := Open(arg)
			if err == nil {
				t.Fatalf("Open accepted a broken set: %v", s.Parts())
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
			var probs []error
			if j, ok := errors.Unwrap(err).(interface{ Unwrap() []error }); ok {
				probs = j.Unwrap()
			}
			if len(probs) != tt.nProbs {
				t.Errorf("%d problems reported, want %d:\n%s", len(probs), tt.nProbs, msg)
			}
			for _, pe := range probs {
				var perr *PartError
				if !errors.As(pe, &perr) || perr.Part == "" || perr.Hint == "" {
					t.Errorf("problem %q is not a *PartError naming a file with a hint", pe)
				}
				if tt.kind != nil && !errors.Is(pe, tt.kind) {
					t.Errorf("problem %q is not %v", pe, tt.kind)
				}
			}
		})
	}
}

// flipHeaderField flips bit `bit` of the byte at offset `at` within field in the header of path.
func flipHeaderField(t *testing.T, path, field string, at int, bit uint) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b[:HeaderSize], []byte(field))
	if i < 0 {
		t.Fatalf("%s not in header %q", field, b[:HeaderSize])
	}
	flipBit(t, path, int64(i+at), bit)
}

func TestOpenPaths(t *testing.T) {
	dir, paths, _ := fiveParts(t)
	renamed := filepath.Join(dir, "part-two.bin")
	copyFile(t, paths[1], renamed)
	whole := filepath.Join(t.TempDir(), testArchive)
	copyFile(t, paths[0], whole+".part001")
	if err := os.WriteFile(whole, []byte("a whole archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want string // "" means Open succeeds
		is   error
	}{
		{"first part", paths[0], "", nil},
		{"last part", paths[4], "", nil},
		{"archive path", filepath.Join(dir, testArchive), "", nil},
		{"nothing there", filepath.Join(dir, "absent.tar.zst"), "no absent.tar.zst.partNNN files", fs.ErrNotExist},
		{"absent part name", filepath.Join(dir, "absent.tar.zst.part001"), "no such file", fs.ErrNotExist},
		{"renamed part file", renamed, "part-two.bin holds part 2 of 5 but is not named like a part; rename it to " + testArchive + ".part002", ErrRenamedPart},
		{"existing whole archive", whole, "is not named <archive>.partNNN", ErrNotPart},
		{"directory", dir, "directory", ErrNotPart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := s.Parts(); strings.Join(got, ",") != strings.Join(paths, ",") {
					t.Fatalf("parts %v, want %v", got, paths)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.is) {
				t.Fatalf("Open(%s) = %v; want %v containing %q", tt.path, err, tt.is, tt.want)
			}
		})
	}
}

// TestFlippedPayloadBit checks that Verify, Reader and Join name a part whose
// payload has one flipped bit, and that Reader returns no byte past it.
func TestFlippedPayloadBit(t *testing.T) {
	tests := []struct {
		part int
		off  int64 // offset within the payload
	}{
		{1, 0}, {2, testPayload - 1}, {3, 1000}, {5, 99},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("part%d@%d", tt.part, tt.off), func(t *testing.T) {
			dir, paths, data := fiveParts(t)
			flipBit(t, paths[tt.part-1], HeaderSize+tt.off, 5)
			s, err := Open(paths[0])
			if err != nil {
				t.Fatalf("Open does not hash payloads and should succeed: %v", err)
			}
			wantPrefix := fmt.Sprintf("part %d of 5 (%s): sha256 mismatch: expected %s, got ",
				tt.part, filepath.Base(paths[tt.part-1]), s.Headers()[tt.part-1].SHA256)
			check := func(what string, err error) {
				t.Helper()
				var pe *PartError
				if !errors.As(err, &pe) || pe.Index != tt.part || pe.Count != 5 || pe.Part != paths[tt.part-1] || !errors.Is(err, ErrChecksum) {
					t.Fatalf("%s: got %v, want a checksum PartError for part %d", what, err, tt.part)
				}
				if !strings.Contains(err.Error(), wantPrefix) {
					t.Fatalf("%s: error %q does not contain %q", what, err, wantPrefix)
				}
			}
			check("Verify", s.Verify(context.Background(), nil))

			r := s.Reader()
			got, err := io.ReadAll(r)
			r.Close()
			check("Reader", err)
			start := int64(tt.part-1) * testPayload
			end := min(start+testPayload, int64(len(data)))
			if int64(len(got)) > end {
				t.Fatalf("Reader returned %d bytes, past the end of the corrupt part at %d", len(got), end)
			}
			if !bytes.Equal(got[:start], data[:start]) {
				t.Fatal("Reader returned wrong bytes before the corrupt part")
			}

			out := filepath.Join(t.TempDir(), "joined.tar.zst")
			_, err = Join(context.Background(), paths[0], out)
			check("Join", err)
			if left := listDir(t, filepath.Dir(out)); len(left) != 0 {
				t.Fatalf("failed Join left %v", left)
			}
			_ = dir
		})
	}
}

// TestFlippedHeaderBits flips every bit of a header, one at a time, and
// requires Open or Verify to reject the set each time (in the padding, every
// 8th byte stands for the rest). The one exception is the
// set id of a set with a single part: there is no other part to compare it
// with, and a different random id changes nothing about the data.
func TestFlippedHeaderBits(t *testing.T) {
	tests := []struct {
		name string
		size int
		part int
	}{
		{"middle of five", 4*testPayload + 100, 2},
		{"last of five", 4*testPayload + 100, 5},
		{"only part of an empty archive", 0, 1},
		{"only part", 1000, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			paths := makeSet(t, dir, testArchive, randomBytes(1, tt.size))
			target := paths[tt.part-1]
			hdr, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			padding := int64(bytes.IndexByte(hdr[len(Magic):], '\n') + len(Magic) + 1)
			idStart := int64(len(Magic + `{"setId":"`))
			for off := int64(0); off < HeaderSize; off++ {
				if len(paths) == 1 && off >= idStart && off < idStart+32 {
					continue
				}
				if off > padding && off%8 != 0 && off != HeaderSize-1 {
					continue
				}
				for bit := uint(0); bit < 8; bit++ {
					flipBit(t, target, off, bit)
					s, err := Open(paths[0])
					if err == nil {
						err = s.Verify(context.Background(), nil)
					}
					if err == nil {
						t.Fatalf("flipping bit %d of header byte %d went unnoticed", bit, off)
					}
					if !strings.Contains(err.Error(), filepath.Base(target)) {
						t.Fatalf("flip at %d/%d: error does not name the part: %v", off, bit, err)
					}
					flipBit(t, target, off, bit)
				}
			}
		})
	}
}

func TestReaderNoticesChangesAfterOpen(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, path string)
		kind   error
	}{
		{"truncated", func(t *testing.T, path string) { os.Truncate(path, HeaderSize+10) }, ErrSize},
		{"header changed", func(t *testing.T, path string) { flipHeaderField(t, path, `"sha256":"`, 10, 0) }, ErrBadHeader},
		{"removed", func(t *testing.T, path string) { os.Remove(path) }, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, paths, _ := fiveParts(t)
			s, err := Open(paths[0])
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(t, paths[3])
			r := s.Reader()
			defer r.Close()
			_, err = io.Copy(io.Discard, r)
			var pe *PartError
			if !errors.As(err, &pe) || pe.Index != 4 || !errors.Is(err, tt.kind) {
				t.Fatalf("got %v, want a %v PartError for part 4", err, tt.kind)
			}
		})
	}
}

func TestJoinRefusesOutput(t *testing.T) {
	dir, paths, _ := fiveParts(t)
	link := filepath.Join(t.TempDir(), "link.tar.zst")
	if err := os.Symlink(paths[0], link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  string
		want string
	}{
		{"a part", paths[2], "is one of the part files"},
		{"a part via a symlink", link, "is one of the part files"},
		{"a part name", filepath.Join(t.TempDir(), "x.tar.zst.part001"), "looks like a part file"},
		{"missing dir", filepath.Join(dir, "nope", "x.tar.zst"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Join(context.Background(), paths[0], tt.out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Join to %s: %v; want error containing %q", tt.out, err, tt.want)
			}
			if _, err := Open(paths[0]); err != nil {
				t.Fatalf("parts damaged by refused Join: %v", err)
			}
		})
	}
}

func TestVerifyCancelled(t *testing.T) {
	_, paths, _ := fiveParts(t)
	s, err := Open(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Verify(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with a cancelled context: %v", err)
	}
	out := filepath.Join(t.TempDir(), "x.tar.zst")
	if _, err := Join(ctx, paths[0], out); !errors.Is(err, context.Canceled) {
		t.Fatalf("Join with a cancelled context: %v", err)
	}
	if left := listDir(t, filepath.Dir(out)); len(left) != 0 {
		t.Fatalf("cancelled Join left %v", left)
	}
}
