package bundle

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
)

var benchArchive = sync.OnceValues(func() ([]byte, ed25519.PrivateKey) {
	// Like a bundle: mostly incompressible image layers, some binaries and text that compress.
	_, key, _ := ed25519.GenerateKey(nil)
	var cs []content
	for i := 0; i < 6; i++ {
		cs = append(cs, content{path: fmt.Sprintf("oci/blobs/sha256/layer%d", i), data: randBytes(8 << 20)})
	}
	for i := 0; i < 2; i++ {
		text := bytes.Repeat([]byte(fmt.Sprintf("wutong offline %d, kubelet --config /var/lib/kubelet/config.yaml\n", i)), (8<<20)/64)
		cs = append(cs, content{path: fmt.Sprintf("files/all/text%d", i), data: text})
	}
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, testManifest(), items(cs), WriteOptions{Key: key}); err != nil {
		panic(err)
	}
	return buf.Bytes(), key
})

// BenchmarkReaderVerify reads and checks a 64 MiB payload: decompression, tar and sha256 of every entry.
func BenchmarkReaderVerify(b *testing.B) {
	archive, key := benchArchive()
	opts := ReadOptions{Keys: []ed25519.PublicKey{pub(key)}}
	r, err := NewReader(bytes.NewReader(archive), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(r.Manifest.PayloadSize())
	r.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r, err := NewReader(bytes.NewReader(archive), opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Verify(context.Background()); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// BenchmarkNewReader opens an archive: the manifest and signature, what a server does for every upload first.
func BenchmarkNewReader(b *testing.B) {
	archive, key := benchArchive()
	opts := ReadOptions{Keys: []ed25519.PublicKey{pub(key)}}
	b.ReportAllocs()
	for range b.N {
		r, err := NewReader(bytes.NewReader(archive), opts)
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
