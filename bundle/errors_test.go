package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// tarArchive compresses the tar stream body writes, without a manifest or signature unless body adds them.
func tarArchive(body func(tw *tar.Writer)) []byte {
	var buf bytes.Buffer
	zw := must(zstd.NewWriter(&buf))
	tw := tar.NewWriter(zw)
	body(tw)
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// signedHead writes manifest bytes mb and its signature by key, as the first two entries.
func signedHead(t *testing.T, tw *tar.Writer, key ed25519.PrivateKey, mb []byte) {
	sb, err := Sign(mb, key)
	if err != nil {
		t.Fatal(err)
	}
	reg(tw, ManifestName, mb)
	reg(tw, SignatureName, sb)
}

// TestErrorsDoNotRepeatLongNames builds archives whose names are as long as archive/tar lets them be (a PAX record
// of up to 1 MiB) and checks that no error repeats them: errors are logged, stored and returned by the API.
func TestErrorsDoNotRepeatLongNames(t *testing.T) {
	key := newKey(t)
	trusted := ReadOptions{Keys: []ed25519.PublicKey{pub(key)}}
	long := strings.Repeat("a", 1_000_000)
	n1, n2 := "b/"+strings.Repeat("b", 4000), "c/"+strings.Repeat("c", 4000) // within MaxNameLength
	a := []byte("alpha")
	withEntries := func(es ...Entry) *Manifest { m := testManifest(); m.APIVersion = APIVersion; m.Entries = es; return m }
	keyID := Fingerprint(pub(key))
	sigValue := base64.StdEncoding.EncodeToString(make([]byte, ed25519.SignatureSize))
	cases := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"first entry has a 1 MB name", tarArchive(func(tw *tar.Writer) { reg(tw, long, a) }), "1000000 bytes"},
		{"unlisted entry has a 1 MB name", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) { reg(tw, long, a) }),
			"1000000 bytes"},
		{"listed symlink's tar link name is 1 MB", rawArchive(t, key, withEntries(fileEntry("t", a), link("l", "t")), func(tw *tar.Writer) {
			reg(tw, "t", a)
			tw.WriteHeader(&tar.Header{Name: "l", Linkname: long, Typeflag: tar.TypeSymlink})
		}), "1000000 bytes"},
		{"hardlink has a 1 MB name", rawArchive(t, key, withEntries(fileEntry("a", a)), func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: long, Linkname: "a", Typeflag: tar.TypeLink})
		}), "1000000 bytes"},
		{"manifest lists a 1 MB path", rawArchive(t, key, withEntries(fileEntry(long, a)), func(tw *tar.Writer) { reg(tw, long, a) }),
			"1000000 bytes"},
		{"manifest lists a 1 MB symlink target", rawArchive(t, key, withEntries(link("l", long)), func(tw *tar.Writer) {}),
			"1000000 bytes"},
		{"manifest has a 1 MB unknown field", tarArchive(func(tw *tar.Writer) {
			signedHead(t, tw, key, []byte(`{"apiVersion":"`+APIVersion+`","`+long+`":1}`))
		}), "unknown field"},
		{"two 4000-byte names out of order", rawArchive(t, key, withEntries(fileEntry(n1, a), fileEntry(n2, a)), func(tw *tar.Writer) {
			reg(tw, n2, a)
			reg(tw, n1, a)
		}), "(4002 bytes)"},
		{"signature names a 3000-byte algorithm", tarArchive(func(tw *tar.Writer) {
			reg(tw, ManifestName, []byte("{}"))
			reg(tw, SignatureName, []byte(`{"algorithm":"`+strings.Repeat("x", 3000)+`"}`))
		}), "unsupported algorithm"},
		{"signature has a 3000-byte key id", tarArchive(func(tw *tar.Writer) {
			reg(tw, ManifestName, []byte("{}"))
			reg(tw, SignatureName, []byte(fmt.Sprintf(`{"algorithm":"ed25519","keyId":%q,"value":%q}`, keyID+strings.Repeat("x", 3000), sigValue)))
		}), "keyId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tc.archive), trusted)
			if err == nil {
				err = r.Verify(context.Background())
				r.Close()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if len(msg) > 1024 {
				t.Fatalf("error of %d bytes (want under 1 KiB): %.300s…", len(msg), msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not mention %q", msg, tc.want)
			}
		})
	}
}

func TestQuoteName(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"files/amd64/wtctl", `"files/amd64/wtctl"`},
		{"tab\there", `"tab\there"`},
		{strings.Repeat("x", 300), `"` + strings.Repeat("x", maxQuoted-2) + `"…(300 bytes)`},
		{strings.Repeat("\xff", 300), `"` + strings.Repeat(`\xff`, (maxQuoted-2)/4) + `"…(300 bytes)`},
		{strings.Repeat("界", 100), `"` + strings.Repeat("界", (maxQuoted-2)/3) + `"…(300 bytes)`},
	}
	for _, tc := range cases {
		if got := quoteName(tc.in); got != tc.want {
			t.Errorf("quoteName(%.20q…) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
