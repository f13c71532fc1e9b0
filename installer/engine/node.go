package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

// UnitDir is where Unit puts systemd units.
const UnitDir = "/etc/systemd/system"

const redacted = "<redacted>"

// Node is the gate to one host: the only way a phase touches a node. Query reads and always runs. Exec, PutFile,
// Upload and Unit change the node; in a dry run they change nothing and add an entry to the host's plan instead.
// Every command the gate runs goes to the host's log. A Node is safe for concurrent use.
type Node struct {
	host   cluster.Host
	runner remote.Runner
	up     remote.Uploader
	r      *run
	log    *hostLog

	mu      sync.Mutex
	phase   string // the last phase the host took part in
	step    string // the step running, for plan entries of simulated steps
	status  HostStatus
	err     error
	hint    string
	changes int
	plan    []PlanEntry
}

// Name is the host's name in cluster.yaml.
func (n *Node) Name() string { return n.host.Name }

// Host is the host's entry in cluster.yaml.
func (n *Node) Host() cluster.Host { return n.host }

// DryRun reports whether changes are recorded instead of made.
func (n *Node) DryRun() bool { return n.r.opts.DryRun }

// Logf writes a line to the host's log and shows it live (a Log event).
func (n *Node) Logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	n.logf("%s", line)
	n.r.emit(Log{Host: n.Name(), Line: line})
}

// Query runs a command that changes nothing, in a dry run too. Its output is the caller's to read.
func (n *Node) Query(ctx context.Context, cmd remote.Cmd) (remote.Result, error) {
	return n.run(ctx, cmd)
}

// Exec runs a command that changes the node. desc says what it does, for the plan, the live view and errors. In a
// dry run it only adds the command to the plan and returns an empty result.
func (n *Node) Exec(ctx context.Context, desc string, cmd remote.Cmd) (remote.Result, error) {
	if err := n.mayChange(ctx, desc); err != nil {
		return remote.Result{}, err
	}
	if n.DryRun() {
		n.addPlan(PlanEntry{Kind: PlanCommand, Target: shown(cmd), Desc: desc})
		return remote.Result{}, nil
	}
	n.r.emit(Log{Host: n.Name(), Line: desc})
	n.changed()
	res, err := n.run(ctx, cmd)
	if err != nil {
		return res, fmt.Errorf("%s: %w", desc, err)
	}
	return res, nil
}

// PutFile makes the file at path (absolute) hold data with mode, atomically: written to a temp file beside it,
// checked against data's sha256 on the node, then renamed over it. A node that already holds the same content is
// left alone (only a different mode is fixed). changed reports whether the content was (or would be) written.
func (n *Node) PutFile(ctx context.Context, path string, data []byte, mode fs.FileMode) (changed bool, err error) {
	return n.putFile(ctx, PlanFile, path, data, mode)
}

// Unit installs the systemd unit name (e.g. "wutong-registry.service") at UnitDir/name and runs systemctl
// daemon-reload only when its content changed. changed tells the caller to restart the unit; nothing else should.
func (n *Node) Unit(ctx context.Context, name string, content []byte) (changed bool, err error) {
	if name == "" || strings.ContainsAny(name, "/ ") || !strings.Contains(name, ".") {
		return false, fmt.Errorf("install unit %q: not a unit file name", name)
	}
	changed, err = n.putFile(ctx, PlanUnit, path.Join(UnitDir, name), content, 0o644)
	if err != nil || !changed || n.DryRun() {
		return changed, err
	}
	if _, err := n.run(ctx, remote.Cmd{Line: "systemctl daemon-reload", Sudo: true}); err != nil {
		return true, fmt.Errorf("reload systemd: %w", err)
	}
	return true, nil
}

