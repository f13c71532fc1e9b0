package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/wutong-paas/wutong-offline/platform/app"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// loadApp loads an app.yaml of the tests.
func loadApp(t testing.TB, path string) *app.App {
	t.Helper()
	a, err := app.Load(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return a
}

// testImages maps every image of a to a made-up cluster registry reference by digest.
func testImages(a *app.App) map[string]string {
	out := map[string]string{}
	for _, ref := range a.Images() {
		repo, _, _ := strings.Cut(ref, "@")
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		sum := sha256.Sum256([]byte(ref))
		out[ref] = "registry.wutong.local:5443/apps/" + a.Key + "/" + repo + "@sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// input is the Input of the golden tests for a: install "demo" in namespace "team-a", revision 3.
func input(a *app.App) Input {
	return Input{App: a, Install: "demo", Namespace: "team-a", Revision: 3, Images: testImages(a), Domain: "apps.example.com"}
}

// goldenCases are the golden tests: a model and how it is installed.
func goldenCases(t testing.TB) []struct {
	name string
	in   Input
} {
	shop := loadApp(t, "../app/testdata/shop.yaml")
	noDomain := input(loadApp(t, "testdata/noarch.yaml"))
	noDomain.Domain = ""
	valued := input(shop)
	valued.Values = Values{
		Env:      map[string]map[string]string{"api": {"LOG_LEVEL": "debug", "FEATURE_X": "on"}, "web": {"A_NEW": "1"}},
		Replicas: map[string]int{"web": 5, "redis": 0},
		Domains:  map[string]string{"web/http": "shop.customer.cn"},
	}
	valued.IngressClass = "nginx"
	renamed := input(loadApp(t, "testdata/renamed.yaml"))
	renamed.Workloads = map[string]string{"web": "frontend"}
	cases := []struct {
		name string
		in   Input
	}{
		{"shop", input(shop)},
		{"shop-values", valued},
		{"example", input(loadApp(t, "../app/testdata/example/app.yaml"))},
		{"minimal", input(loadApp(t, "../app/testdata/minimal.yaml"))},
		{"noarch-nodomain", noDomain},
		{"renamed", renamed},
	}
	for _, n := range []string{"stateful", "share", "external", "probes", "arches", "configgroups", "resources"} {
		cases = append(cases, struct {
			name string
			in   Input
		}{n, input(loadApp(t, "testdata/"+n+".yaml"))})
	}
	return cases
}

// manifestYAML is the golden form of a manifest: its canonical JSON as YAML, for people to read.
func manifestYAML(t *testing.T, m *Manifest) []byte {
	t.Helper()
	canon, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(canon)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// checkGolden compares got with testdata/golden/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./platform/render -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (check the change, then run go test ./platform/render -update):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + itoa(i+1) + ":\nwant " + wl + "\ngot  " + gl
		}
	}
	return "(same lines)"
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Render(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name+".yaml", manifestYAML(t, m))
		})
	}
}

// TestRenderedObjectsAreValid decodes every rendered object strictly into its typed Kubernetes struct, and checks
// the invariants every object has: namespace, labels, and pod templates without the revision.
func TestRenderedObjectsAreValid(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Render(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range m.Objects() {
				checkTyped(t, o)
				where := o.GetKind() + "/" + o.GetName()
				if o.GetNamespace() != tc.in.Namespace {
					t.Errorf("%s: namespace %q", where, o.GetNamespace())
				}
				l := o.GetLabels()
				for _, k := range []string{LabelApp, LabelInstall, LabelRevision, LabelManagedBy, LabelVersion} {
					if l[k] == "" {
						t.Errorf("%s: no label %s", where, k)
					}
				}
				if _, ok := o.Object["status"]; ok {
					t.Errorf("%s has a status", where)
				}
				if bytes.Contains(mustJSON(t, o.Object), []byte(`"creationTimestamp":null`)) {
					t.Errorf("%s has creationTimestamp: null", where)
				}
				tl, ok, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
				if ok {
					if _, has := tl[LabelRevision]; has {
						t.Errorf("%s: the pod template has the revision label", where)
					}
					sel, _, _ := unstructured.NestedStringMap(o.Object, "spec", "selector", "matchLabels")
					for k, v := range sel {
						if tl[k] != v {
							t.Errorf("%s: the selector %s=%s does not match the pod template", where, k, v)
						}
					}
				}
			}
			for _, c := range m.Components {
				for _, o := range c.Objects {
					if o.GetLabels()[LabelComponent] != c.Name {
						t.Errorf("%s/%s of component %s: label component=%q", o.GetKind(), o.GetName(), c.Name, o.GetLabels()[LabelComponent])
					}
				}
			}
		})
	}
}

