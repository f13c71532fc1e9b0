package bundle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestFrameWriterRoundTrip(t *testing.T) {
	// Random and compressible data, sizes around the frame boundary.
	for _, n := range []int{0, 1, frameSize - 1, frameSize, frameSize + 1, 3*frameSize + 12345} {
		data := append(randBytes(n/2), bytes.Repeat([]byte("wutong offline "), (n-n/2)/15+1)...)[:n]
		var buf bytes.Buffer
		fw, err := newFrameWriter(&buf, zstd.SpeedDefault, 2)
		if err != nil {
			t.Fatal(err)
		}
		// Odd write sizes.
		for off := 0; off < len(data); {
			k := min(len(data)-off, 70001)
			if _, err := fw.Write(data[off : off+k]); err != nil {
				t.Fatal(err)
			}
			off += k
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		zr, _ := zstd.NewReader(&buf)
		got, err := io.ReadAll(zr)
		zr.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("n=%d: round trip differs (%v)", n, err)
		}
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("device is gone")
	}
	f.after--
	return len(p), nil
}

func TestFrameWriterReportsWriteErrors(t *testing.T) {
	fw, _ := newFrameWriter(&failingWriter{after: 1}, zstd.SpeedFastest, 2)
	data := randBytes(frameSize)
	var err error
	for i := 0; i < 8 && err == nil; i++ {
		_, err = fw.Write(data)
	}
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	if err == nil || !strings.Contains(err.Error(), "device is gone") {
		t.Fatalf("write error not reported: %v", err)
	}
}

// TestStandardToolsReadArchives checks that an archive is plain tar+zstd for the zstd and tar commands too.
func TestStandardToolsReadArchives(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("zstd command not installed (apt-get install zstd)")
	}
	key := newKey(t)
	cs := sampleContent()
	cs = append(cs, content{path: "files/all/big", data: randBytes(3*frameSize + 7)})
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, testManifest(), items(cs), WriteOptions{Key: key}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "a.tar.zst")
	os.WriteFile(p, buf.Bytes(), 0o644)
	out, err := exec.Command("sh", "-c", "zstd -dc "+p+" | tar -tf -").CombinedOutput()
	if err != nil {
		t.Fatalf("zstd | tar: %v\n%s", err, out)
	}
	want := ManifestName + "\n" + SignatureName + "\n"
	for _, c := range cs {
		want += c.path + "\n"
	}
	if string(out) != want {
		t.Fatalf("tar lists:\n%s\nwant:\n%s", out, want)
	}
}
