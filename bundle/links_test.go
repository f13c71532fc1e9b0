package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func link(p, target string) Entry { return Entry{Path: p, Type: TypeSymlink, Target: target} }

// chainDepth is deeper than any temp directory a test runs in, so that climbing this many levels above the
// extraction directory reaches the file system root.
const chainDepth = 24

// linkCase is a set of entries whose every symlink target, cleaned lexically on its own, stays inside the archive.
type linkCase struct {
	name    string
	entries []Entry
	escape  map[string]string // entry -> where it really resolves once every link exists ("/" or "/etc/passwd")
	want    string            // substring of the refusal
}

// refusedLinkCases are symlink sets the reader must refuse. The ones with escape really leave the extraction
// directory when extracted as listed; TestLinkChainsAreRefused proves that on a real file system.
func refusedLinkCases() []linkCase {
	dir := strings.TrimSuffix(strings.Repeat("d/", chainDepth), "/")      // d/d/.../d, chainDepth levels
	toRoot := strings.TrimSuffix(strings.Repeat("../", chainDepth), "/")  // from dir back to the root
	climb := strings.TrimSuffix(strings.Repeat("../", chainDepth+1), "/") // as many as dir/up has components
	upThenOut := []Entry{link(dir+"/up", toRoot), link(dir+"/escape", "up/"+climb+"/etc/passwd"), link(dir+"/escape-dir", "up/"+climb)}
	steps := []Entry{link("a/up1", "..")}
	for i := 2; i <= 30; i++ {
		steps = append(steps, link(fmt.Sprintf("a/up%d", i), fmt.Sprintf("up%d/..", i-1)))
	}
	x := []byte("x")
	return []linkCase{
		{
			name:    "target passes through a link that climbs back to the root",
			entries: upThenOut,
			escape:  map[string]string{dir + "/escape": "/etc/passwd", dir + "/escape-dir": "/"},
			want:    fmt.Sprintf(`its target "up/%s/etc/passwd" passes through symlink "%s/up"; links may not point at or through other links`, climb, dir),
		},
		{
			name:    "the link passed through comes later in the archive",
			entries: []Entry{upThenOut[1], upThenOut[2], upThenOut[0]},
			escape:  map[string]string{dir + "/escape": "/etc/passwd", dir + "/escape-dir": "/"},
			want:    fmt.Sprintf(`passes through symlink "%s/up"`, dir),
		},
		{
			name:    "each link climbs one step further through the one before",
			entries: steps,
			escape:  map[string]string{"a/up30": "/"},
			want:    `unsafe entry "a/up2" refused: its target "up1/.." passes through symlink "a/up1"`,
		},
		{
			name:    "a link points at a link",
			entries: []Entry{fileEntry("a/f", x), link("a/l1", "f"), link("a/l2", "l1")},
			want:    `its target "l1" points at symlink "a/l1"`,
		},
		{
			name:    "a link points at itself",
			entries: []Entry{link("a/l", "./l")},
			want:    `its target "./l" points at itself`,
		},
		{
			name:    "two links point at each other",
			entries: []Entry{link("a/x", "y"), link("a/y", "x")},
			want:    `points at symlink "a/y"`,
		},
		{
			name:    "a target climbs above the root before coming back",
			entries: []Entry{fileEntry("a/f", x), link("a/l", "../../a/f")},
			want:    `its target "../../a/f" escapes the archive: it climbs above the archive root at "../.."`,
		},
		{
			name:    "a file's path goes through a link listed after it",
			entries: []Entry{fileEntry("l/x", x), link("l", "a")},
			want:    `its path goes through symlink "l"`,
		},
	}
}

