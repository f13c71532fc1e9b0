package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestQuote(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"a/b", 256, `"a/b"`},
		{"tab\there", 256, `"tab\there"`},
		{strings.Repeat("a", 300), 20, `"aaaaaaaaaaaaaaaaaa"…(300 bytes)`},
		{strings.Repeat("名", 100), 20, `"名名名名名名"…(300 bytes)`},
		{"\xff\xfe" + strings.Repeat("x", 100), 12, `"\xff\xfexx"…(102 bytes)`},
	} {
		got := Quote(c.in, c.max)
		if got != c.want {
			t.Errorf("Quote(%.20q…, %d) = %s, want %s", c.in, c.max, got, c.want)
		}
		if quoted, _, _ := strings.Cut(got, "…("); len(quoted) > c.max {
			t.Errorf("Quote(%.20q…, %d): the quoted part is %d bytes", c.in, c.max, len(quoted))
		}
	}
}

func TestText(t *testing.T) {
	if got := Text("short", 10); got != "short" {
		t.Errorf("Text(short) = %q", got)
	}
	got := Text(strings.Repeat("名", 10), 10) // 30 bytes; 10 would split the fourth character
	if got != "名名名…(30 bytes)" || !utf8.ValidString(got) {
		t.Errorf("Text = %q", got)
	}
	if p := Prefix("ab名", 4); p != "ab" {
		t.Errorf("Prefix = %q", p)
	}
}
