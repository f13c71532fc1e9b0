package parts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// maxReported caps how many problems Open lists in one error.
const maxReported = 20

// Set is a discovered, structurally checked set of parts. Payload digests are
// only checked by Reader, Verify and Join.
type Set struct {
	archive string // base name of the archive
	dir     string
	parts   []partFile // parts[i] holds part i+1
}

type partFile struct {
	path string
	hdr  Header
}

// candidate is a file named <archive>.partNNN found next to the given path.
type candidate struct {
	path    string
	nameIdx int
	hdr     *Header
	size    int64
	err     error
}

// Open discovers and checks the set of parts that path belongs to. path may be
// any part file, or the archive path itself when the archive does not exist
// but its parts do. Siblings are the files named <archive>.partNNN in the same
// directory. Before returning, Open reads every header (no payload hashing)
// and checks that all parts belong to one split, that every part 1..count is
// present exactly once under its own name, that each file has the size its
// header announces and that the payloads tile the archive. Every problem found
// is reported as a *PartError (several are joined), naming the file, what was
// expected and found, and how to fix it.
func Open(path string) (*Set, error) {
	s, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("open parts of %s: %w", path, err)
	}
	return s, nil
}

func open(path string) (*Set, error) {
	dir, name := filepath.Dir(path), filepath.Base(path)
	archive, _, named := parsePartName(name)
	st, statErr := os.Stat(path)
	given := path
	switch {
	case named:
		if statErr != nil {
			return nil, causeOf(statErr)
		}
	case errors.Is(statErr, fs.ErrNotExist):
		archive, given = name, ""
	case statErr != nil:
		return nil, causeOf(statErr)
	case st.IsDir():
		return nil, fmt.Errorf("%w: it is a directory", ErrNotPart)
	default:
		return nil, notNamedLikePart(path)
	}

	cands, err := discover(dir, archive)
	if err != nil {
		return nil, err
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: no %s.partNNN files in %s", fs.ErrNotExist, archive, dir)
	}
	ref := reference(cands, given)
	if ref == nil {
		return nil, joinProblems(headerProblems(cands, 0))
	}
	s := &Set{archive: archive, dir: dir}
	if problems := s.check(cands, ref); len(problems) > 0 {
		return nil, joinProblems(problems)
	}
	return s, nil
}

// notNamedLikePart explains a file that exists but is not named .partNNN.
func notNamedLikePart(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return causeOf(err)
	}
	defer f.Close()
	h, err := ReadHeader(f)
	if err != nil {
		return fmt.Errorf("%w: %s is not named <archive>.partNNN and does not start with a part header",
			ErrNotPart, filepath.Base(path))
	}
	want := PartName(h.Archive, h.Index)
	return &PartError{Part: path, Index: h.Index, Count: h.Count, Kind: ErrRenamedPart,
		Reason: "but is not named like a part", Hint: "rename it to " + want}
}

func discover(dir, archive string) ([]*candidate, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, causeOf(err)
	}
	var cands []*candidate
	for _, e := range entries {
		a, idx, ok := parsePartName(e.Name())
		if !ok || a != archive {
			continue
		}
		c := &candidate{path: filepath.Join(dir, e.Name()), nameIdx: idx}
		c.hdr, c.size, c.err = readPartHeader(c.path)
		cands = append(cands, c)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].nameIdx < cands[j].nameIdx })
	return cands, nil
}

func readPartHeader(path string) (*Header, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, causeOf(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, causeOf(err)
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%w: not a regular file", ErrNotPart)
	}
	h, err := ReadHeader(f)
	return h, st.Size(), err
}

// reference picks the part whose header defines the set: the given part if
// its header is readable, else the lowest-numbered readable part.
func reference(cands []*candidate, given string) *candidate {
	for _, c := range cands {
		if c.err == nil && given != "" && filepath.Clean(c.path) == filepath.Clean(given) {
			return c
		}
	}
	for _, c := range cands {
		if c.err == nil {
			return c
		}
	}
	return nil
}