// materialize creates entries under root the way a naive extraction would: directories, files and links as listed.
func materialize(t *testing.T, root string, entries []Entry) {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if e.IsSymlink() {
			err = os.Symlink(e.Target, p)
		} else {
			err = os.WriteFile(p, []byte("x"), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// inside reports whether p is root or below it.
func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// linkArchive is a signed archive listing entries, with a tar entry for each, as the manifest says.
func linkArchive(t testing.TB, key ed25519.PrivateKey, entries []Entry) []byte {
	m := testManifest()
	m.APIVersion = APIVersion
	m.Entries = entries
	return rawArchive(t, key, m, func(tw *tar.Writer) {
		for _, e := range entries {
			if e.IsSymlink() {
				tw.WriteHeader(&tar.Header{Name: e.Path, Linkname: e.Target, Typeflag: tar.TypeSymlink, Mode: 0o777})
				continue
			}
			reg(tw, e.Path, []byte("x"))
		}
	})
}

func TestLinkChainsAreRefused(t *testing.T) {
	key := newKey(t)
	opts := ReadOptions{Keys: []ed25519.PublicKey{pub(key)}}
	for _, tc := range refusedLinkCases() {
		t.Run(tc.name, func(t *testing.T) {
			// The fixture is real: created on disk as listed, these links resolve outside the directory.
			if len(tc.escape) > 0 {
				root, err := filepath.EvalSymlinks(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				materialize(t, root, tc.entries)
				links := map[string]string{}
				for _, e := range tc.entries {
					if e.IsSymlink() {
						links[e.Path] = e.Target
					}
				}
				for p, want := range tc.escape {
					got, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(p)))
					if err != nil || got != want {
						t.Fatalf("fixture: %s resolves to %q (%v), want %q outside %s", p, got, err, want, root)
					}
					if _, out := resolveInArchive(p, links); !out {
						t.Fatalf("fixture: the test resolver keeps %s inside the archive, the kernel resolves it to %s", p, got)
					}
				}
			}

			_, err := ParseManifest(mustMarshal(t, tc.entries))
			wantUnsafe(t, "ParseManifest", err, tc.want)

			archive := linkArchive(t, key, tc.entries)
			for _, mode := range []string{"verify", "extract"} {
				parent := t.TempDir()
				dest := filepath.Join(parent, "out")
				err := verifyOrExtract(mode, archive, opts, dest)
				if err == nil && mode == "extract" {
					for p := range tc.escape {
						got, rerr := filepath.EvalSymlinks(filepath.Join(dest, filepath.FromSlash(p)))
						t.Errorf("extract accepted the archive: %s resolves to %q (%v), outside %s", p, got, rerr, dest)
					}
				}
				wantUnsafe(t, mode, err, tc.want)
				if ents, _ := os.ReadDir(parent); len(ents) != 0 {
					t.Fatalf("%s: left %d files behind in %s", mode, len(ents), parent)
				}
			}
		})
	}
}

func wantUnsafe(t *testing.T, what string, err error, want string) {
	t.Helper()
	var ue *UnsafeEntryError
	switch {
	case err == nil:
		t.Errorf("%s: accepted; want a refusal mentioning %q", what, want)
	case !errors.As(err, &ue):
		t.Errorf("%s: error %T (%v) is not an *UnsafeEntryError", what, err, err)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q does not mention %q", what, err, want)
	}
}

func mustMarshal(t testing.TB, entries []Entry) []byte {
	m := testManifest()
	m.APIVersion = APIVersion
	m.Entries = entries
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSafeLinksAreAccepted lists links that climb, use "." and "//", and point at directories: all resolve inside
// the archive with one hop, and extraction keeps them as written.
func TestSafeLinksAreAccepted(t *testing.T) {
	x := []byte("x")
	entries := []Entry{
		fileEntry("a/b/f", x),
		fileEntry("c/g", x),
		link("a/b/sibling", "f"),
		link("a/b/cousin", "../../c/g"),
		link("a/b/dir", "../../c"),
		link("a/b/dotted", "./.././b//f"),
		link("a/b/root", "../.."),
		link("top", "a/b/f"),
		link("a/b/missing", "../x/../../c/g"), // x does not exist: the kernel stops there, and the walk stays inside
	}
	if _, err := ParseManifest(mustMarshal(t, entries)); err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	key := newKey(t)
	r, err := NewReader(bytes.NewReader(linkArchive(t, key, entries)), ReadOptions{Keys: []ed25519.PublicKey{pub(key)}})
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	dest := filepath.Join(t.TempDir(), "out")
	if _, err := Extract(context.Background(), r, dest); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	dest, _ = filepath.EvalSymlinks(dest)
	links := map[string]string{}
	for _, e := range entries {
		if e.IsSymlink() {
			links[e.Path] = e.Target
		}
	}
	for _, e := range entries {
		p := filepath.Join(dest, filepath.FromSlash(e.Path))
		if e.IsSymlink() {
			if got, err := os.Readlink(p); err != nil || got != e.Target {
				t.Errorf("%s: link %q (%v), want %q", e.Path, got, err, e.Target)
			}
		}
		resolved, out := resolveInArchive(e.Path, links)
		if out {
			t.Errorf("%s: the test resolver says it leaves the archive (%s)", e.Path, resolved)
		}
		if got, err := filepath.EvalSymlinks(p); err == nil {
			if !inside(dest, got) || got != filepath.Join(dest, filepath.FromSlash(resolved)) {
				t.Errorf("%s: resolves to %s, the test resolver says %s", e.Path, got, resolved)
			}
		} else if path.Base(e.Path) != "missing" {
			t.Errorf("%s: %v", e.Path, err)
		}
	}
}
