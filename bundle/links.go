package bundle

import (
	"fmt"
	"path"
	"strings"
)

// MaxNameLength bounds entry paths and symlink targets, in bytes, as PATH_MAX does on Linux. Longer names are
// refused before they are used anywhere else.
const MaxNameLength = 4096

// CheckLinkTarget refuses a symlink target that is empty, absolute, or climbs above the archive root at any step of
// its walk from the link's directory. It knows nothing of the archive's other links: Manifest.Validate also refuses
// targets that point at or pass through another link, which CheckLinkTarget alone cannot see.
func CheckLinkTarget(linkPath, target string) error {
	if why := linkProblem(linkPath, target, nil); why != "" {
		return fmt.Errorf("symlink %s: %s", quoteName(linkPath), why)
	}
	return nil
}

// linkProblem says why the symlink at linkPath (a checked entry path) may not have target, or returns "". links holds
// the path of every symlink in the archive, nil for none.
//
// The target is walked as the kernel resolves it, component by component from the link's directory, without
// cleaning it first: path.Clean would turn "up/../.." into "." even when up is itself a link to "..", which the
// kernel follows. So every ".." is checked against the root where it occurs, and every prefix against the links.
// A target may not point at or through another link: then every link resolves in one hop, through real
// directories only, and what the walk finds is what the kernel finds.
func linkProblem(linkPath, target string, links map[string]bool) string {
	switch {
	case target == "":
		return "its target is empty"
	case len(target) > MaxNameLength:
		return fmt.Sprintf("its target is %d bytes, over the %d-byte limit", len(target), MaxNameLength)
	case strings.HasPrefix(target, "/"):
		return fmt.Sprintf("its target %s is an absolute path, outside the archive; use a path relative to the link", quoteName(target))
	case strings.ContainsRune(target, 0):
		return fmt.Sprintf("its target %s contains a NUL byte", quoteName(target))
	}
	var cur []string // the walk so far, from the archive root
	if d := path.Dir(linkPath); d != "." {
		cur = strings.Split(d, "/")
	}
	const noChains = "links may not point at or through other links"
	for end, rest := 0, target; rest != ""; {
		c, after, _ := strings.Cut(rest, "/")
		end += len(rest) - len(after)
		rest = after
		switch c {
		case "", ".":
		case "..":
			if len(cur) == 0 {
				return fmt.Sprintf("its target %s escapes the archive: it climbs above the archive root at %s", quoteName(target), quoteName(strings.TrimSuffix(target[:end], "/")))
			}
			cur = cur[:len(cur)-1]
		default:
			cur = append(cur, c)
			p := strings.Join(cur, "/")
			switch {
			case !links[p]:
			case p == linkPath:
				return fmt.Sprintf("its target %s points at itself", quoteName(target))
			case onlyDots(rest):
				return fmt.Sprintf("its target %s points at symlink %s; %s", quoteName(target), quoteName(p), noChains)
			default:
				return fmt.Sprintf("its target %s passes through symlink %s; %s", quoteName(target), quoteName(p), noChains)
			}
		}
	}
	return ""
}

// onlyDots reports whether the rest of a path names the same place, like "", "/" or "./.".
func onlyDots(rest string) bool {
	for _, c := range strings.Split(rest, "/") {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}

// checkNoLinkParent refuses an entry path that goes through a symlink of the archive. With linkProblem and os.Root
// during extraction, this keeps every write and every link inside the target directory.
func checkNoLinkParent(p string, links map[string]bool) error {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if links[d] {
			return &UnsafeEntryError{Entry: p, Reason: fmt.Sprintf("its path goes through symlink %s; no entry may be inside a linked directory", quoteName(d))}
		}
	}
	return nil
}

// symlinkSet is the path of every symlink that m lists.
func symlinkSet(m *Manifest) map[string]bool {
	links := map[string]bool{}
	for _, e := range m.Entries {
		if e.IsSymlink() {
			links[e.Path] = true
		}
	}
	return links
}
