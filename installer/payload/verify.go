package payload

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/wutong-paas/wutong-offline/bundle"
)

// Problem is a payload file that is not as the manifest says.
type Problem struct {
	Path   string `json:"path"`
	Reason string `json:"reason"` // missing, size, sha256
}

// WriteList writes files as "SHA256 SIZE PATH" lines, the input of ReadList and `wtctl node verify`.
func WriteList(w io.Writer, files []File) error {
	bw := bufio.NewWriter(w)
	for _, f := range files {
		fmt.Fprintf(bw, "%s %d %s\n", f.SHA256, f.Size, f.Path)
	}
	return bw.Flush()
}

// ReadList reads what WriteList wrote. Paths are checked like bundle entries: relative, clean, inside the root.
func ReadList(r io.Reader) ([]File, error) {
	var out []File
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		fields := strings.SplitN(sc.Text(), " ", 3)
		if len(fields) != 3 || len(fields[0]) != 64 {
			return nil, fmt.Errorf("file list line %d: want \"SHA256 SIZE PATH\"", n)
		}
		size, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("file list line %d: bad size %q", n, fields[1])
		}
		if err := bundle.CheckPath(fields[2]); err != nil {
			return nil, fmt.Errorf("file list line %d: %w", n, err)
		}
		out = append(out, File{SHA256: fields[0], Size: size, Path: fields[2]})
	}
	return out, sc.Err()
}

// Verify checks files under root, several at a time: present, of the right size, with the right sha256.
func Verify(ctx context.Context, root string, files []File) ([]Problem, error) {
	var (
		mu       sync.Mutex
		problems []Problem
		wg       sync.WaitGroup
		firstErr error
	)
	// Reads stay inside root even if a path on the node was replaced by a symlink.
	r, err := os.OpenRoot(root)
	if errors.Is(err, fs.ErrNotExist) {
		for _, f := range files {
			problems = append(problems, Problem{Path: f.Path, Reason: "missing"})
		}
		return problems, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify payload: %w", err)
	}
	defer r.Close()
	jobs := make(chan File)
	for range max(2, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				reason, err := check(ctx, r, filepath.FromSlash(f.Path), f)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if reason != "" {
					problems = append(problems, Problem{Path: f.Path, Reason: reason})
				}
				mu.Unlock()
			}
		}()
	}
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return problems, firstErr
}

func check(ctx context.Context, r *os.Root, p string, f File) (string, error) {
	fh, err := r.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "missing", nil
	}
	if err != nil {
		return "", err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() != f.Size {
		return "size", nil
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := fh.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	if hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return "sha256", nil
	}
	return "", nil
}
