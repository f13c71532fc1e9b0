package app

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes, seeded with every YAML file in testdata. It may never panic; whatever it
// accepts must validate, and its canonical form must survive Decode and Canonical again byte for byte.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"testdata/*.yaml", "testdata/*/*.yaml"} {
		m, _ := filepath.Glob(pattern)
		seeds = append(seeds, m...)
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(header + "components: [{name: a, image: a:1, ports: [{port: 1}], probes: {liveness: {tcp: {port: 1}}}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data)
		if err != nil {
			_ = err.Error()
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("Parse accepted an app that Validate refuses: %v\ninput:\n%s", err, data)
		}
		canon, err := a.Canonical()
		if err != nil {
			t.Fatalf("Canonical of a parsed app: %v\ninput:\n%s", err, data)
		}
		b, err := Decode(canon)
		if err != nil {
			t.Fatalf("Decode(Canonical): %v\ncanonical: %s", err, canon)
		}
		again, err := b.Canonical()
		if err != nil {
			t.Fatalf("Canonical of a decoded app: %v", err)
		}
		if !bytes.Equal(canon, again) {
			t.Fatalf("canonical form not stable:\n%s\n%s", canon, again)
		}
	})
}
