package bundle

import (
	"fmt"
	"strings"
)

// IntegrityError says that an archive's content does not match its manifest, or is damaged. Callers map it to
// their own exit code; the message names the entry (or part), the expected and actual values, and a hint.
type IntegrityError struct {
	Entry    string // entry path, when the problem is in one entry
	Part     string // part file, when the archive was read from parts
	What     string // what differs: sha256, size, missing, unexpected, order, type, stream, truncated, ...
	Expected string
	Actual   string
	Hint     string
}

func (e *IntegrityError) Error() string {
	var b strings.Builder
	if e.Part != "" {
		fmt.Fprintf(&b, "%s: ", e.Part)
	}
	if e.Entry != "" {
		fmt.Fprintf(&b, "entry %s: ", e.Entry)
	}
	switch e.What {
	case "sha256", "size":
		fmt.Fprintf(&b, "%s mismatch: expected %s, actual %s", e.What, e.Expected, e.Actual)
	case "missing":
		fmt.Fprintf(&b, "missing from the archive (the manifest lists it)")
	default:
		b.WriteString(e.What)
		switch {
		case e.Expected != "":
			fmt.Fprintf(&b, ": expected %s, actual %s", e.Expected, orNone(e.Actual))
		case e.Actual != "":
			fmt.Fprintf(&b, ": %s", e.Actual)
		}
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

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
	return fmt.Sprintf("unsafe entry %q refused: %s", e.Entry, e.Reason)
}