const (
	hintRecopy  = "the file is damaged: copy it again from the USB stick"
	hintForeign = "parts of different bundles or splits are mixed: remove it and copy the right part from the USB stick"
	hintExtra   = "it is left over from another split: remove it"
)

func headerProblems(cands []*candidate, count int) []error {
	var problems []error
	for _, c := range cands {
		problems = append(problems, &PartError{Part: c.path, Index: c.nameIdx, Count: count,
			Kind: ErrBadHeader, Reason: "unreadable header", Err: c.err, Hint: hintRecopy})
	}
	return problems
}

// check validates every candidate against ref and fills s.parts.
func (s *Set) check(cands []*candidate, ref *candidate) []error {
	r := ref.hdr
	refName := filepath.Base(ref.path)
	var problems []error
	add := func(c *candidate, e *PartError) {
		e.Part = c.path
		if e.Kind != ErrExtraPart {
			e.Count = r.Count
		}
		if e.Index == 0 {
			e.Index = c.nameIdx
		}
		problems = append(problems, e)
	}
	byName := map[int]*candidate{}
	proper := map[int]*Header{} // headers of same-set files of the right name
	held := map[int]bool{}      // part numbers held by any same-set file
	renamed := map[int]bool{}   // file numbers whose file holds another part of the set
	for _, c := range cands {
		byName[c.nameIdx] = c
		if c.err == nil && c.hdr.SetID == r.SetID && c.hdr.Index == c.nameIdx {
			proper[c.nameIdx] = c.hdr
		}
	}
	for _, c := range cands {
		h := c.hdr
		switch {
		case c.err != nil && c.nameIdx > r.Count:
			add(c, &PartError{Kind: ErrExtraPart, Reason: "unexpected extra part with an unreadable header",
				Expected: fmt.Sprintf("at most %d parts (per %s)", r.Count, refName), Actual: "part " + strconv.Itoa(c.nameIdx),
				Err: c.err, Hint: hintExtra})
		case c.err != nil:
			add(c, &PartError{Kind: ErrBadHeader, Reason: "unreadable header", Err: c.err, Hint: hintRecopy})
		case h.SetID != r.SetID && c.nameIdx > r.Count:
			add(c, &PartError{Kind: ErrExtraPart, Reason: "unexpected extra part from another split",
				Expected: fmt.Sprintf("at most %d parts (per %s)", r.Count, refName), Actual: "part " + strconv.Itoa(c.nameIdx),
				Hint: hintExtra})
		case h.SetID != r.SetID:
			add(c, &PartError{Kind: ErrForeignPart, Reason: "belongs to another split",
				Expected: fmt.Sprintf("set %s of %s (as %s)", r.SetID, r.Archive, refName),
				Actual:   fmt.Sprintf("set %s of %s (part %d of %d)", h.SetID, h.Archive, h.Index, h.Count),
				Hint:     hintForeign})
		case h.Archive != s.archive:
			add(c, &PartError{Index: h.Index, Kind: ErrRenamedPart, Reason: "of archive " + h.Archive,
				Hint: fmt.Sprintf("the part files were renamed: rename them back to %s.partNNN", h.Archive)})
		case h.Count != r.Count || h.TotalSize != r.TotalSize:
			add(c, &PartError{Kind: ErrBadHeader, Reason: "header disagrees with " + refName,
				Expected: fmt.Sprintf("count %d, totalSize %d", r.Count, r.TotalSize),
				Actual:   fmt.Sprintf("count %d, totalSize %d", h.Count, h.TotalSize),
				Hint:     "one of the two headers is damaged: copy both parts again from the USB stick"})
		case h.Index != c.nameIdx && proper[h.Index] != nil && *proper[h.Index] != *h:
			// Two different headers claim the same part: this one is damaged.
			add(c, &PartError{Kind: ErrBadHeader, Reason: "header claims another part's number",
				Expected: fmt.Sprintf("part %d", c.nameIdx),
				Actual:   fmt.Sprintf("part %d, which %s holds", h.Index, filepath.Base(PartName(s.archive, h.Index))),
				Hint:     hintRecopy})
		case h.Index != c.nameIdx:
			held[h.Index], renamed[c.nameIdx] = true, true
			want := filepath.Base(PartName(s.archive, h.Index))
			hint := "part files were renamed or swapped: rename it to " + want
			if proper[h.Index] != nil {
				hint = "it is a copy of " + want + ": remove it"
			}
			add(c, &PartError{Index: h.Index, Kind: ErrRenamedPart, Hint: hint})
		case c.size != HeaderSize+h.Size:
			held[h.Index] = true
			reason := "file is truncated"
			if c.size > HeaderSize+h.Size {
				reason = "file has extra bytes at the end"
			}
			add(c, &PartError{Kind: ErrSize, Reason: reason,
				Expected: fmt.Sprintf("%d bytes", HeaderSize+h.Size), Actual: fmt.Sprintf("%d bytes", c.size),
				Hint: "copy it again from the USB stick (check the stick has room and the copy finished)"})
		default:
			held[h.Index] = true
		}
	}
	for i := 1; i <= r.Count; i++ {
		if !held[i] && (byName[i] == nil || renamed[i]) {
			want := PartName(filepath.Join(s.dir, s.archive), i)
			problems = append(problems, &PartError{Part: want, Index: i, Count: r.Count, Kind: ErrMissingPart,
				Expected: filepath.Base(want), Actual: refName,
				Hint: "copy the missing part from the USB stick into " + s.dir})
		}
	}
	if len(problems) > 0 {
		return problems
	}
	// Every part 1..count is present under its own name with a sane header.
	var offset int64
	for i := 1; i <= r.Count; i++ {
		c := byName[i]
		if c.hdr.Offset != offset {
			return []error{&PartError{Part: c.path, Index: i, Count: r.Count, Kind: ErrBadHeader,
				Reason:   "payload offset does not follow the previous part",
				Expected: strconv.FormatInt(offset, 10), Actual: strconv.FormatInt(c.hdr.Offset, 10), Hint: hintRecopy}}
		}
		offset += c.hdr.Size
		s.parts = append(s.parts, partFile{path: c.path, hdr: *c.hdr})
	}
	if offset != r.TotalSize {
		last := s.parts[len(s.parts)-1]
		return []error{&PartError{Part: last.path, Index: r.Count, Count: r.Count, Kind: ErrBadHeader,
			Reason:   "payloads do not add up to the archive size",
			Expected: fmt.Sprintf("%d bytes", r.TotalSize), Actual: fmt.Sprintf("%d bytes", offset), Hint: hintRecopy}}
	}
	return nil
}

func joinProblems(problems []error) error {
	if len(problems) > maxReported {
		more := len(problems) - maxReported
		problems = append(problems[:maxReported:maxReported], fmt.Errorf("and %d more problems", more))
	}
	return errors.Join(problems...)
}

// Parts returns the part paths in order.
func (s *Set) Parts() []string {
	paths := make([]string, len(s.parts))
	for i, p := range s.parts {
		paths[i] = p.path
	}
	return paths
}

// Headers returns the part headers in order.
func (s *Set) Headers() []Header {
	hs := make([]Header, len(s.parts))
	for i, p := range s.parts {
		hs[i] = p.hdr
	}
	return hs
}

// Archive returns the base name of the archive the parts make up.
func (s *Set) Archive() string { return s.archive }

// Dir returns the directory holding the parts.
func (s *Set) Dir() string { return s.dir }

// SetID returns the id shared by all parts of the set.
func (s *Set) SetID() string { return s.parts[0].hdr.SetID }

// TotalSize returns the size of the whole archive.
func (s *Set) TotalSize() int64 { return s.parts[0].hdr.TotalSize }
