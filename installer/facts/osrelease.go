package facts

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
)

// ParseOSRelease reads os-release(5): KEY=value, KEY="double quoted" (backslash escapes \" \\ \$ \`),
// KEY='single quoted', comments and blank lines. Unknown keys are ignored. A malformed line is an error naming
// its line number; the OS returned with it still holds every well-formed line, so a caller may use it.
//
// ID is lower-cased (openEuler → openeuler). Codename is VERSION_CODENAME, else the text in parentheses of
// VERSION. For Kylin, ServicePack is derived from the codename.
func ParseOSRelease(r io.Reader) (OS, error) {
	vars := map[string]string{}
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		key, val, ok, err := parseOSReleaseLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		if ok {
			vars[key] = val
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	o := OS{
		ID:         strings.ToLower(vars["ID"]),
		IDLike:     strings.Fields(vars["ID_LIKE"]),
		Name:       vars["NAME"],
		Version:    vars["VERSION"],
		VersionID:  vars["VERSION_ID"],
		Codename:   vars["VERSION_CODENAME"],
		PrettyName: vars["PRETTY_NAME"],
	}
	if len(o.IDLike) == 0 {
		o.IDLike = nil
	}
	if o.Codename == "" {
		o.Codename = parenthesized(o.Version)
	}
	if o.ID == "kylin" {
		o.ServicePack = KylinServicePack(o.Codename)
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("parse os-release: %w", errors.Join(errs...))
	}
	return o, nil
}

// parseOSReleaseLine returns the assignment on line; ok is false for blank and comment lines.
func parseOSReleaseLine(line string) (key, val string, ok bool, err error) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", "", false, nil
	}
	key, raw, found := strings.Cut(line, "=")
	if !found {
		return "", "", false, fmt.Errorf("no '=' in %q", clip(line))
	}
	if !validKey(key) {
		return "", "", false, fmt.Errorf("bad variable name %q", clip(key))
	}
	val, err = unquote(raw)
	if err != nil {
		return "", "", false, fmt.Errorf("%s: %w", key, err)
	}
	return key, val, true, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquote undoes shell quoting of one os-release value. Concatenated quoted strings are not supported.
func unquote(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	var b strings.Builder
	switch q := raw[0]; q {
	case '\'':
		end := strings.IndexByte(raw[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated single quote")
		}
		if rest := strings.TrimSpace(raw[end+2:]); rest != "" {
			return "", fmt.Errorf("text after closing quote: %q", clip(rest))
		}
		return raw[1 : end+1], nil
	case '"':
		for i := 1; i < len(raw); i++ {
			switch c := raw[i]; c {
			case '"':
				if rest := strings.TrimSpace(raw[i+1:]); rest != "" {
					return "", fmt.Errorf("text after closing quote: %q", clip(rest))
				}
				return b.String(), nil
			case '\\':
				// Inside double quotes a backslash escapes only $ ` " \ (as in the shell); otherwise it is literal.
				if i+1 < len(raw) && strings.IndexByte("$`\"\\", raw[i+1]) >= 0 {
					i++
					b.WriteByte(raw[i])
				} else {
					b.WriteByte(c)
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("unterminated double quote")
	}
	// Unquoted: a backslash escapes the next character. Spaces are tolerated although the shell would not be.
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) {
			i++
			c = raw[i]
		} else if c == '"' || c == '\'' {
			return "", fmt.Errorf("stray quote in %q", clip(raw))
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// parenthesized is the text inside the first (...) of s, trimmed: "V10 (Sword)" → "Sword".
func parenthesized(s string) string {
	_, after, ok := strings.Cut(s, "(")
	if !ok {
		return ""
	}
	in, _, ok := strings.Cut(after, ")")
	if !ok {
		return ""
	}
	in = strings.TrimSpace(in)
	if strings.EqualFold(in, "LTS") { // openEuler 24.03's "(LTS)" is a support term, not a codename
		return ""
	}
	return in
}

// KylinServicePack maps a Kylin Linux Advanced Server V10 codename to its service pack: Tercel→SP1, Sword→SP2,
// Lance→SP3, Halberd→SP3-2403. It is case-insensitive and returns "" for unknown codenames.
func KylinServicePack(codename string) string {
	switch strings.ToLower(strings.TrimSpace(codename)) {
	case "tercel":
		return "SP1"
	case "sword":
		return "SP2"
	case "lance":
		return "SP3"
	case "halberd":
		return "SP3-2403"
	}
	return ""
}

// productInfoRE matches Kylin's /etc/.productinfo release line, e.g.
// "release V10 (SP2) /(Sword)-x86_64-Build09/20210524": group 1 is the SP, group 2 the codename.
var productInfoRE = regexp.MustCompile(`\((SP[0-9][^)\s]*)\)\s*/?\s*(?:\(([A-Za-z]+)\))?`)

// parseProductInfo returns the service pack and codename named in a Kylin .productinfo text.
func parseProductInfo(text string) (sp, codename string) {
	m := productInfoRE.FindStringSubmatch(text)
	if m == nil {
		return "", ""
	}
	sp, codename = m[1], m[2]
	if byName := KylinServicePack(codename); byName != "" {
		sp = byName // Halberd says (SP3) but is SP3-2403
	}
	return sp, codename
}

// collectOS reads /etc/os-release (else /usr/lib/os-release) and, for Kylin without a known codename,
// /etc/.productinfo. It returns an error only when no os-release could be read.
func (c *collector) collectOS(f *Facts) error {
	var (
		data []byte
		err  error
	)
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if data, err = os.ReadFile(c.path(p)); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("read os-release: %w", err)
	}
	o, perr := ParseOSRelease(strings.NewReader(string(data)))
	if perr != nil {
		c.warn("%v", perr)
	}
	if o.ID == "kylin" && o.ServicePack == "" {
		pi, err := os.ReadFile(c.path("/etc/.productinfo"))
		switch {
		case err == nil:
			sp, codename := parseProductInfo(string(pi))
			o.ServicePack = sp
			if o.Codename == "" {
				o.Codename = codename
			}
		case !errors.Is(err, fs.ErrNotExist):
			c.warn("read kylin productinfo: %v", err)
		}
	}
	f.OS = o
	return nil
}
