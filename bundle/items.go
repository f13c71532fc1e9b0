package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// BytesItem is an archive item for content held in memory.
func BytesItem(path string, data []byte) Item {
	sum := sha256.Sum256(data)
	return Item{
		Entry: Entry{Path: path, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Mode: 0o644},
		Open:  func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

// LayoutItems lists a staged OCI image layout directory as archive items under prefix (e.g. "oci/"): oci-layout,
// index.json, then the blobs in digest order. A blob's sha256 is its file name and Write checks it while streaming,
// so each blob is read only once more, when it is written.
func LayoutItems(dir, prefix string) ([]Item, error) {
	var items []Item
	for _, n := range []string{"oci-layout", "index.json"} {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("read staged layout: %w", err)
		}
		items = append(items, BytesItem(prefix+n, data))
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	ents, err := os.ReadDir(blobs)
	if err != nil {
		return nil, fmt.Errorf("list staged blobs: %w", err)
	}
	for _, e := range ents { // ReadDir sorts by name
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("list staged blobs: %w", err)
		}
		if !info.Mode().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(blobs, e.Name())
		items = append(items, Item{
			Entry: Entry{Path: prefix + "blobs/sha256/" + e.Name(), Size: info.Size(), SHA256: e.Name(), Mode: 0o644},
			Open:  func() (io.ReadCloser, error) { return os.Open(p) },
		})
	}
	return items, nil
}
