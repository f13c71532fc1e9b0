package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validationError asserts that err is a *ValidationError and returns it.
func validationError(t *testing.T, err error) *ValidationError {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError, got %T: %v", err, err)
	}
	return ve
}

// TestGolden checks the canonical form of every example against testdata/golden; -update rewrites them.
func TestGolden(t *testing.T) {
	for _, path := range examples(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		if name == "app" {
			name = filepath.Base(filepath.Dir(path))
		}
		t.Run(name, func(t *testing.T) {
			a, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, bytes.TrimSuffix(want, []byte("\n"))) {
				t.Errorf("canonical form differs from %s (run with -update after checking the change):\ngot  %s\nwant %s", golden, got, want)
			}
		})
	}
}

const header = "apiVersion: wutong.io/v1alpha1\nkind: App\nkey: demo\nversion: 1.0.0\n"

// TestParseProblems checks structural problems and validation problems found through Parse: line, path and
// message of each.
func TestParseProblems(t *testing.T) {
	type want struct {
		line      int
		path, msg string
	}
	cases := []struct {
		name string
		doc  string
		want []want
	}{
		{"empty", "", []want{{0, "", "the document is empty"}}},
		{"comment only", "# nothing\n", []want{{0, "", "the document is empty"}}},
		{"not a mapping", "- a\n- b\n", []want{{1, "", "expected a mapping, found a list"}}},
		{"header missing", "key: demo\n", []want{{1, "apiVersion", "is missing"}, {1, "kind", "is missing"}}},
		{"other kind", "apiVersion: wutong.io/v1alpha1\nkind: Cluster\n", []want{{2, "kind", `is "Cluster", expected "App"`}}},
		{"other apiVersion", "apiVersion: apps/v1\nkind: App\n", []want{{1, "apiVersion", `is "apps/v1", expected "wutong.io/v1alpha1"`}}},
		{"two documents", header + "components: []\n---\nkey: other\n", []want{{7, "", "app.yaml holds one document"}}},
		{"syntax error", header + "components:\n  - name: web\n    image: [a,\n", []want{{7, "", "invalid YAML"}}},
		{"duplicate key", header + "key: again\ncomponents: []\n", []want{{5, "", `mapping key "key" already defined`}}},
		{"tab indentation", header + "components:\n\t- name: web\n", []want{{6, "", "invalid YAML"}}},
		{"unknown top-level field", header + "componets:\n  - name: web\n", []want{
			{5, "componets", `unknown field "componets"; did you mean "components"?`}}},
		{"field in the wrong place", header + "mountPath: /data\ncomponents:\n  - name: web\n    image: example.com/web:1\n", []want{
			{5, "mountPath", `unknown field "mountPath"; it belongs in each entry of components.volumes`}}},
		{"case of a field", header + "components:\n  - name: web\n    Image: example.com/web:1\n", []want{
			{7, "components[web].Image", `unknown field "Image"; did you mean "image"?`}}},
		{"wrong types", header + "components:\n  - name: web\n    image: example.com/web:1\n    ports: 8080\n    replicas: two\n    env: {A: b}\n", []want{
			{8, "components[web].ports", "expected a list, found \"8080\""},
			{9, "components[web].replicas", `expected a whole number, found "two"`},
			{10, "components[web].env", "expected a list, found a mapping"}}},
		{"huge number", header + "components:\n  - name: web\n    image: example.com/web:1\n    replicas: 99999999999\n", []want{
			{8, "components[web].replicas", "expected a whole number of reasonable size"}}},
		{"every problem at once", header + `components:
  - name: web
    image: example.com/web
    ports:
      - {port: 8080, protocl: http}
    dependsOn: [api]
  - name: db
    image: example.com/db:1
    volumes:
      - {name: data, mountPath: data, size: 1Gi}
`, []want{
			{7, "components[web].image", "has no tag or digest"},
			{9, "components[web].ports[0].protocl", `did you mean "protocol"?`},
			{10, "components[web].dependsOn[0]", `"api" is not a component of this app`},
			{14, "components[db].volumes[0].mountPath", `"data" is not an absolute path below /`}}},
		{"index paths for bad names", header + "components:\n  - name: web\n    image: example.com/web:1\n  - name: web\n    image: example.com/web:1\n    kind: cron\n", []want{
			{8, "components[1].name", `component name "web" is already used by components[0]`},
			{10, "components[1].kind", `unknown kind "cron"`}}},
		{"file source without a directory", header + "components:\n  - name: web\n    image: example.com/web:1\n    configFiles:\n      - {path: /etc/a, file: a.conf}\n", []want{
			{9, "components[web].configFiles[0].file", `"a.conf" is not read`}}},
		{"object problem line", header + "components:\n  - name: web\n    image: example.com/web:1\nresources:\n  - apiVersion: v1\n    kind: Namespace\n    metadata: {name: x}\n", []want{
			{10, "resources[0].kind", "Namespace is cluster-scoped"}}},
		{"alias bomb", "apiVersion: wutong.io/v1alpha1\nkind: App\n" + aliasBomb(), []want{{0, "", "too many nodes through aliases"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse accepts it: %+v", a)
			}
			ve := validationError(t, err)
			if len(ve.Problems) != len(tc.want) {
				t.Fatalf("want %d problems, got %d:\n%v", len(tc.want), len(ve.Problems), err)
			}
			for i, w := range tc.want {
				p := ve.Problems[i]
				if p.Line != w.line || p.Path != w.path || !strings.Contains(p.Message, w.msg) {
					t.Errorf("problem %d:\ngot  %+v\nwant %+v", i, p, w)
				}
			}
		})
	}
}

