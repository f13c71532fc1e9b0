package password

import (
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		p := Generate()
		if len(p) != Length || strings.ContainsAny(p, "0O1lI") || seen[p] {
			t.Fatalf("generated %q", p)
		}
		for _, r := range p {
			if !strings.ContainsRune(Alphabet, r) {
				t.Fatalf("%q holds %q, not in the alphabet", p, r)
			}
		}
		seen[p] = true
	}
}
