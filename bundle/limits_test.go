package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// zstdFrame is a hand-made zstd frame: a header declaring a window of 1<<windowLog bytes and no content size, then
// blocks, none of them last, so the stream ends early.
func zstdFrame(windowLog int, blocks ...[]byte) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte((windowLog - 10) << 3)}
	for _, blk := range blocks {
		b = append(b, blk...)
	}
	return b
}

const maxBlock = 128 << 10

func blockHeader(typ, size int) []byte {
	h := uint32(size)<<3 | uint32(typ)<<1
	return []byte{byte(h), byte(h >> 8), byte(h >> 16)}
}

// rawBlocks stores data as raw blocks.
func rawBlocks(data []byte) []byte {
	var b []byte
	for len(data) > 0 {
		n := min(len(data), maxBlock)
		b = append(append(b, blockHeader(0, n)...), data[:n]...)
		data = data[n:]
	}
	return b
}

// zeroBlocks is n zero bytes as run-length blocks: 4 bytes of input per 128 KiB of output.
func zeroBlocks(n int) []byte {
	var b []byte
	for n > 0 {
		k := min(n, maxBlock)
		b = append(append(b, blockHeader(1, k)...), 0)
		n -= k
	}
	return b
}

// tarHeader is the 512-byte header of a regular file entry of the given size.
func tarHeader(name string, size int64) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
	tw.Flush()
	return buf.Bytes()
}