// Upload copies the local file src to dst on the node (see remote.Uploader: resumable, atomic, skipped when
// identical), reporting Progress events. changed reports whether bytes were (or would be) sent. When o.SHA256 is
// given (from the bundle's manifest) the node's copy is checked first with a query, and an identical one (same
// mode too, when o.Mode is set) is not touched at all; without it, a dry run always plans the upload.
func (n *Node) Upload(ctx context.Context, src, dst string, o remote.UploadOptions) (changed bool, err error) {
	if err := n.mayChange(ctx, "upload "+dst); err != nil {
		return false, err
	}
	if n.up == nil {
		return false, fmt.Errorf("upload %s: host %s has no uploader", dst, n.Name())
	}
	st, err := os.Stat(src)
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", dst, err)
	}
	if o.SHA256 != "" {
		sum, mode, ok, err := n.fileState(ctx, dst)
		if err != nil {
			return false, fmt.Errorf("check %s: %w", dst, err)
		}
		if ok && sum == o.SHA256 && (o.Mode == 0 || o.Mode.Perm() == mode) {
			n.logf("%s: unchanged", dst)
			return false, nil
		}
	}
	if n.DryRun() {
		n.addPlan(PlanEntry{Kind: PlanUpload, Target: dst, Source: src, Size: st.Size(), SHA256: o.SHA256, Mode: o.Mode})
		return true, nil
	}
	user := o.Progress
	o.Progress = func(done, total int64) {
		n.r.emit(Progress{Host: n.Name(), Label: dst, Done: done, Total: total})
		if user != nil {
			user(done, total)
		}
	}
	n.logf("upload %s -> %s (%s)", src, dst, progress.Bytes(st.Size()))
	res, err := n.up.Upload(ctx, src, dst, o)
	if err != nil {
		n.logf("  failed: %v", err)
		return false, fmt.Errorf("upload %s: %w", dst, err)
	}
	if res.Skipped {
		n.logf("  identical copy already there")
		return false, nil
	}
	n.logf("  sent %s in %d attempt(s), %s resumed", progress.Bytes(res.Sent), res.Attempts, progress.Bytes(res.Resumed))
	n.changed()
	return true, nil
}

func (n *Node) putFile(ctx context.Context, kind PlanKind, p string, data []byte, mode fs.FileMode) (bool, error) {
	if err := n.mayChange(ctx, "write "+p); err != nil {
		return false, err
	}
	if !path.IsAbs(p) || path.Clean(p) != p {
		return false, fmt.Errorf("write %s: not a clean absolute path", p)
	}
	mode = mode.Perm()
	sum := sha256Hex(data)
	cur, curMode, exists, err := n.fileState(ctx, p)
	if err != nil {
		return false, fmt.Errorf("check %s: %w", p, err)
	}
	if exists && cur == sum {
		if curMode == mode {
			n.logf("%s: unchanged", p)
			return false, nil
		}
		_, err := n.Exec(ctx, "set the mode of "+p, remote.Cmd{Line: fmt.Sprintf("chmod %04o %s", mode, remote.Quote(p)), Sudo: true})
		return false, err
	}
	if n.DryRun() {
		note := "new"
		if exists {
			note = "changed"
		}
		n.addPlan(PlanEntry{Kind: kind, Target: p, Size: int64(len(data)), SHA256: sum, Mode: mode, Note: note})
		return true, nil
	}
	n.r.emit(Log{Host: n.Name(), Line: "write " + p})
	n.changed()
	if err := n.writeFile(ctx, p, data, mode); err != nil {
		return false, fmt.Errorf("write %s: %w", p, err)
	}
	return true, nil
}

// fileState asks the node for the sha256 and mode of the regular file at p.
func (n *Node) fileState(ctx context.Context, p string) (sum string, mode fs.FileMode, exists bool, err error) {
	q := remote.Quote(p)
	res, err := n.run(ctx, remote.Cmd{Sudo: true,
		// openssl uses the CPU's SHA instructions (about 4× coreutils' sha256sum); sha256sum is the fallback.
		Line: fmt.Sprintf("if [ -f %s ]; then if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r < %s; "+
			"else sha256sum < %s; fi | cut -c1-64; stat -L -c %%a %s; fi", q, q, q, q)})
	if err != nil {
		return "", 0, false, err
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) == 0 {
		return "", 0, false, nil
	}
	m, perr := strconv.ParseUint(f[len(f)-1], 8, 32)
	if len(f) != 2 || len(f[0]) != 64 || perr != nil {
		return "", 0, false, fmt.Errorf("unexpected answer %q", res.Stdout)
	}
	return f[0], fs.FileMode(m), true, nil
}

