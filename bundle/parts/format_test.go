package parts

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string // substring of the error; "" means no error
	}{
		{in: "123", want: 0, wantErr: "too small"},
		{in: "513", want: 513},
		{in: "4096", want: 4096},
		{in: "4K", want: 4 << 10},
		{in: "4k", want: 4 << 10},
		{in: "4KiB", want: 4 << 10},
		{in: "4KB", want: 4000},
		{in: "3900M", want: 3900 << 20},
		{in: "512MiB", want: 512 << 20},
		{in: "700MB", want: 700_000_000},
		{in: "700mb", want: 700_000_000},
		{in: "1GiB", want: 1 << 30},
		{in: "1G", want: 1 << 30},
		{in: "4GB", want: 4_000_000_000},
		{in: " 2 G ", want: 2 << 30},
		{in: "3.5G", want: 3584 << 20},
		{in: "4G", want: MaxPartSize},   // the FAT32 limit as people say it
		{in: "4GiB", want: MaxPartSize}, // same
		{in: "4096M", want: MaxPartSize},
		{in: "4294967295", want: MaxPartSize},
		{in: "4294967297", wantErr: "FAT32"},
		{in: "5G", wantErr: "FAT32"},
		{in: "1T", wantErr: "FAT32"},
		{in: "99999999999999999999", wantErr: "FAT32"},
		{in: "512", wantErr: "too small"},
		{in: "0", wantErr: "too small"},
		{in: "", wantErr: "want a byte count"},
		{in: "G", wantErr: "want a byte count"},
		{in: "-1G", wantErr: "want a byte count"},
		{in: "4X", wantErr: "want a byte count"},
		{in: "4 GIG", wantErr: "want a byte count"},
		{in: "1e9", wantErr: "want a byte count"},
		{in: "1..5G", wantErr: "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "\""+tt.in+"\"") {
					t.Errorf("error %q does not name the input", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestPartName(t *testing.T) {
	tests := []struct {
		archive string
		index   int
		want    string
	}{
		{"demo-0.1.0.tar.zst", 1, "demo-0.1.0.tar.zst.part001"},
		{"demo-0.1.0.tar.zst", 42, "demo-0.1.0.tar.zst.part042"},
		{"/mnt/usb/demo.tar.zst", 999, "/mnt/usb/demo.tar.zst.part999"},
	}
	for _, tt := range tests {
		got := PartName(tt.archive, tt.index)
		if got != tt.want {
			t.Errorf("PartName(%q, %d) = %q, want %q", tt.archive, tt.index, got, tt.want)
		}
		a, i, ok := parsePartName(filepath.Base(got))
		if !ok || a != filepath.Base(tt.archive) || i != tt.index {
			t.Errorf("parsePartName(%q) = %q, %d, %v", got, a, i, ok)
		}
	}
	for _, bad := range []string{"demo.tar.zst", "demo.part1", "demo.part0001", "demo.part000", "demo.part00x", ".part001", "demo.part001.tmp"} {
		if _, _, ok := parsePartName(bad); ok {
			t.Errorf("parsePartName(%q) accepted a non-part name", bad)
		}
	}
}

func validHeader() Header {
	return Header{SetID: strings.Repeat("ab", 16), Archive: "demo-0.1.0.tar.zst", Index: 2, Count: 3,
		Offset: 3584, Size: 3584, SHA256: strings.Repeat("0f", 32), TotalSize: 9000}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := validHeader()
	b, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != HeaderSize || !bytes.HasPrefix(b, []byte(Magic+"{")) || b[HeaderSize-1] != '\n' {
		t.Fatalf("bad encoding: %q", b)
	}
	got, err := ReadHeader(bytes.NewReader(append(b, "payload"...)))
	if err != nil {
		t.Fatal(err)
	}
	if *got != h {
		t.Fatalf("got %+v, want %+v", *got, h)
	}
}

func TestReadHeaderErrors(t *testing.T) {
	good, err := func() ([]byte, error) { h := validHeader(); return h.Encode() }()
	if err != nil {
		t.Fatal(err)
	}
	withJSON := func(j string) []byte {
		b := bytes.Repeat([]byte{' '}, HeaderSize)
		copy(b, Magic+j)
		return b
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("%q not in header", old)
		}
		b := bytes.Replace(good, []byte(old), []byte(new), 1)
		for len(b) < HeaderSize { // keep the header size; padding may be spaces or newlines
			b = append(b, ' ')
		}
		return b[:HeaderSize]
	}
	tests := []struct {
		name string
		in   []byte
		kind error
		msg  string
	}{
		{"empty", nil, ErrNotPart, "magic"},
		{"other file", []byte("\x28\xb5\x2f\xfd zstd frame"), ErrNotPart, "magic"},
		{"magic only", []byte(Magic), ErrBadHeader, "header bytes"},
		{"short", good[:HeaderSize-1], ErrBadHeader, "511 of 512"},
		{"no json", withJSON(""), ErrBadHeader, "invalid JSON"},
		{"junk after json", replace("}\n ", "}\nx"), ErrBadHeader, "invalid JSON"},
		{"unknown field", withJSON(`{"setId":"` + strings.Repeat("ab", 16) + `","extra":1}`), ErrBadHeader, ""},
		{"extra field", replace(`}`, `,"x":1}`), ErrBadHeader, "canonical"},
		{"uppercase key", replace(`"setId"`, `"setid"`), ErrBadHeader, "canonical"},
		{"uppercase hex", replace(`"abab`, `"ABab`), ErrBadHeader, "setId"},
		{"index 0", replace(`"index":2`, `"index":0`), ErrBadHeader, "index 0"},
		{"index > count", replace(`"index":2`, `"index":4`), ErrBadHeader, "index 4"},
		{"negative size", replace(`"size":3584`, `"size":-3584`), ErrBadHeader, "size"},
		{"offset past end", replace(`"offset":3584`, `"offset":8584`), ErrBadHeader, "offset"},
		{"archive with slash", replace(`"demo-0.1.0`, `"../demo-0.1.0`), ErrBadHeader, "archive"},
		{"short sha", replace(`"0f0f`, `"0f`), ErrBadHeader, "sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ReadHeader(bytes.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ReadHeader accepted %q: %+v", tt.in, h)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %v is not %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestEncodeRejectsLongName(t *testing.T) {
	h := validHeader()
	h.Archive = strings.Repeat("x", 400) + ".tar.zst"
	if _, err := h.Encode(); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("Encode with a 400-byte name: %v", err)
	}
	if _, err := NewWriter(filepath.Join(t.TempDir(), h.Archive), 4096); err == nil {
		t.Fatal("NewWriter accepted an archive name too long for the header")
	}
}

func TestIsPart(t *testing.T) {
	dir := t.TempDir()
	h := validHeader()
	hb, _ := h.Encode()
	files := map[string][]byte{
		"demo.tar.zst":         []byte("not a part"),
		"demo.tar.zst.part001": []byte("named like one"),
		"renamed.bin":          hb,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		want bool
	}{
		{"demo.tar.zst", false},
		{"demo.tar.zst.part001", true},
		{"renamed.bin", true},
		{"absent.tar.zst.part002", true},
		{"absent.tar.zst", false},
	}
	for _, tt := range tests {
		if got := IsPart(filepath.Join(dir, tt.name)); got != tt.want {
			t.Errorf("IsPart(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPartErrorMessages(t *testing.T) {
	tests := []struct {
		err  *PartError
		want string
	}{
		{&PartError{Part: "/u/demo-0.1.0.tar.zst.part002", Index: 2, Count: 5, Kind: ErrChecksum,
			Reason: "sha256 mismatch", Expected: "ab12", Actual: "cd34"},
			"part 2 of 5 (demo-0.1.0.tar.zst.part002): sha256 mismatch: expected ab12, got cd34"},
		{&PartError{Part: "/u/demo-0.1.0.tar.zst.part003", Index: 3, Count: 5, Kind: ErrMissingPart,
			Expected: "demo-0.1.0.tar.zst.part003", Actual: "demo-0.1.0.tar.zst.part001"},
			"part 3 of 5 is missing: expected demo-0.1.0.tar.zst.part003 next to demo-0.1.0.tar.zst.part001"},
		{&PartError{Part: "/u/demo.tar.zst.part002", Index: 3, Count: 5, Kind: ErrRenamedPart, Hint: "rename it"},
			"demo.tar.zst.part002 holds part 3 of 5; rename it"},
		{&PartError{Part: "/u/x.part004", Kind: ErrBadHeader, Reason: "unreadable header", Err: errors.New("boom")},
			"part file x.part004: unreadable header: boom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
		if !errors.Is(tt.err, tt.err.Kind) {
			t.Errorf("%v does not unwrap to its kind", tt.err)
		}
	}
}

func FuzzReadHeader(f *testing.F) {
	h := validHeader()
	good, _ := h.Encode()
	f.Add(good)
	f.Add(good[:100])
	f.Add([]byte(Magic))
	f.Add([]byte(Magic + `{"setId":"x"}`))
	h.Count, h.Index, h.Offset, h.Size, h.TotalSize = 1, 1, 0, 0, 0
	empty, _ := h.Encode()
	f.Add(empty)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ReadHeader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadHeader) && !errors.Is(err, ErrNotPart) {
				t.Fatalf("error of unknown kind: %v", err)
			}
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("accepted an invalid header: %v", err)
		}
		b, err := h.Encode()
		if err != nil {
			t.Fatalf("cannot re-encode accepted header %+v: %v", *h, err)
		}
		h2, err := ReadHeader(bytes.NewReader(b))
		if err != nil || *h2 != *h {
			t.Fatalf("re-encoded header reads back as %+v, %v; want %+v", h2, err, *h)
		}
		// Only padding may differ between the input and the canonical encoding.
		end := len(Magic) + bytes.IndexByte(b[len(Magic):], '\n') // compact JSON has no raw newline
		if !bytes.Equal(b[:end], data[:end]) {
			t.Fatalf("accepted header differs from its canonical form:\n%q\n%q", data[:HeaderSize], b)
		}
	})
}