// aliasBomb is a small document that expands to a billion nodes.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("key: demo\nversion: 1.0.0\ncomponents: [{name: web, image: example.com/web:1}]\n")
	b.WriteString("resources:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: x}\n    data:\n")
	b.WriteString("      a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "      a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	return b.String()
}

func TestErrorFormat(t *testing.T) {
	_, err := Parse([]byte(header + "components:\n  - name: web\n    image: example.com/web:1\n    imag: x\n"))
	want := `app.yaml:8: components[web].imag: unknown field "imag"; did you mean "image"? (fix: rename it to image (field names are case-sensitive))`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	e := &ValidationError{File: "apps/shop/app.yaml", Problems: []Problem{
		{Line: 3, Path: "key", Message: "is missing", Fix: "add it"},
		{Path: "components", Message: "lists no component"},
		{Message: "the document is empty"},
	}}
	want = "apps/shop/app.yaml:3: key: is missing (fix: add it)\napps/shop/app.yaml: components: lists no component\napps/shop/app.yaml: the document is empty"
	if e.Error() != want {
		t.Errorf("got  %s\nwant %s", e.Error(), want)
	}
}

// TestParseScalars checks that numbers and booleans given for strings are taken as written, and that defaults
// are applied.
func TestParseScalars(t *testing.T) {
	a, err := Parse([]byte(header + `components:
  - name: db
    image: example.com/db:1
    env:
      - {name: PORT, value: 5432}
      - {name: DEBUG, value: true}
      - {name: RATIO, value: 0.50}
      - {name: EMPTY}
    configFiles:
      - {path: /etc/a, content: x, mode: 0600}
      - {path: /etc/b, content: y, mode: 600}
    resources:
      limits: {cpu: 2, memory: 0.5Gi}
resources:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: c}
    data: {n: "1"}
    spec: {replicas: 3, ratio: 1.5, big: 12345678901234567890}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := a.Components[0]
	var got []string
	for _, e := range c.Env {
		got = append(got, e.Name+"="+e.Value)
	}
	if s := strings.Join(got, " "); s != "PORT=5432 DEBUG=true RATIO=0.50 EMPTY=" {
		t.Errorf("env %s", s)
	}
	if c.ConfigFiles[0].Mode != "0600" || c.ConfigFiles[1].Mode != "0600" {
		t.Errorf("modes %q %q", c.ConfigFiles[0].Mode, c.ConfigFiles[1].Mode)
	}
	if c.Resources.Limits.CPU != "2" || c.Resources.Limits.Memory != "512Mi" {
		t.Errorf("limits %+v", c.Resources.Limits)
	}
	if a.Name != "demo" || c.Kind != KindStateless || *c.Replicas != 1 {
		t.Errorf("defaults: name %q kind %q replicas %d", a.Name, c.Kind, *c.Replicas)
	}
	spec := a.Resources[0]["spec"].(map[string]any)
	if spec["replicas"] != json.Number("3") || spec["ratio"] != json.Number("1.5") || spec["big"] != json.Number("12345678901234567890") {
		t.Errorf("object numbers %#v", spec)
	}
}
