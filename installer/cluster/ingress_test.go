package cluster

import (
	"strings"
	"testing"
)

// TestIngress: spec.ingress.enabled defaults to true, false is read and kept through Marshal, a wrong type is an
// error on its line, and the registry may not take the ingress controller's ports while it is enabled.
func TestIngress(t *testing.T) {
	const head = "apiVersion: wutong.io/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec:\n" +
		"  hosts:\n    - {name: a, address: 10.0.0.1, agent: true, roles: [control-plane, registry]}\n"
	parse := func(t *testing.T, tail string) (*Cluster, error) {
		t.Helper()
		return Parse("x.yaml", []byte(head+tail), ParseOptions{LookupEnv: lookup(map[string]string{"HOME": "/h"})})
	}

	t.Run("on by default", func(t *testing.T) {
		c, err := parse(t, "")
		if err != nil {
			t.Fatal(err)
		}
		if !c.Spec.Ingress.IsEnabled() || c.Spec.Ingress.Enabled == nil {
			t.Error("spec.ingress.enabled must default to true")
		}
		if (Ingress{}).IsEnabled() != true {
			t.Error("an unset Ingress must count as enabled")
		}
	})
	t.Run("off, and kept through Marshal", func(t *testing.T) {
		c, err := parse(t, "  ingress:\n    enabled: false\n")
		if err != nil {
			t.Fatal(err)
		}
		if c.Spec.Ingress.IsEnabled() {
			t.Fatal("enabled: false was not read")
		}
		out, err := Marshal(c)
		if err != nil || !strings.Contains(string(out), "ingress:\n    enabled: false") || !strings.Contains(string(out), "# The ingress controller") {
			t.Fatalf("marshal: %v\n%s", err, out)
		}
		c2, err := Parse("x.yaml", out, ParseOptions{LookupEnv: lookup(map[string]string{"HOME": "/h"})})
		if err != nil || c2.Spec.Ingress.IsEnabled() {
			t.Errorf("round trip: enabled %v, %v", c2 != nil && c2.Spec.Ingress.IsEnabled(), err)
		}
	})
	t.Run("wrong type or field", func(t *testing.T) {
		for _, tail := range []string{"  ingress:\n    enabled: maybe\n", "  ingress:\n    enable: true\n"} {
			_, err := parse(t, tail)
			if err == nil || !strings.Contains(err.Error(), "x.yaml:8") || !strings.Contains(err.Error(), "spec.ingress.enable") {
				t.Errorf("%q: err = %v, want one on line 8 naming spec.ingress.enable…", tail, err)
			}
		}
	})
	t.Run("registry port", func(t *testing.T) {
		for _, tc := range []struct {
			tail string
			bad  bool
		}{
			{"  registry: {port: 443}\n", true},
			{"  registry: {port: 80}\n", true},
			{"  registry: {port: 443}\n  ingress: {enabled: false}\n", false},
			{"  registry: {port: 5443}\n", false},
		} {
			_, err := parse(t, tc.tail)
			if bad := err != nil && strings.Contains(err.Error(), "ingress controller"); bad != tc.bad {
				t.Errorf("%q: err = %v, want an ingress port clash: %v", tc.tail, err, tc.bad)
			}
			if !tc.bad && err != nil {
				t.Errorf("%q: %v", tc.tail, err)
			}
		}
	})
}
