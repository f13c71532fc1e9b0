package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeApp writes app.yaml with a config file sourced from file into a fresh directory, with extra files.
func writeApp(t *testing.T, file string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range extra {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc := header + "components:\n  - name: web\n    image: example.com/web:1\n    configFiles:\n      - path: /etc/web/app.conf\n        file: " + file + "\n"
	path := filepath.Join(dir, "app", "app.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadReadsFiles(t *testing.T) {
	path := writeApp(t, "conf/app.conf", map[string]string{"app/conf/app.conf": "listen 80;\n"})
	a, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f := a.Components[0].ConfigFiles[0]
	if f.Content != "listen 80;\n" || f.File != "" || f.Mode != "0644" {
		t.Errorf("config file %+v", f)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("a loaded app does not validate: %v", err)
	}
	// A relative path to app.yaml works too.
	wd, _ := os.Getwd()
	t.Chdir(filepath.Dir(filepath.Dir(path)))
	defer t.Chdir(wd)
	if _, err := Load(filepath.Join("app", "app.yaml")); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRefuses(t *testing.T) {
	outside := func(t *testing.T) string { // a symbolic link in the app's directory to a file outside it
		path := writeApp(t, "secret.conf", map[string]string{"outside.conf": "secret"})
		if err := os.Symlink(filepath.Join(filepath.Dir(filepath.Dir(path)), "outside.conf"), filepath.Join(filepath.Dir(path), "secret.conf")); err != nil {
			t.Skipf("no symbolic links here: %v", err)
		}
		return path
	}
	cases := []struct {
		name string
		path func(t *testing.T) string
		want string
	}{
		{"dot dot", func(t *testing.T) string {
			return writeApp(t, "../outside.conf", map[string]string{"outside.conf": "x"})
		},
			`"../outside.conf" leads out of the directory of app.yaml`},
		{"dot dot inside", func(t *testing.T) string {
			return writeApp(t, "conf/../../outside.conf", map[string]string{"outside.conf": "x"})
		},
			`"conf/../../outside.conf" leads out of the directory of app.yaml`},
		{"absolute", func(t *testing.T) string { return writeApp(t, "/etc/passwd", nil) }, `"/etc/passwd" leads out of the directory of app.yaml`},
		{"symbolic link", outside, `"secret.conf" leads out of the directory of app.yaml through a symbolic link`},
		{"missing", func(t *testing.T) string { return writeApp(t, "nope.conf", nil) }, `"nope.conf" does not exist next to app.yaml`},
		{"binary", func(t *testing.T) string { return writeApp(t, "bin", map[string]string{"app/bin": "\x00\xff\xfe"}) }, `"bin" is not UTF-8 text`},
		{"too large", func(t *testing.T) string {
			return writeApp(t, "big", map[string]string{"app/big": strings.Repeat("x", maxConfigFileSize+1)})
		}, "larger than 1048576 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load accepts it")
			}
			ve := validationError(t, err)
			if len(ve.Problems) != 1 {
				t.Fatalf("want one problem, got:\n%v", err)
			}
			p := ve.Problems[0]
			if p.Line != 10 || p.Path != "components[web].configFiles[0].file" || !strings.Contains(p.Message, tc.want) || p.Fix == "" {
				t.Errorf("got  %+v\nwant line 10, components[web].configFiles[0].file: %s", p, tc.want)
			}
			if !strings.HasPrefix(err.Error(), path+":10: ") {
				t.Errorf("the message does not start with the file and line: %v", err)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "load app:") {
		t.Errorf("Load of a missing file: %v", err)
	}
}