// writeFile writes data to p through stdin and a temp file beside p, checked on the node before the rename.
func (n *Node) writeFile(ctx context.Context, p string, data []byte, mode fs.FileMode) error {
	line := fmt.Sprintf(`set -e; p=%s; h=%s; m=%04o; d=$(dirname "$p"); mkdir -p "$d"; `+
		`t=$(mktemp "$d/.wt-tmp.XXXXXX"); trap 'rm -f "$t"' EXIT; cat > "$t"; `+
		`[ "$(sha256sum < "$t" | cut -c1-64)" = "$h" ] || { echo "the copy on the node is damaged" >&2; exit 1; }; `+
		`chmod "$m" "$t"; mv -f "$t" "$p"`, remote.Quote(p), sha256Hex(data), mode.Perm())
	_, err := n.run(ctx, remote.Cmd{Line: line, Sudo: true, Stdin: bytes.NewReader(data)})
	return err
}

// run runs cmd and logs it. A redacted command's failure is returned without its line or stderr.
func (n *Node) run(ctx context.Context, cmd remote.Cmd) (remote.Result, error) {
	if err := ctx.Err(); err != nil {
		return remote.Result{}, err
	}
	n.logf("$ %s", shown(cmd))
	res, err := n.runner.Run(ctx, cmd)
	if err == nil {
		n.logf("  exit 0")
		return res, nil
	}
	var ce *remote.CommandError
	switch {
	case errors.As(err, &ce) && cmd.Redact:
		c := *ce
		c.Cmd, c.Stderr = redacted, ""
		err = &c
		n.logf("  exit %d (output withheld: redacted command)", c.ExitCode)
	case errors.As(err, &ce) && ce.ExitCode < 0:
		n.logf("  did not finish: %v", ce.Err)
	case errors.As(err, &ce):
		n.logf("  exit %d", ce.ExitCode)
		if s := strings.TrimSpace(ce.Stderr); s != "" {
			n.logf("  stderr:\n    %s", strings.ReplaceAll(s, "\n", "\n    "))
		}
	case cmd.Redact:
		n.logf("  failed (details withheld: redacted command)")
	default:
		n.logf("  failed: %v", err)
	}
	return res, err
}

// mayChange refuses changes once ctx is cancelled, and while the Prepare hooks run.
func (n *Node) mayChange(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n.r.preparing.Load() {
		return fmt.Errorf("%s: Prepare must not change nodes", what)
	}
	return nil
}

func shown(cmd remote.Cmd) string {
	if cmd.Redact {
		return redacted
	}
	return cmd.Line
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (n *Node) logf(format string, args ...any) { n.log.printf(format, args...) }

func (n *Node) addPlan(e PlanEntry) {
	e.Phase = n.r.phaseTitle()
	n.mu.Lock()
	e.Step = n.step
	n.plan = append(n.plan, e)
	if e.changes() {
		n.changes++
	}
	n.mu.Unlock()
	n.logf("would %s", e.line())
	n.r.emit(Log{Host: n.Name(), Line: "would " + e.line()})
}

func (n *Node) planEntries() []PlanEntry {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]PlanEntry(nil), n.plan...)
}

func (n *Node) changed() {
	n.mu.Lock()
	n.changes++
	n.mu.Unlock()
}

func (n *Node) changeCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changes
}

func (n *Node) setPhase(p string) {
	n.mu.Lock()
	n.phase = p
	n.mu.Unlock()
}

func (n *Node) setStep(s string) {
	n.mu.Lock()
	n.step = s
	n.mu.Unlock()
}

func (n *Node) healthy() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status == ""
}

// markFailed records the host's failure; false when it had already failed.
func (n *Node) markFailed(phase string, err error, hint string, interrupted bool) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.status != "" {
		return false
	}
	n.status, n.phase, n.err, n.hint = StatusFailed, phase, err, hint
	if interrupted {
		n.status = StatusInterrupted
	}
	return true
}

func (n *Node) summary() HostSummary {
	n.mu.Lock()
	defer n.mu.Unlock()
	return HostSummary{Name: n.host.Name, Status: n.status, Phase: n.phase, Err: n.err, Hint: n.hint, Changes: n.changes}
}
