// Package parts splits a bundle archive (NAME-VERSION.tar.zst) into numbered
// part files small enough for FAT32 USB sticks, and checks and joins them again.
//
// Each part file is named <archive>.partNNN (1-based, three digits) and starts
// with a fixed 512-byte header: the magic line "WUTONG-PART/1\n", a compact
// JSON object (see Header) and '\n'/space padding. The payload follows the
// header; concatenating the payloads in order gives back the archive byte for
// byte. Every header carries a random set id shared by all parts of one split,
// the part's index, the part count, its offset and size within the archive,
// the sha256 of its payload and the archive's total size. A missing, renamed,
// foreign, truncated or corrupt part is therefore named (file, index, what was
// expected, what was found, how to fix it) before anything is extracted.
//
// An empty archive is split into exactly one part with an empty payload.
// A set has at most MaxParts parts.
package parts

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	// HeaderSize is the fixed size of the header at the start of every part file.
	HeaderSize = 512
	// MaxPartSize is the FAT32 file-size limit (4 GiB - 1). A whole part file,
	// header included, is never larger.
	MaxPartSize int64 = 4<<30 - 1
	// MaxParts is the largest number of parts in one set (three-digit suffix).
	MaxParts = 999
	// Magic is the first line of every part header.
	Magic = "WUTONG-PART/1\n"
)

// Kinds of part problems. A *PartError unwraps to one of them, so callers can
// test with errors.Is(err, parts.ErrChecksum) and so on.
var (
	ErrNotPart     = errors.New("not a part file")
	ErrBadHeader   = errors.New("damaged part header")
	ErrMissingPart = errors.New("missing part")
	ErrExtraPart   = errors.New("extra part")
	ErrForeignPart = errors.New("part of another set")
	ErrRenamedPart = errors.New("renamed part")
	ErrSize        = errors.New("wrong part file size")
	ErrChecksum    = errors.New("sha256 mismatch")
)

// PartError reports a problem with one part file of a set.
type PartError struct {
	Part     string // path of the part file; for a missing part, the path where it was expected
	Index    int    // 1-based part number (for a renamed part: the number its header holds); 0 if unknown
	Count    int    // number of parts in the set; 0 if unknown
	Expected string // what was expected (a digest, a size, a set id…); may be empty
	Actual   string // what was found; for a missing part, the part file it was expected next to
	Reason   string // what is wrong, in words
	Hint     string // how to fix it
	Kind     error  // one of the Err* kinds of this package
	Err      error  // underlying cause, if any
}

// Error renders e.g.
// "part 2 of 5 (demo-0.1.0.tar.zst.part002): sha256 mismatch: expected ab12…, got cd34…; <hint>".
func (e *PartError) Error() string {
	var b strings.Builder
	name := filepath.Base(e.Part)
	switch {
	case e.Kind == ErrMissingPart:
		fmt.Fprintf(&b, "part %d of %d is missing: expected %s", e.Index, e.Count, name)
		if e.Actual != "" {
			fmt.Fprintf(&b, " next to %s", e.Actual)
		}
	case e.Kind == ErrRenamedPart && e.Index > 0 && e.Count > 0:
		fmt.Fprintf(&b, "%s holds part %d of %d", name, e.Index, e.Count)
		if e.Reason != "" {
			b.WriteString(" " + e.Reason)
		}
	default:
		switch {
		case e.Index > 0 && e.Count > 0:
			fmt.Fprintf(&b, "part %d of %d (%s)", e.Index, e.Count, name)
		case e.Index > 0:
			fmt.Fprintf(&b, "part %d (%s)", e.Index, name)
		default:
			fmt.Fprintf(&b, "part file %s", name)
		}
		e.writeDetail(&b)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *PartError) writeDetail(b *strings.Builder) {
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.Expected != "" || e.Actual != "" {
		fmt.Fprintf(b, ": expected %s, got %s", e.Expected, e.Actual)
	}
}

// Unwrap returns the kind and the underlying cause.
func (e *PartError) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// PartName returns the name of part index (1-based) of archive, e.g.
// PartName("demo-0.1.0.tar.zst", 1) == "demo-0.1.0.tar.zst.part001". archive may be a path.
func PartName(archive string, index int) string {
	return fmt.Sprintf("%s.part%03d", archive, index)
}

// parsePartName splits a base name "<archive>.partNNN" into archive and index.
func parsePartName(name string) (archive string, index int, ok bool) {
	i := strings.LastIndex(name, ".part")
	if i <= 0 {
		return "", 0, false
	}
	digits := name[i+len(".part"):]
	if len(digits) != 3 {
		return "", 0, false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return "", 0, false
		}
	}
	n, _ := strconv.Atoi(digits)
	if n < 1 {
		return "", 0, false
	}
	return name[:i], n, true
}

// IsPart reports whether path looks like a part file: its name ends in
// .partNNN, or the file starts with the part magic.
func IsPart(path string) bool {
	if _, _, ok := parsePartName(filepath.Base(path)); ok {
		return true
	}
	return hasMagic(path)
}

func hasMagic(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(Magic))
	if _, err := io.ReadFull(f, buf); err != nil {
		return false
	}
	return string(buf) == Magic
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "ki": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gi": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "ti": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// ParseSize parses a part size: a number of bytes with an optional unit.
// K, M, G, T, KiB, MiB, GiB, TiB are powers of 1024; KB, MB, GB, TB are powers
// of 1000; units are case-insensitive and a fraction is allowed ("3.5G").
// Examples: "4G", "3900M", "1GiB", "512MiB", "700MB", "123".
//
// The result must be larger than HeaderSize and at most MaxPartSize. Exactly
// 4 GiB ("4G", "4GiB", "4096M"), which is how people name the FAT32 limit, is
// taken as MaxPartSize (4 GiB - 1).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("parse part size %q: want a byte count with an optional unit, "+
			"e.g. 4G, 3900M, 1GiB, 512MiB, 700MB or 123 (K, M, G, KiB, MiB, GiB are powers of 1024; "+
			"KB, MB, GB are powers of 1000)", s)
	}
	var n int64
	tooLarge := false
	if strings.Contains(num, ".") {
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("parse part size %q: %q is not a number; use e.g. 3.5G or 3900M", s, num)
		}
		v := f * float64(mult)
		if v >= math.MaxInt64/2 {
			tooLarge = true
		} else {
			n = int64(v)
		}
	} else {
		u, err := strconv.ParseInt(num, 10, 64)
		if err != nil || u > math.MaxInt64/mult {
			tooLarge = true
		} else {
			n = u * mult
		}
	}
	if n == 4<<30 {
		n = MaxPartSize
	}
	if tooLarge || n > MaxPartSize {
		return 0, fmt.Errorf("parse part size %q: more than the FAT32 file-size limit of %d bytes (4 GiB - 1); use 4G or less", s, MaxPartSize)
	}
	if n <= HeaderSize {
		return 0, fmt.Errorf("parse part size %q: %d bytes is too small, a part must be larger than its %d-byte header; use e.g. 1G", s, n, HeaderSize)
	}
	return n, nil
}

// causeOf strips an *fs.PathError so a message can name the file itself once.
func causeOf(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
