// Package clip bounds text that came from outside (archive entry names, request fields, parser messages) before it
// goes into an error, a log line or the store, so that a hostile input cannot make them large.
package clip

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Quote quotes s for a message: Go-quoted, so control characters and invalid UTF-8 show as escapes, and cut to at
// most max bytes, quotes included, with its full length added when cut, e.g. "aaaa…"…(1000000 bytes).
func Quote(s string, max int) string {
	if len(s) <= max/4-2 {
		return strconv.Quote(s) // short enough whatever it holds
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		q := strconv.Quote(s[i : i+size])
		q = q[1 : len(q)-1]
		if b.Len()+len(q)+1 > max {
			fmt.Fprintf(&b, `"…(%d bytes)`, len(s))
			return b.String()
		}
		b.WriteString(q)
		i += size
	}
	b.WriteByte('"')
	return b.String()
}

// Text cuts s to at most max bytes without splitting a character, adding its full length when cut.
func Text(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)", Prefix(s, max), len(s))
}

// Prefix is the longest prefix of s of at most max bytes that does not split a character.
func Prefix(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
