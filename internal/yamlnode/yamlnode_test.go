package yamlnode

import (
	"reflect"
	"testing"
)

func TestClosest(t *testing.T) {
	fields := map[string]int{"privateKey": 0, "password": 0, "image": 0, "mountPath": 0}
	for _, c := range []struct{ in, want string }{
		{"private_key", "privateKey"}, // another spelling
		{"PASSWORD", "password"},      // another case
		{"pasword", "password"},       // one typo
		{"imgae", "image"},            // a transposition counts once
		{"privateKeyPath", "privateKey"},
		{"mountpath", "mountPath"},
		{"replicas", ""},
		{string(make([]byte, 100)), ""},
	} {
		if got := Closest(c.in, fields); got != c.want {
			t.Errorf("Closest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"web", "web", 0}, {"wbe", "web", 1}, {"web", "wet", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}} {
		if got := Distance(c.a, c.b); got != c.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

func TestFieldsAndPaths(t *testing.T) {
	type inner struct {
		Port int `yaml:"port"`
	}
	type outer struct {
		Name   string `yaml:"name,omitempty"`
		Inner  inner  `yaml:",inline"`
		Hidden string `yaml:"-"`
		Plain  bool
		secret string
	}
	got := Fields(reflect.TypeFor[outer]())
	if len(got) != 3 || got["name"] == nil || got["port"] == nil || got["plain"] == nil {
		t.Fatalf("Fields = %v", got)
	}
	if p := KeyPath(JoinPath("spec", "nodeSelector"), "kubernetes.io/os"); p != `spec.nodeSelector["kubernetes.io/os"]` {
		t.Errorf("KeyPath = %s", p)
	}
	if p := KeyPath("", "web"); p != "web" {
		t.Errorf("KeyPath = %s", p)
	}
}
