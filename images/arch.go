package images

import (
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Arches we support, as Go/OCI architecture names. Every image and binary in
// a bundle exists once per arch the bundle is built for.
var Arches = []string{"amd64", "arm64", "loong64"}

// ValidArch reports whether arch is one of Arches.
func ValidArch(arch string) bool {
	return slices.Contains(Arches, arch)
}

// Platform returns the OCI platform linux/<arch>. An arch outside Arches is
// an error that lists the valid ones.
func Platform(arch string) (v1.Platform, error) {
	if !ValidArch(arch) {
		return v1.Platform{}, fmt.Errorf("unknown arch %q (valid: %s)", arch, strings.Join(Arches, ", "))
	}
	return v1.Platform{OS: "linux", Architecture: arch}, nil
}

// checkArches validates a requested arch list: non-empty, known, no repeats.
func checkArches(arches []string) error {
	if len(arches) == 0 {
		return fmt.Errorf("no arches requested (valid: %s)", strings.Join(Arches, ", "))
	}
	for i, a := range arches {
		if _, err := Platform(a); err != nil {
			return err
		}
		if slices.Contains(arches[:i], a) {
			return fmt.Errorf("arch %q requested twice", a)
		}
	}
	return nil
}

// platformString renders a platform as os/arch[/variant].
func platformString(p *v1.Platform) string {
	if p == nil {
		return "unknown"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
