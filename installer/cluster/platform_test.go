package cluster

import (
	"strings"
	"testing"
)

// TestPlatformInsecureHTTP: spec.platform.insecureHTTP is a plain bool, off by default, read with its line; turning
// it on is allowed but warned about; a wrong type or a misspelling is an error naming the line and the field.
func TestPlatformInsecureHTTP(t *testing.T) {
	const head = "apiVersion: wutong.io/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec:\n" +
		"  hosts:\n    - {name: a, address: 10.0.0.1, agent: true, roles: [control-plane, registry]}\n"
	parse := func(t *testing.T, tail string) (*Cluster, error) {
		t.Helper()
		return Parse("x.yaml", []byte(head+tail), ParseOptions{LookupEnv: lookup(map[string]string{"HOME": "/h"})})
	}
	warnings := func(c *Cluster) []string {
		var out []string
		for _, w := range c.Warnings() {
			out = append(out, FormatProblem(c.File(), w))
		}
		return out
	}

	t.Run("off by default", func(t *testing.T) {
		c, err := parse(t, "  platform: {nodePort: 30443}\n")
		if err != nil {
			t.Fatal(err)
		}
		if c.Spec.Platform.InsecureHTTP {
			t.Error("insecureHTTP must default to false")
		}
		for _, w := range warnings(c) {
			if strings.Contains(w, "insecureHTTP") {
				t.Errorf("warning without insecureHTTP: %s", w)
			}
		}
	})
	t.Run("on, with a warning on its line", func(t *testing.T) {
		c, err := parse(t, "  platform:\n    insecureHTTP: true\n")
		if err != nil {
			t.Fatal(err)
		}
		if !c.Spec.Platform.InsecureHTTP {
			t.Fatal("insecureHTTP: true was not read")
		}
		ws := c.Warnings()
		if len(ws) != 1 || ws[0].Line != 8 || ws[0].Path != "spec.platform.insecureHTTP" || !strings.Contains(ws[0].Msg, "plain HTTP") {
			t.Errorf("warnings %v, want one on line 8 for spec.platform.insecureHTTP", warnings(c))
		}
		// Round trip: Marshal writes it, Parse reads it back.
		out, err := Marshal(c)
		if err != nil || !strings.Contains(string(out), "insecureHTTP: true") {
			t.Fatalf("marshal: %v\n%s", err, out)
		}
		c2, err := Parse("x.yaml", out, ParseOptions{LookupEnv: lookup(map[string]string{"HOME": "/h"})})
		if err != nil || !c2.Spec.Platform.InsecureHTTP {
			t.Errorf("round trip: %v", err)
		}
	})
	t.Run("no warning when the platform is not installed", func(t *testing.T) {
		c, err := parse(t, "  platform: {enabled: false, insecureHTTP: true}\n")
		if err != nil {
			t.Fatal(err)
		}
		if ws := warnings(c); len(ws) != 0 {
			t.Errorf("warnings %v", ws)
		}
	})
	for _, tc := range []struct{ name, tail, want string }{
		{"a string is not a bool", "  platform:\n    nodePort: 30080\n    insecureHTTP: \"yes\"\n",
			`x.yaml:9: spec.platform.insecureHTTP: expected true or false, found "yes"`},
		{"a number is not a bool", "  platform: {insecureHTTP: 1}\n",
			`x.yaml:7: spec.platform.insecureHTTP: expected true or false, found "1"`},
		{"a list is not a bool", "  platform:\n    insecureHTTP: [true]\n",
			`x.yaml:8: spec.platform.insecureHTTP: expected true or false, found a list`},
		{"misspelled", "  platform:\n    insecureHttp: true\n",
			`x.yaml:8: spec.platform.insecureHttp: unknown field "insecureHttp"; did you mean "insecureHTTP"?`},
		{"in the wrong place", "  insecureHTTP: true\n",
			`x.yaml:7: spec.insecureHTTP: unknown field "insecureHTTP"; it belongs in spec.platform`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.tail)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want %q, got %v", tc.want, err)
			}
		})
	}
}
