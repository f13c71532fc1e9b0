// Package remotetest is a scripted fake node for unit tests of code that uses remote.Runner and remote.Uploader.
// It runs nothing: each command is answered by the first rule whose pattern matches it, and uploads are kept in
// memory.
package remotetest

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"

	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// Rule answers the commands that match Pattern.
type Rule struct {
	Pattern *regexp.Regexp
	Stdout  string
	Stderr  string
	Exit    int   // a non-zero exit becomes a *remote.CommandError
	Err     error // returned as is (a lost link, say) when set
}

// Fake is a scripted node. The zero value answers every command with exit 127.
type Fake struct {
	Name string

	mu    sync.Mutex
	rules []Rule
	calls []remote.Cmd
	files map[string]File
}

// File is an uploaded file.
type File struct {
	Data []byte
	Mode os.FileMode
	Sudo bool
}

// New returns a fake node called name.
func New(name string) *Fake { return &Fake{Name: name, files: map[string]File{}} }

// On adds a rule: commands matching the regular expression pattern print stdout and exit with exit.
func (f *Fake) On(pattern, stdout string, exit int) *Fake {
	return f.OnRule(Rule{Pattern: regexp.MustCompile(pattern), Stdout: stdout, Exit: exit})
}

// OnRule adds a rule.
func (f *Fake) OnRule(r Rule) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
	return f
}

// Host is the node's name.
func (f *Fake) Host() string { return f.Name }

// Run answers cmd from the first matching rule.
func (f *Fake) Run(ctx context.Context, cmd remote.Cmd) (remote.Result, error) {
	if err := ctx.Err(); err != nil {
		return remote.Result{}, err
	}
	if cmd.Stdin != nil {
		_, _ = io.Copy(io.Discard, cmd.Stdin)
	}
	f.mu.Lock()
	f.calls = append(f.calls, cmd)
	var rule *Rule
	for i := range f.rules {
		if f.rules[i].Pattern.MatchString(cmd.Line) {
			rule = &f.rules[i]
			break
		}
	}
	f.mu.Unlock()
	if rule == nil {
		return remote.Result{}, &remote.CommandError{Host: f.Name, Cmd: cmd.Line, ExitCode: 127, Stderr: "remotetest: no rule for this command"}
	}
	if rule.Err != nil {
		return remote.Result{}, rule.Err
	}
	res := remote.Result{Stderr: rule.Stderr}
	if cmd.Stdout != nil {
		_, _ = io.WriteString(cmd.Stdout, rule.Stdout)
	} else {
		res.Stdout = []byte(rule.Stdout)
	}
	if rule.Exit != 0 {
		return res, &remote.CommandError{Host: f.Name, Cmd: cmd.Line, ExitCode: rule.Exit, Stderr: rule.Stderr}
	}
	return res, nil
}

// Upload keeps src's bytes under dst.
func (f *Fake) Upload(ctx context.Context, src, dst string, o remote.UploadOptions) (remote.UploadResult, error) {
	if err := ctx.Err(); err != nil {
		return remote.UploadResult{}, err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return remote.UploadResult{}, fmt.Errorf("upload: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.files[dst]; ok && string(old.Data) == string(data) {
		return remote.UploadResult{Skipped: true, Attempts: 1}, nil
	}
	if o.Mode == 0 {
		o.Mode = 0o644
	}
	f.files[dst] = File{Data: data, Mode: o.Mode, Sudo: o.Sudo}
	if o.Progress != nil {
		o.Progress(int64(len(data)), int64(len(data)))
	}
	return remote.UploadResult{Sent: int64(len(data)), Attempts: 1}, nil
}

// Calls returns the commands run so far.
func (f *Fake) Calls() []remote.Cmd {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]remote.Cmd(nil), f.calls...)
}

// File returns an uploaded file.
func (f *Fake) File(path string) (File, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files[path]
	return file, ok
}
