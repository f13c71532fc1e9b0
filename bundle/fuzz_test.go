package bundle

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"strings"
	"testing"
)

// maxHops is how many symlinks resolveInArchive follows before it gives up, as the kernel does with ELOOP.
const maxHops = 40

// resolveInArchive follows p, a slash-separated path relative to the archive root, through the archive's symlinks
// (links: path -> target) the way the kernel does: component by component, each link's target read from the link's
// directory, nothing cleaned beforehand. Names that are not links are taken as directories. It returns where p
// ends up and whether the walk left the root at any point. A walk that runs out of hops (a loop) fails to resolve on
// a real file system too, so it does not count as leaving.
func resolveInArchive(p string, links map[string]string) (string, bool) {
	var cur []string
	pending := strings.Split(p, "/")
	for hops := 0; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
		case "..":
			if len(cur) == 0 {
				return "..", true
			}
			cur = cur[:len(cur)-1]
		default:
			next := strings.Join(append(cur[:len(cur):len(cur)], c), "/")
			t, isLink := links[next]
			if !isLink {
				cur = append(cur, c)
				continue
			}
			if hops++; hops > maxHops {
				return next, false
			}
			if strings.HasPrefix(t, "/") {
				return t, true
			}
			pending = append(strings.Split(t, "/"), pending...)
		}
	}
	return strings.Join(cur, "/"), false
}

// checkResolvesInside fails when any of entries resolves outside the archive root through the symlinks among them.
func checkResolvesInside(t *testing.T, entries []Entry) {
	t.Helper()
	links := map[string]string{}
	for _, e := range entries {
		if e.IsSymlink() {
			links[e.Path] = e.Target
		}
	}
	for _, e := range entries {
		if got, out := resolveInArchive(e.Path, links); out {
			t.Fatalf("accepted entry %q resolves to %q, outside the archive (links: %q)", e.Path, got, links)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	m := testManifest()
	m.APIVersion = APIVersion
	m.Entries = []Entry{fileEntry("a/b", []byte("x")), {Path: "l", Type: TypeSymlink, Target: "a/b"}}
	mb, _ := m.Marshal()
	f.Add(mb)
	f.Add([]byte(`{"apiVersion":"wutong.io/v1alpha1","kind":"Bundle","name":"x","version":"1","entries":[{"path":"../x"}]}`))
	for _, tc := range refusedLinkCases() {
		f.Add(mustMarshal(f, tc.entries))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if len(err.Error()) > 2048 {
				t.Fatalf("error of %d bytes for %d bytes of input", len(err.Error()), len(data))
			}
			return
		}
		// Whatever parses must be safe to extract and must survive a round trip.
		for _, e := range m.Entries {
			if CheckPath(e.Path) != nil {
				t.Fatalf("unsafe path accepted: %q", e.Path)
			}
		}
		checkResolvesInside(t, m.Entries)
		again, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(again); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

func FuzzReader(f *testing.F) {
	key, _ := func() (ed25519.PrivateKey, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err }()
	var buf bytes.Buffer
	cs := []content{{path: "a", data: []byte("alpha")}, {path: "d/b", data: bytes.Repeat([]byte("b"), 3000)}, {path: "d/l", target: "b"}}
	Write(context.Background(), &buf, testManifest(), items(cs), WriteOptions{Key: key})
	f.Add(buf.Bytes())
	for _, tc := range refusedLinkCases() {
		f.Add(linkArchive(f, key, tc.entries))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), ReadOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer r.Close()
		var accepted []Entry
		for {
			e, rd, err := r.Next()
			if err != nil {
				break
			}
			if CheckPath(e.Path) != nil {
				t.Fatalf("unsafe path returned: %q", e.Path)
			}
			accepted = append(accepted, *e)
			n, err := io.Copy(io.Discard, rd)
			if err == nil && n != e.Size {
				t.Fatalf("entry %s: read %d bytes without error, manifest says %d", e.Path, n, e.Size)
			}
		}
		checkResolvesInside(t, accepted)
	})
}
