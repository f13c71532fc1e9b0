package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestPlainLines(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "write bundle", 1000)
	for i := 0; i < 10; i++ {
		b.Add(100)
	}
	b.Done()
	b.Done() // idempotent
	out := buf.String()
	for _, want := range []string{"write bundle: 1000 B\n", "25%", "50%", "75%", "done, 1000 B"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 5 {
		t.Fatalf("want 5 lines (start, 3 quarters, done), got %d:\n%s", n, out)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 29: "1.5 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