// checkTyped converts o into the typed struct of its kind, refusing unknown fields.
func checkTyped(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	typed, err := scheme.Scheme.New(o.GroupVersionKind())
	if err != nil {
		t.Fatalf("%s %s: not a kind of the Kubernetes scheme: %v", o.GetAPIVersion(), o.GetKind(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, typed, true); err != nil {
		t.Errorf("%s/%s is not a valid %s: %v", o.GetKind(), o.GetName(), o.GetKind(), err)
	}
	// And through the wire format, as the API server reads it.
	data := mustJSON(t, o.Object)
	if _, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil); err != nil {
		t.Errorf("%s/%s does not decode: %v", o.GetKind(), o.GetName(), err)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCanonicalRoundTrip checks that Decode(Canonical) re-encodes to the same bytes, that rendering twice gives the
// same bytes, and that Render leaves its input unchanged.
func TestCanonicalRoundTrip(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			before, err := json.Marshal(tc.in.App)
			if err != nil {
				t.Fatal(err)
			}
			m1, err := Render(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := Render(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			c1, err := m1.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			c2, _ := m2.Canonical()
			if !bytes.Equal(c1, c2) {
				t.Fatal("two renders differ")
			}
			after, _ := json.Marshal(tc.in.App)
			if !bytes.Equal(before, after) {
				t.Error("Render changed its input app")
			}
			d, err := Decode(c1)
			if err != nil {
				t.Fatal(err)
			}
			c3, err := d.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c1, c3) {
				t.Fatalf("Decode(Canonical) re-encodes differently:\n%s", lineDiff(string(c1), string(c3)))
			}
			d1, _ := m1.Digest()
			d3, _ := d.Digest()
			if d1 != d3 || !strings.HasPrefix(d1, "sha256:") || len(d1) != len("sha256:")+64 {
				t.Errorf("digests %s and %s", d1, d3)
			}
			if n := len(m1.Objects()); n != len(d.Objects()) || n == 0 {
				t.Errorf("%d objects, %d after Decode", n, len(d.Objects()))
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, data := range []string{
		``, `{}`, `{"app":"a","version":"1.0.0","components":[],"extra":1}`,
		`{"app":"a","version":"1.0.0","components":[{"name":"x","workload":"x","kind":"Job","objects":[]}]}`,
		`{"app":"a","version":"1.0.0","components":[{"name":"x","workload":"x","kind":"Deployment","objects":[{"kind":"Service"}]}]}`,
		`{"app":"a","version":"1.0.0","components":[]} {}`,
	} {
		if _, err := Decode([]byte(data)); err == nil {
			t.Errorf("Decode(%s) succeeded", data)
		}
	}
}

// TestConfigDigest checks that a config change rolls the pods that consume it, and only those.
func TestConfigDigest(t *testing.T) {
	digests := func(a *app.App) map[string]string {
		m, err := Render(input(a))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, c := range m.Components {
			for _, o := range c.Objects {
				if o.GetKind() == c.Kind {
					out[c.Name], _, _ = unstructured.NestedString(o.Object, "spec", "template", "metadata", "annotations", AnnotationConfigDigest)
				}
			}
		}
		return out
	}
	a := loadApp(t, "../app/testdata/shop.yaml")
	before := digests(a)
	a.ConfigGroups[1].Items[0].Value = "smtp2.example.com"  // mail, injected into api only
	a.Component("postgres").ConnectionInfo[3].Value = "new" // DB_PASSWORD, received by api
	a.Component("redis").ConfigFiles = nil
	after := digests(a)
	for name, changed := range map[string]bool{"api": true, "web": false, "thumbnailer": false, "postgres": false, "redis": false} {
		if (before[name] != after[name]) != changed {
			t.Errorf("%s: digest changed=%v, want %v", name, before[name] != after[name], changed)
		}
	}
}

func TestWorkloads(t *testing.T) {
	prev, err := Render(input(loadApp(t, "testdata/shop-2.0.0.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	next := loadApp(t, "../app/testdata/shop.yaml")
	got := Workloads(prev, next)
	want := map[string]string{"web": "frontend", "api": "api", "postgres": "postgres", "redis": "redis"}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	if w := Workloads(nil, next); len(w) != 0 {
		t.Errorf("no previous manifest: %v", w)
	}
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"1.0.0":                                   "1.0.0",
		"2.0.0-rc.1+build.7":                      "2.0.0-rc.1_build.7",
		"1.0.0+" + strings.Repeat("x", 70):        "1.0.0_" + strings.Repeat("x", 57),
		"1.0.0-" + strings.Repeat("a", 56) + "+b": "1.0.0-" + strings.Repeat("a", 56),
	} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFileKeys(t *testing.T) {
	got := fileKeys([]app.ConfigFile{{Path: "/etc/a/app.conf"}, {Path: "/etc/b/app.conf"}, {Path: "/etc/x y@z"}, {Path: "/.hidden"}})
	if got["/etc/x y@z"] != "x_y_z" || got["/.hidden"] != "hidden" {
		t.Errorf("keys %v", got)
	}
	if a, b := got["/etc/a/app.conf"], got["/etc/b/app.conf"]; a == b || !strings.HasPrefix(a, "app.conf-") || !strings.HasPrefix(b, "app.conf-") {
		t.Errorf("clashing keys %q and %q", a, b)
	}
}
