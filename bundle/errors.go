package bundle

import (
	"fmt"
	"strings"

	"github.com/wutong-paas/wutong-offline/internal/clip"
)

// IntegrityError says that an archive's content does not match its manifest, or is damaged. Callers map it to
// their own exit code; the message names the entry (or part), the expected and actual values, and a hint.
//
// Names from an archive are untrusted: Error quotes the entry name and shortens it, and bounds the other fields,
// so a hostile archive cannot make the message (which is logged, stored and returned by the API) large.
type IntegrityError struct {
	Entry    string // entry path, when the problem is in one entry
	Part     string // part file, when the archive was read from parts
	What     string // what differs: sha256, size, missing, unexpected, order, type, stream, truncated, ...
	Expected string
	Actual   string
	Hint     string
	// Err is the underlying problem, when there is one (an *UnsafeEntryError in an invalid manifest, say); Actual
	// then holds its message.
	Err error
}

func (e *IntegrityError) Error() string {
	var b strings.Builder
	if e.Part != "" {
		fmt.Fprintf(&b, "%s: ", e.Part)
	}
	if e.Entry != "" {
		fmt.Fprintf(&b, "entry %s: ", quoteName(e.Entry))
	}
	expected, actual := clipText(e.Expected), clipText(e.Actual)
	switch e.What {
	case "sha256", "size":
		fmt.Fprintf(&b, "%s mismatch: expected %s, actual %s", e.What, expected, actual)
	case "missing":
		fmt.Fprintf(&b, "missing from the archive (the manifest lists it)")
	default:
		b.WriteString(clipText(e.What))
		switch {
		case expected != "":
			fmt.Fprintf(&b, ": expected %s, actual %s", expected, orNone(actual))
		case actual != "":
			fmt.Fprintf(&b, ": %s", actual)
		}
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(clipText(e.Hint))
	}
	return b.String()
}

// Unwrap returns the underlying problem, if any.
func (e *IntegrityError) Unwrap() error { return e.Err }

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// UnsafeEntryError says that an archive entry is hostile or unsupported (absolute path, '..', escaping link, device
// node, ...) and was refused before anything was written for it.
type UnsafeEntryError struct {
	Entry  string
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("unsafe entry %s refused: %s", quoteName(e.Entry), clipText(e.Reason))
}

// maxQuoted bounds a quoted name in messages, quotes included; maxText bounds any other text field of an error.
const (
	maxQuoted = 256
	maxText   = 768
)

// quoteName quotes a name that came from an archive for a message: Go-quoted, so control characters and invalid
// UTF-8 show as escapes, and cut to maxQuoted bytes with its full length added, e.g. "aaaa…"…(1000000 bytes).
func quoteName(s string) string { return clip.Quote(s, maxQuoted) }

// clipText cuts a message part of ours, which may embed names quoted by quoteName or text from a parser, to
// maxText bytes.
func clipText(s string) string { return clip.Text(s, maxText) }
