package render

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestCompareGolden previews an upgrade of the shop from 2.0.0 (testdata/shop-2.0.0.yaml) to 2.1.0, and a first
// install, as text and as JSON.
func TestCompareGolden(t *testing.T) {
	oldIn := input(loadApp(t, "testdata/shop-2.0.0.yaml"))
	oldIn.Revision = 1
	prev, err := Render(oldIn)
	if err != nil {
		t.Fatal(err)
	}
	next := loadApp(t, "../app/testdata/shop.yaml")
	in := input(next)
	in.Revision = 2
	in.Workloads = Workloads(prev, next)
	in.Values = Values{Replicas: map[string]int{"api": 3}}
	cur, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		prev, next *Manifest
	}{{"compare-upgrade", prev, cur}, {"compare-install", nil, cur}, {"compare-uninstall", prev, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			ch := Compare(tc.prev, tc.next)
			if ch.Empty() {
				t.Error("Empty")
			}
			checkGolden(t, tc.name+".txt", []byte(ch.String()))
			js, err := json.MarshalIndent(ch, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name+".json", append(js, '\n'))
		})
	}
	up := Compare(prev, cur)
	web := up.Components[slices.IndexFunc(up.Components, func(c ComponentChange) bool { return c.Name == "web" })]
	if web.Change != ChangeRenamed || web.FormerName != "frontend" || web.Workload != "frontend" {
		t.Errorf("web: %+v", web)
	}
	if slices.ContainsFunc(up.Deleted, func(r ObjectRef) bool { return r.Kind == "Deployment" && r.Name == "frontend" }) {
		t.Error("the renamed component's Deployment is deleted")
	}
}

// TestCompareSame checks that a new revision of the same version and values changes nothing, and that a value
// change names the variable but never its value.
func TestCompareSame(t *testing.T) {
	a := loadApp(t, "../app/testdata/shop.yaml")
	in := input(a)
	m1, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Revision++
	m2, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if ch := Compare(m1, m2); !ch.Empty() {
		t.Errorf("not empty:\n%s", ch)
	}
	in.Values.Env = map[string]map[string]string{"postgres": {"POSTGRES_PASSWORD": "hunter2-secret"}}
	m3, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	ch := Compare(m2, m3)
	if ch.Empty() || len(ch.Components) != 1 || ch.Components[0].Env == nil || !slices.Equal(ch.Components[0].Env.Changed, []string{"POSTGRES_PASSWORD"}) {
		t.Errorf("changes:\n%s", ch)
	}
	js, _ := json.Marshal(ch)
	for _, out := range []string{ch.String(), string(js)} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "change-me") {
			t.Errorf("a value leaks into the preview:\n%s", out)
		}
	}
}
