// Package bundletest helps tests that need an extracted bundle: it lists a directory as the manifest entries
// bundle build would have written for it.
package bundletest

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/wutong-paas/wutong-offline/bundle"
)

// Entries lists every regular file under dir, in walk order, with its size, sha256 and the given mode.
func Entries(t testing.TB, dir string, mode uint32) []bundle.Entry {
	t.Helper()
	var out []bundle.Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, bundle.Entry{Path: filepath.ToSlash(rel), Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Mode: mode})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
