package images

import (
	"strings"
	"testing"
)

func TestPlatform(t *testing.T) {
	for _, tc := range []struct {
		arch    string
		wantErr bool
	}{
		{"amd64", false},
		{"arm64", false},
		{"loong64", false},
		{"x86_64", true},
		{"arm", true},
		{"", true},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			p, err := Platform(tc.arch)
			if ValidArch(tc.arch) == tc.wantErr {
				t.Errorf("ValidArch(%q) = %v", tc.arch, !tc.wantErr)
			}
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "amd64, arm64, loong64") {
					t.Fatalf("Platform(%q) error = %v, want one listing the valid arches", tc.arch, err)
				}
				return
			}
			if err != nil || p.OS != "linux" || p.Architecture != tc.arch || p.Variant != "" {
				t.Fatalf("Platform(%q) = %+v, %v", tc.arch, p, err)
			}
		})
	}
}

func TestCheckArches(t *testing.T) {
	for _, tc := range []struct {
		arches  []string
		wantErr string
	}{
		{[]string{"amd64"}, ""},
		{[]string{"loong64", "amd64", "arm64"}, ""},
		{nil, "no arches"},
		{[]string{"amd64", "amd64"}, "twice"},
		{[]string{"amd64", "riscv64"}, `unknown arch "riscv64"`},
	} {
		err := checkArches(tc.arches)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("checkArches(%q) = %v, want %q", tc.arches, err, tc.wantErr)
		}
	}
}
