package cluster

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds Parse (and FromKubeKey) arbitrary bytes, seeded with every YAML file in testdata. Neither may
// panic, and whatever Parse accepts must keep its promises and survive Marshal and Parse again
// (unless it holds a literal secret, which Marshal redacts).
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	more, _ := filepath.Glob("testdata/*/*.yaml")
	for _, p := range append(seeds, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	set := func(string) (string, bool) { return "v", true }
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, err := FromKubeKey("fuzz.yaml", data); err != nil {
			_ = err.Error()
		}
		c, err := Parse("fuzz.yaml", data, ParseOptions{LookupEnv: set, Dir: "/fuzz"})
		if err != nil {
			_ = err.Error()
			return
		}
		if len(c.Spec.Hosts) == 0 || len(c.ControlPlanes()) == 0 || len(c.Registries()) == 0 {
			t.Fatalf("accepted a cluster without hosts, a control plane or a registry: %+v", c.Spec.Hosts)
		}
		seen := map[string]bool{}
		for _, h := range c.Spec.Hosts {
			if seen[h.Name] || !validSubdomain(h.Name) || !isIP(h.InternalAddress) || !hasAuth(h.SSH().Endpoint) {
				t.Fatalf("accepted a bad host %+v", h)
			}
			seen[h.Name] = true
		}
		out, err := Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of an accepted cluster: %v", err)
		}
		if bytes.Contains(out, []byte(Redacted)) {
			return // a literal secret is written redacted, and Parse rightly refuses that
		}
		if _, err := Parse("fuzz.yaml", out, ParseOptions{LookupEnv: set, Dir: "/fuzz"}); err != nil {
			t.Fatalf("Parse(Marshal(c)) failed: %v\ninput:\n%s\noutput:\n%s", err, data, out)
		}
	})
}
