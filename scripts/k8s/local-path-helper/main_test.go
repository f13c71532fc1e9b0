package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	stockSetup    = "#!/bin/sh\nset -eu\nmkdir -m 0777 -p \"$VOL_DIR\""
	stockTeardown = "#!/bin/sh\nset -eu\nrm -rf \"$VOL_DIR\""
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{base, outside, filepath.Join(outside, "victim")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	setup := script("setup", stockSetup)
	teardown := script("teardown", stockTeardown)
	vol := filepath.Join(base, "pvc-1_default_data")
	env := func(m map[string]string) func(string) string {
		return func(k string) string {
			if k == "LOCAL_PATH_BASES" {
				if v, ok := m[k]; ok {
					return v
				}
				return base
			}
			return m[k]
		}
	}
	args := func(s, v, action string) []string {
		return []string{s, "-p", v, "-s", "1024", "-m", "Filesystem", "-a", action}
	}

	// Setup makes the directory with mode 0777 whatever the umask; running it again is fine.
	for range 2 {
		if err := run(args(setup, vol, "create"), env(map[string]string{"VOL_DIR": vol})); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(vol); err != nil || fi.Mode().Perm() != 0o777 || !fi.IsDir() {
		t.Fatalf("after setup: %v %v", fi, err)
	}
	if err := os.WriteFile(filepath.Join(vol, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Teardown removes it with its content; again is fine.
	for range 2 {
		if err := run(args(teardown, vol, "delete"), env(map[string]string{"VOL_DIR": vol})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Fatalf("after teardown: %v", err)
	}

	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no args", nil, nil, "not a shell"},
		{"-c", []string{"-c", "rm -rf /"}, nil, `option "-c" is not supported`},
		{"other script", []string{script("evil", "#!/bin/sh\nrm -rf /\n")}, map[string]string{"VOL_DIR": vol}, `"rm -rf /" is not supported`},
		{"two commands", []string{script("two", stockSetup+"\n"+"rm -rf \"$VOL_DIR\"\n")}, map[string]string{"VOL_DIR": vol}, "only one command"},
		{"empty script", []string{script("empty", "#!/bin/sh\nset -eu\n")}, map[string]string{"VOL_DIR": vol}, "no command"},
		{"root", args(teardown, "/", "delete"), map[string]string{"VOL_DIR": "/"}, "VOL_DIR is /"},
		{"unset", []string{teardown}, nil, "VOL_DIR is not set"},
		{"relative", []string{teardown}, map[string]string{"VOL_DIR": "base/x"}, "not an absolute path"},
		{"dot-dot", []string{teardown}, map[string]string{"VOL_DIR": base + "/../outside/victim"}, "not a clean path"},
		{"outside", []string{teardown}, map[string]string{"VOL_DIR": filepath.Join(outside, "victim")}, "not below the configured base paths"},
		{"the base itself", []string{teardown}, map[string]string{"VOL_DIR": base}, "not below the configured base paths"},
		{"prefix is not below", []string{teardown}, map[string]string{"VOL_DIR": base + "x/y"}, "not below the configured base paths"},
		{"through a link", []string{teardown}, map[string]string{"VOL_DIR": filepath.Join(base, "link", "victim")}, "resolves to"},
		{"-p differs", args(teardown, filepath.Join(base, "a"), "delete"), map[string]string{"VOL_DIR": filepath.Join(base, "b")}, "differ"},
		{"base is /", []string{teardown}, map[string]string{"VOL_DIR": filepath.Join(base, "a"), "LOCAL_PATH_BASES": "/"}, "other than /"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(outside, "victim")); err != nil {
		t.Fatalf("a refused teardown removed something: %v", err)
	}

	// Several bases, ':'-separated.
	other := filepath.Join(dir, "other")
	v2 := filepath.Join(other, "v")
	if err := run([]string{setup}, env(map[string]string{"VOL_DIR": v2, "LOCAL_PATH_BASES": base + ":" + other})); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v2); err != nil {
		t.Fatal(err)
	}
}
