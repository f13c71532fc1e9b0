// Package atomicfile writes small files (keys, certificates, htpasswd, configs) so that readers see the old content
// or the new, never a mix, and so that a secret never exists with a wider mode than asked for.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path through a temp file in the same directory: mode set before any byte is written, fsync,
// rename, fsync of the directory. Missing parent directories are created 0755. On error nothing is left behind.
func Write(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	SyncDir(dir)
	return nil
}

// SyncDir fsyncs a directory so that renames into it survive a crash. It is best effort: errors are ignored.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