// TestReaderMemoryPerReader opens several readers on hostile inputs of a few KiB and measures the heap each one
// allocates (TotalAlloc, which also catches what was freed again) and holds while open (HeapAlloc after GC).
func TestReaderMemoryPerReader(t *testing.T) {
	const readers = 10
	key := newKey(t)
	trusted := ReadOptions{Keys: []ed25519.PublicKey{pub(key)}}
	insecure := ReadOptions{InsecureSkipVerify: true}
	unsigned := build(t, nil, []content{{path: "a", data: []byte("alpha")}})
	genuine := build(t, key, []content{{path: "big", data: randBytes(frameSize + 1<<20)}})
	manifest60 := zstdFrame(17, rawBlocks(tarHeader(ManifestName, 60<<20)), zeroBlocks(60<<20)) // a 128 KiB window
	budget := zstdFrame(23, rawBlocks(tarHeader(ManifestName, MaxManifestSize)), zeroBlocks(MaxManifestSize))
	asBuffer := func(b []byte) func() io.Reader { return func() io.Reader { return bytes.NewBuffer(b) } }
	asReader := func(b []byte) func() io.Reader { return func() io.Reader { return bytes.NewReader(b) } }
	// The decompressed unsigned archive behind a frame header declaring a 128 MiB window.
	plain, err := io.ReadAll(must(zstd.NewReader(bytes.NewReader(unsigned))))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		input     func() io.Reader
		opts      ReadOptions
		wantErr   string // "" when the reader opens and is kept open
		perReader uint64 // bytes each reader may allocate, and hold
	}{
		{"frame declares a 128 MiB window", asReader(zstdFrame(27, rawBlocks(plain))), insecure, "window", 1 << 20},
		{"manifest entry declares 60 MiB", asReader(manifest60), trusted, "limit", 1 << 20},
		{"manifest entry declares 60 MiB, input in a bytes.Buffer", asBuffer(manifest60), trusted, "limit", 1 << 20},
		{"largest accepted window and manifest (the budget)", asReader(budget), trusted, "truncated", maxDecoderWindow + MaxManifestSize + 1<<20},
		{"real archive kept open", asReader(genuine), trusted, "", frameSize + 1<<20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var open []*Reader
			var errs []error
			for i := 0; i < readers; i++ {
				r, err := NewReader(tc.input(), tc.opts)
				if err == nil {
					open = append(open, r)
				}
				errs = append(errs, err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			allocated := (after.TotalAlloc - before.TotalAlloc) / readers
			held := uint64(max(int64(after.HeapAlloc)-int64(before.HeapAlloc), 0)) / readers
			t.Logf("per reader: %.2f MiB allocated, %.2f MiB held", float64(allocated)/(1<<20), float64(held)/(1<<20))
			if allocated > tc.perReader || held > tc.perReader {
				t.Errorf("per reader: %d bytes allocated and %d held; want at most %d", allocated, held, tc.perReader)
			}
			switch err := errs[0]; { // every reader read the same input
			case tc.wantErr == "" && err != nil:
				t.Errorf("NewReader: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("NewReader accepted a hostile input; want an error mentioning %q", tc.wantErr)
			case err != nil && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
			for _, r := range open {
				r.Close()
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestDecoderWindowFitsWriters checks the reader's window limit against what writes archives: Write's frames fit a
// decoder limited to frameSize, a default zstd stream (8 MiB window, as tests and other tools write) is read, and a
// stream that needs a larger window is refused with a message that says so.
func TestDecoderWindowFitsWriters(t *testing.T) {
	key := newKey(t)
	trusted := ReadOptions{Keys: []ed25519.PublicKey{pub(key)}}
	cs := []content{{path: "big", data: append(randBytes(2*frameSize), bytes.Repeat([]byte("wutong "), frameSize/7)...)}, {path: "small", data: []byte("s")}}
	archive := build(t, key, cs)
	zr, err := zstd.NewReader(bytes.NewReader(archive), zstd.WithDecoderMaxWindow(frameSize), zstd.WithDecoderMaxMemory(frameSize))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Fatalf("Write's frames need a window over %d bytes: %v", frameSize, err)
	}
	zr.Close()
	if frameSize > maxDecoderWindow {
		t.Fatalf("frameSize %d is over the reader's window limit %d", frameSize, maxDecoderWindow)
	}
	r, err := NewReader(bytes.NewReader(archive), trusted)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(context.Background()); err != nil {
		t.Fatalf("an archive of several frames: %v", err)
	}
	r.Close()

	plain, err := io.ReadAll(must(zstd.NewReader(bytes.NewReader(archive))))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		window int
		ok     bool
	}{{8 << 20, true}, {16 << 20, false}} {
		var buf bytes.Buffer
		zw := must(zstd.NewWriter(&buf, zstd.WithWindowSize(tc.window)))
		zw.Write(plain)
		zw.Close()
		r, err := NewReader(&buf, trusted)
		if err == nil {
			err = r.Verify(context.Background())
			r.Close()
		}
		var ie *IntegrityError
		switch {
		case tc.ok && err != nil:
			t.Errorf("window %d MiB: %v", tc.window>>20, err)
		case !tc.ok && err == nil:
			t.Errorf("window %d MiB: accepted, want a refusal", tc.window>>20)
		case !tc.ok && (!errors.As(err, &ie) || !strings.Contains(err.Error(), "window larger than 8 MiB")):
			t.Errorf("window %d MiB: error %T %q does not say the window is too large", tc.window>>20, err, err)
		}
	}
}

func TestSmallEntryLimits(t *testing.T) {
	key := newKey(t)
	m := testManifest()
	m.APIVersion = APIVersion
	mb, _ := m.Marshal()
	for _, k := range []ed25519.PrivateKey{key, nil} {
		sig, err := Sign(mb, k)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig)*8 > MaxSignatureSize {
			t.Fatalf("a real signature entry is %d bytes; MaxSignatureSize %d leaves too little room", len(sig), MaxSignatureSize)
		}
	}
	bigSig := []byte(fmt.Sprintf(`{"algorithm":"none","unsigned":true,"description":%q}`, strings.Repeat("x", MaxSignatureSize)))
	archive := func(entries ...[2][]byte) []byte {
		var buf bytes.Buffer
		zw := must(zstd.NewWriter(&buf))
		tw := tar.NewWriter(zw)
		for _, e := range entries {
			reg(tw, string(e[0]), e[1])
		}
		tw.Close()
		zw.Close()
		return buf.Bytes()
	}
	cases := []struct {
		name  string
		input []byte
		want  string
	}{
		{"signature over the limit", archive([2][]byte{[]byte(ManifestName), mb}, [2][]byte{[]byte(SignatureName), bigSig}),
			fmt.Sprintf("%d bytes, over the %d-byte limit", len(bigSig), MaxSignatureSize)},
		{"manifest over the limit", archive([2][]byte{[]byte(ManifestName), make([]byte, MaxManifestSize+1)}),
			fmt.Sprintf("%d bytes, over the %d-byte limit", MaxManifestSize+1, MaxManifestSize)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tc.input), ReadOptions{InsecureSkipVerify: true})
			if err == nil {
				r.Close()
				t.Fatal("accepted")
			}
			var ie *IntegrityError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %T %q does not mention %q", err, err, tc.want)
			}
		})
	}
}

// TestWriteRefusesManifestReadersRefuse: a manifest over MaxManifestSize is refused by Write with its size and entry
// count, instead of producing an archive that no reader opens.
func TestWriteRefusesManifestReadersRefuse(t *testing.T) {
	var its []Item
	dir := strings.Repeat("long-directory-name/", 10)
	for i := 0; len(its)*320 < MaxManifestSize+(1<<20); i++ {
		its = append(its, Item{Entry: link(fmt.Sprintf("%s%08d", dir, i), "t")})
	}
	m := testManifest()
	m.APIVersion = APIVersion
	for _, it := range its {
		m.Entries = append(m.Entries, it.Entry)
	}
	if mb, _ := m.Marshal(); len(mb) <= MaxManifestSize {
		t.Fatalf("fixture: a manifest of %d bytes is not over the limit", len(mb))
	}
	err := Write(context.Background(), io.Discard, testManifest(), its, WriteOptions{})
	if err == nil {
		t.Fatal("Write accepted a manifest over the reader's limit")
	}
	for _, want := range []string{"over the", fmt.Sprintf("%d entries", len(its)), "readers refuse"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
