package facts

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    OS
		wantErr string // substring; "" means no error
	}{
		{
			name: "kylin sword",
			in: `NAME="Kylin Linux Advanced Server"
VERSION="V10 (Sword)"
ID="kylin"
VERSION_ID="V10"
PRETTY_NAME="Kylin Linux Advanced Server V10 (Sword)"
ANSI_COLOR="0;31"
`,
			want: OS{ID: "kylin", Name: "Kylin Linux Advanced Server", Version: "V10 (Sword)", VersionID: "V10",
				Codename: "Sword", PrettyName: "Kylin Linux Advanced Server V10 (Sword)", ServicePack: "SP2"},
		},
		{
			name: "unquoted, single quoted, comments, blank lines, CRLF",
			in:   "# comment\r\n\r\n  ID=Debian  \r\nNAME='Debian GNU/Linux'\r\n\t# indented comment\r\nVERSION_ID=12\r\n",
			want: OS{ID: "debian", Name: "Debian GNU/Linux", VersionID: "12"},
		},
		{
			name: "VERSION_CODENAME wins over parentheses",
			in:   "ID=ubuntu\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nVERSION_CODENAME=jammy\nID_LIKE=debian\n",
			want: OS{ID: "ubuntu", IDLike: []string{"debian"}, Version: "22.04.4 LTS (Jammy Jellyfish)", Codename: "jammy"},
		},
		{
			name: "codename with a space from parentheses",
			in:   "ID=\"rocky\"\nVERSION=\"9.3 (Blue Onyx)\"\nID_LIKE=\"rhel centos fedora\"\n",
			want: OS{ID: "rocky", IDLike: []string{"rhel", "centos", "fedora"}, Version: "9.3 (Blue Onyx)", Codename: "Blue Onyx"},
		},
		{
			name: "escapes in double quotes",
			in:   `NAME="a \"quoted\" \$HOME \` + "`x`" + ` back\\slash \n kept"` + "\nID=x\\ y\n",
			want: OS{ID: "x y", Name: `a "quoted" $HOME ` + "`x`" + ` back\slash \n kept`},
		},
		{
			name: "single quotes keep backslashes",
			in:   `NAME='C:\dir "q"'`,
			want: OS{Name: `C:\dir "q"`},
		},
		{
			name: "empty values and unknown keys",
			in:   "ID=\nFOO_BAR2=\"x\"\nVERSION=\"\"\n",
			want: OS{},
		},
		{
			name: "UTF-8 BOM",
			in:   "\ufeffID=uos\n",
			want: OS{ID: "uos"},
		},
		{
			name: "kylin lower-case codename still maps",
			in:   "ID=KYLIN\nVERSION=\"V10 (halberd)\"\n",
			want: OS{ID: "kylin", Version: "V10 (halberd)", Codename: "halberd", ServicePack: "SP3-2403"},
		},
		{
			name: "service pack only for kylin",
			in:   "ID=uos\nVERSION=\"20 (Sword)\"\n",
			want: OS{ID: "uos", Version: "20 (Sword)", Codename: "Sword"},
		},
		{
			name:    "no equals sign; good lines still parsed",
			in:      "ID=debian\nthis is not an assignment\nVERSION_ID=12\n",
			want:    OS{ID: "debian", VersionID: "12"},
			wantErr: "line 2: no '='",
		},
		{
			name:    "bad key",
			in:      "ID=a\n1ABC=x\n",
			want:    OS{ID: "a"},
			wantErr: "line 2: bad variable name",
		},
		{
			name:    "unterminated double quote",
			in:      "\n\nNAME=\"Kylin\n",
			wantErr: "line 3: NAME: unterminated double quote",
		},
		{
			name:    "unterminated single quote",
			in:      "NAME='Kylin\n",
			wantErr: "line 1: NAME: unterminated single quote",
		},
		{
			name:    "concatenated strings",
			in:      `NAME="a""b"`,
			wantErr: "line 1: NAME: text after closing quote",
		},
		{
			name:    "stray quote in unquoted value",
			in:      `NAME=a"b`,
			wantErr: "line 1: NAME: stray quote",
		},
		{
			name:    "two bad lines are both named",
			in:      "a\nb\n",
			wantErr: "line 2:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOSRelease(strings.NewReader(tt.in))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// personaDir holds the os-release files of the OSes we support; the lab installs them on its hosts.
const personaDir = "../../scripts/lab/personas"

func TestPersonaOSRelease(t *testing.T) {
	want := map[string]OS{
		"debian12":           {ID: "debian", VersionID: "12", Codename: "bookworm"},
		"ubuntu2204":         {ID: "ubuntu", VersionID: "22.04", Codename: "jammy"},
		"kylin-v10-sp1":      {ID: "kylin", VersionID: "V10", Codename: "Tercel", ServicePack: "SP1"},
		"kylin-v10-sp2":      {ID: "kylin", VersionID: "V10", Codename: "Sword", ServicePack: "SP2"},
		"kylin-v10-sp3":      {ID: "kylin", VersionID: "V10", Codename: "Lance", ServicePack: "SP3"},
		"kylin-v10-sp3-2403": {ID: "kylin", VersionID: "V10", Codename: "Halberd", ServicePack: "SP3-2403"},
		"uos20":              {ID: "uos", VersionID: "20", Codename: "kongzi"},
		"openeuler2203":      {ID: "openeuler", VersionID: "22.03", Codename: ""},
		"openeuler2403":      {ID: "openeuler", VersionID: "24.03", Codename: ""},
		"anolis8":            {ID: "anolis", VersionID: "8.8", Codename: ""},
		"rocky9":             {ID: "rocky", VersionID: "9.3", Codename: "Blue Onyx"},
	}
	files, err := filepath.Glob(filepath.Join(personaDir, "*.os-release"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".os-release")
		seen[name] = true
		if _, ok := want[name]; !ok {
			t.Errorf("persona %s has no expectation in this test", name)
		}
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			if !seen[name] {
				t.Fatalf("missing %s/%s.os-release", personaDir, name)
			}
			b, err := os.ReadFile(filepath.Join(personaDir, name+".os-release"))
			if err != nil {
				t.Fatal(err)
			}
			o, err := ParseOSRelease(strings.NewReader(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			got := OS{ID: o.ID, VersionID: o.VersionID, Codename: o.Codename, ServicePack: o.ServicePack}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("got %+v, want %+v", got, w)
			}
			if o.Name == "" || o.PrettyName == "" {
				t.Errorf("NAME or PRETTY_NAME missing: %+v", o)
			}
		})
	}
}

func TestKylinServicePack(t *testing.T) {
	for in, want := range map[string]string{
		"Tercel": "SP1", "sword": "SP2", "LANCE": "SP3", " Halberd ": "SP3-2403", "": "", "Juniper": "",
	} {
		if got := KylinServicePack(in); got != want {
			t.Errorf("KylinServicePack(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseProductInfo(t *testing.T) {
	tests := []struct{ in, sp, codename string }{
		{"Kylin Linux Advanced Server\nrelease V10 (SP2) /(Sword)-x86_64-Build09/20210524\n", "SP2", "Sword"},
		{"Kylin Linux Advanced Server\nrelease V10 (SP1) /(Tercel)-aarch64-Build20/20210518\n", "SP1", "Tercel"},
		{"Kylin Linux Advanced Server\nrelease V10 (SP3) /(Halberd)-x86_64-Build20/20240426\n", "SP3-2403", "Halberd"},
		{"Kylin Linux Advanced Server\nrelease V10 (SP3) /(Lance)-loongarch64-Build23/20230324\n", "SP3", "Lance"},
		{"release V10 (SP3)\n", "SP3", ""},
		{"Kylin Linux Advanced Server\nrelease V10\n", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		sp, cn := parseProductInfo(tt.in)
		if sp != tt.sp || cn != tt.codename {
			t.Errorf("parseProductInfo(%q) = %q, %q; want %q, %q", tt.in, sp, cn, tt.sp, tt.codename)
		}
	}
}

// formatOSRelease writes o as os-release, double-quoting and escaping every value.
func formatOSRelease(o OS) string {
	q := func(s string) string {
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`")
		return `"` + r.Replace(s) + `"`
	}
	var b strings.Builder
	for _, kv := range [][2]string{
		{"ID", o.ID}, {"ID_LIKE", strings.Join(o.IDLike, " ")}, {"NAME", o.Name}, {"VERSION", o.Version},
		{"VERSION_ID", o.VersionID}, {"VERSION_CODENAME", o.Codename}, {"PRETTY_NAME", o.PrettyName},
	} {
		b.WriteString(kv[0] + "=" + q(kv[1]) + "\n")
	}
	return b.String()
}

func FuzzParseOSRelease(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(personaDir, "*.os-release"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("ID='a b'\nNAME=\"x\\\"y\"\n# c\n\nVERSION=\"1 (Sword)\"\nID=kylin")
	f.Add("ID=\"unterminated\nX=1")
	f.Add("\ufeffA=b\\ c")
	f.Fuzz(func(t *testing.T, in string) {
		o, err := ParseOSRelease(strings.NewReader(in))
		if err != nil {
			if !strings.Contains(err.Error(), "parse os-release") {
				t.Fatalf("error not wrapped: %v", err)
			}
			return
		}
		if o.ID != strings.ToLower(o.ID) {
			t.Fatalf("ID %q not lower-cased", o.ID)
		}
		if o.ServicePack != "" && (o.ID != "kylin" || o.ServicePack != KylinServicePack(o.Codename)) {
			t.Fatalf("service pack %q for ID %q codename %q", o.ServicePack, o.ID, o.Codename)
		}
		if o.Codename == "" && parenthesized(o.Version) != "" {
			t.Fatalf("codename empty although VERSION %q has one", o.Version)
		}
		for _, l := range o.IDLike {
			if l == "" || strings.ContainsAny(l, " \t\n") {
				t.Fatalf("ID_LIKE element %q", l)
			}
		}
		// What we parsed, written back as os-release, parses to the same thing.
		again, err := ParseOSRelease(strings.NewReader(formatOSRelease(o)))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", formatOSRelease(o), err)
		}
		if !reflect.DeepEqual(o, again) {
			t.Fatalf("round trip changed\n%+v\n%+v", o, again)
		}
	})
}
