// Command local-path-helper stands in for busybox's /bin/sh in the helper pods of rancher/local-path-provisioner
// v0.0.30, so the offline bundle needs no busybox image.
//
// The provisioner (provisioner.go, createHelperPod) runs its helper pod with
//
//	command: ["/bin/sh", "/script/setup"]      (or "/script/teardown" to delete)
//	args:    ["-p", VOL_DIR, "-s", SIZE, "-m", MODE, "-a", "create" | "delete"]
//	env:     VOL_DIR, VOL_MODE, VOL_SIZE_BYTES
//
// where /script/setup and /script/teardown are the "setup" and "teardown" keys of the local-path-config ConfigMap,
// and VOL_DIR's parent directory (a node path from config.json) is mounted from the host at the same path. This
// program is installed as /bin/sh. It reads the script and runs exactly what the stock scripts do:
//
//	setup:    set -eu; mkdir -m 0777 -p "$VOL_DIR"
//	teardown: set -eu; rm -rf "$VOL_DIR"
//
// Any other script, command or invocation is refused with a message saying why. VOL_DIR must be a clean absolute
// path strictly below one of the base paths listed (':'-separated) in $LOCAL_PATH_BASES, by default
// /var/lib/wutong/local-path (keep it in step with config.json's nodePathMap): "/", a base path itself or anything
// outside them is refused, also after resolving symbolic links.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// defaultBases is used when LOCAL_PATH_BASES is unset.
const defaultBases = "/var/lib/wutong/local-path"

const (
	opSetup    = "setup"
	opTeardown = "teardown"
)

func main() {
	if err := run(os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "local-path-helper:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New("usage: /bin/sh SCRIPT [-p DIR -s SIZE -m MODE -a ACTION]; this is not a shell: it only runs " +
			"the local-path-provisioner setup (mkdir -m 0777 -p \"$VOL_DIR\") and teardown (rm -rf \"$VOL_DIR\") scripts")
	}
	if strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("option %q is not supported: this is not a shell, it only runs the local-path-provisioner setup and teardown scripts", args[0])
	}
	script, err := os.ReadFile(args[0])
	if err != nil {
		return fmt.Errorf("read script: %w", err)
	}
	op, err := parseScript(string(script))
	if err != nil {
		return fmt.Errorf("script %s: %w", args[0], err)
	}
	volDir := getenv("VOL_DIR")
	if p := flagValue(args[1:], "-p"); p != "" && p != volDir {
		return fmt.Errorf("VOL_DIR %q and -p %q differ", volDir, p)
	}
	bases := getenv("LOCAL_PATH_BASES")
	if bases == "" {
		bases = defaultBases
	}
	dir, err := checkDir(volDir, filepath.SplitList(bases))
	if err != nil {
		return err
	}
	fmt.Printf("local-path-helper: %s %s (action %q, mode %q, size %q bytes)\n", op, dir,
		flagValue(args[1:], "-a"), getenv("VOL_MODE"), getenv("VOL_SIZE_BYTES"))
	switch op {
	case opSetup:
		return setup(dir)
	default:
		return teardown(dir)
	}
}

// parseScript recognises the stock setup and teardown scripts: a shebang, comments, blank lines and `set -eu` (or
// `set -e`, `set -u`, `set -e -u`) around exactly one of the two commands.
func parseScript(s string) (string, error) {
	op := ""
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		var this string
		switch {
		case fields[0] == "set" && validSet(fields[1:]):
			continue
		case slicesEqual(fields, "mkdir", "-m", "0777", "-p", `"$VOL_DIR"`) || slicesEqual(fields, "mkdir", "-p", "-m", "0777", `"$VOL_DIR"`):
			this = opSetup
		case slicesEqual(fields, "rm", "-rf", `"$VOL_DIR"`) || slicesEqual(fields, "rm", "-fr", `"$VOL_DIR"`):
			this = opTeardown
		default:
			return "", fmt.Errorf("line %d: %q is not supported: this /bin/sh only runs the stock local-path-provisioner "+
				"scripts (setup: mkdir -m 0777 -p \"$VOL_DIR\"; teardown: rm -rf \"$VOL_DIR\")", i+1, line)
		}
		if op != "" {
			return "", fmt.Errorf("line %d: %q: only one command is supported", i+1, line)
		}
		op = this
	}
	if op == "" {
		return "", errors.New("no command: expected mkdir -m 0777 -p \"$VOL_DIR\" or rm -rf \"$VOL_DIR\"")
	}
	return op, nil
}

func validSet(opts []string) bool {
	if len(opts) == 0 {
		return false
	}
	for _, o := range opts {
		if o != "-e" && o != "-u" && o != "-eu" && o != "-ue" {
			return false
		}
	}
	return true
}

func slicesEqual(a []string, b ...string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// flagValue returns the value after flag in args, or "".
func flagValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// checkDir makes sure dir is a clean absolute path strictly below one of bases, lexically and once symbolic links
// in its parent are resolved. It returns the path to act on.
func checkDir(dir string, bases []string) (string, error) {
	switch {
	case dir == "":
		return "", errors.New("VOL_DIR is not set")
	case !filepath.IsAbs(dir):
		return "", fmt.Errorf("VOL_DIR %q is not an absolute path", dir)
	case filepath.Clean(dir) != dir && filepath.Clean(dir)+"/" != dir:
		return "", fmt.Errorf("VOL_DIR %q is not a clean path", dir)
	}
	dir = filepath.Clean(dir)
	if dir == "/" {
		return "", errors.New("VOL_DIR is /: refusing")
	}
	var clean []string
	for _, b := range bases {
		if b == "" {
			continue
		}
		if !filepath.IsAbs(b) || filepath.Clean(b) == "/" {
			return "", fmt.Errorf("base path %q in LOCAL_PATH_BASES must be an absolute path other than /", b)
		}
		clean = append(clean, filepath.Clean(b))
	}
	if len(clean) == 0 {
		return "", errors.New("no base paths configured (LOCAL_PATH_BASES)")
	}
	if !below(dir, clean) {
		return "", fmt.Errorf("VOL_DIR %s is not below the configured base paths (%s): refusing", dir, strings.Join(clean, ", "))
	}
	// The parent must exist (the provisioner mounts it); resolve links in it so that a link cannot lead outside.
	parent, err := filepath.EvalSymlinks(filepath.Dir(dir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("resolve %s: %w", filepath.Dir(dir), err)
	}
	if err == nil {
		var resolved []string
		for _, b := range clean {
			if r, err := filepath.EvalSymlinks(b); err == nil {
				resolved = append(resolved, r)
			}
			resolved = append(resolved, b)
		}
		real := filepath.Join(parent, filepath.Base(dir))
		if !below(real, resolved) {
			return "", fmt.Errorf("VOL_DIR %s resolves to %s, which is not below the configured base paths (%s): refusing",
				dir, real, strings.Join(clean, ", "))
		}
	}
	return dir, nil
}

// below says whether p is strictly below one of bases.
func below(p string, bases []string) bool {
	for _, b := range bases {
		if rel, err := filepath.Rel(b, p); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

// setup is mkdir -m 0777 -p "$VOL_DIR": missing parents are made with 0755 less the umask, the directory itself
// with exactly 0777; an existing directory is left as it is.
func setup(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: exists and is not a directory", dir)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return os.Chmod(dir, 0o777) // mkdir -m ignores the umask
}

// teardown is rm -rf "$VOL_DIR": a missing directory is not an error; a symbolic link is removed, not followed.
func teardown(dir string) error {
	return os.RemoveAll(dir)
}
