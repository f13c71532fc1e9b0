package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"sync"

	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/installer/remote/remotetest"
)

// fakeNode is a remotetest.Fake with a file system: it answers the gate's own commands (marker reads, file state
// queries, atomic writes) from files kept in memory, keeps uploads there too, and hands every other command to the
// scripted Fake. setFake swaps the Fake, which is how a test "fixes" a node between runs.
type fakeNode struct {
	name string

	mu    sync.Mutex
	fake  *remotetest.Fake
	files map[string]fakeFile
	lines []string // every command line, in order
	hook  func(ctx context.Context, cmd remote.Cmd) error
}

type fakeFile struct {
	data []byte
	mode fs.FileMode
}

var (
	reCat   = regexp.MustCompile(`^cat (\S+) 2>/dev/null \|\| true$`)
	reState = regexp.MustCompile(`^if \[ -f (\S+) \]; then if command -v openssl`)
	reChmod = regexp.MustCompile(`^chmod ([0-7]+) (\S+)$`)
	reWrite = regexp.MustCompile(`^set -e; p=(\S+); h=([0-9a-f]{64}); m=([0-7]+);`)
	// reReadOnly matches the commands of the test pipelines that change nothing.
	reReadOnly = regexp.MustCompile(`^(cat \S+ 2>/dev/null|if \[ -f |systemctl is-active )`)
)

// newFakeNode is a node where every command outside the gate's own succeeds with no output.
func newFakeNode(name string) *fakeNode {
	return &fakeNode{name: name, fake: remotetest.New(name).On(".", "", 0), files: map[string]fakeFile{}}
}

func (f *fakeNode) Host() string { return f.name }

func (f *fakeNode) setFake(fk *remotetest.Fake) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fake = fk
}

func (f *fakeNode) Run(ctx context.Context, cmd remote.Cmd) (remote.Result, error) {
	if err := ctx.Err(); err != nil {
		return remote.Result{}, err
	}
	f.mu.Lock()
	f.lines = append(f.lines, cmd.Line)
	hook, fk := f.hook, f.fake
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, cmd); err != nil {
			return remote.Result{}, err
		}
	}
	if m := reCat.FindStringSubmatch(cmd.Line); m != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		return remote.Result{Stdout: f.files[m[1]].data}, nil
	}
	if m := reState.FindStringSubmatch(cmd.Line); m != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		file, ok := f.files[m[1]]
		if !ok {
			return remote.Result{}, nil
		}
		return remote.Result{Stdout: fmt.Appendf(nil, "%s\n%o\n", sum(file.data), file.mode)}, nil
	}
	if m := reWrite.FindStringSubmatch(cmd.Line); m != nil {
		data, err := io.ReadAll(cmd.Stdin)
		if err != nil {
			return remote.Result{}, err
		}
		if sum(data) != m[2] {
			return remote.Result{}, &remote.CommandError{Host: f.name, Cmd: cmd.Line, ExitCode: 1, Stderr: "the copy on the node is damaged"}
		}
		mode, _ := strconv.ParseUint(m[3], 8, 32)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.files[m[1]] = fakeFile{data: data, mode: fs.FileMode(mode)}
		return remote.Result{}, nil
	}
	if m := reChmod.FindStringSubmatch(cmd.Line); m != nil {
		mode, _ := strconv.ParseUint(m[1], 8, 32)
		f.mu.Lock()
		defer f.mu.Unlock()
		if file, ok := f.files[m[2]]; ok {
			file.mode = fs.FileMode(mode)
			f.files[m[2]] = file
		}
		return remote.Result{}, nil
	}
	return fk.Run(ctx, cmd)
}

func (f *fakeNode) Upload(ctx context.Context, src, dst string, o remote.UploadOptions) (remote.UploadResult, error) {
	if err := ctx.Err(); err != nil {
		return remote.UploadResult{}, err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return remote.UploadResult{}, err
	}
	f.mu.Lock()
	f.lines = append(f.lines, "UPLOAD "+dst)
	old, ok := f.files[dst]
	f.mu.Unlock()
	if ok && string(old.data) == string(data) {
		return remote.UploadResult{Skipped: true, Attempts: 1}, nil
	}
	if o.Progress != nil {
		o.Progress(int64(len(data)/2), int64(len(data)))
		o.Progress(int64(len(data)), int64(len(data)))
	}
	f.mu.Lock()
	f.files[dst] = fakeFile{data: data, mode: o.Mode}
	f.mu.Unlock()
	return remote.UploadResult{Sent: int64(len(data)), Attempts: 1}, nil
}

// calls returns the command lines run so far and forgets them.
func (f *fakeNode) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.lines
	f.lines = nil
	return l
}

// mutations are the calls that could change the node: everything but the read-only ones.
func (f *fakeNode) mutations() []string {
	var out []string
	for _, l := range f.calls() {
		if !reReadOnly.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

func (f *fakeNode) file(p string) (fakeFile, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files[p]
	return file, ok
}

func (f *fakeNode) setFile(p string, data []byte, mode fs.FileMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if data == nil {
		delete(f.files, p)
		return
	}
	f.files[p] = fakeFile{data: data, mode: mode}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
