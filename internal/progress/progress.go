// Package progress shows byte progress for long steps: a bar with bytes, rate and ETA on a terminal, and a few
// plain lines otherwise (logs, CI, pipes), so that output stays readable everywhere.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar reports the progress of one step. It is safe for concurrent use.
type Bar struct {
	mu      sync.Mutex
	w       io.Writer
	title   string
	total   int64
	done    int64
	start   time.Time
	nextPct int64
	bar     *progressbar.ProgressBar
	closed  bool
}

// IsTerminal reports whether v (a writer, or a reader such as stdin) is a terminal.
func IsTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New starts a bar for title with total bytes (0 or less when unknown). On a terminal it draws a bar; otherwise it
// prints a line at start, at every 25% and at the end.
func New(w io.Writer, title string, total int64) *Bar {
	b := &Bar{w: w, title: title, total: total, start: time.Now()}
	if IsTerminal(w) {
		b.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(title),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
		return b
	}
	if total > 0 {
		fmt.Fprintf(w, "%s: %s\n", title, Bytes(total))
	} else {
		fmt.Fprintf(w, "%s\n", title)
	}
	b.nextPct = 25
	return b
}

// Add records n more bytes.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if b.bar != nil {
		b.bar.Add64(n)
		return
	}
	if b.total <= 0 {
		return
	}
	for b.nextPct < 100 && b.done*100 >= b.nextPct*b.total {
		el := time.Since(b.start)
		eta := time.Duration(float64(el) * float64(b.total-b.done) / float64(b.done))
		fmt.Fprintf(b.w, "%s: %d%% (%s of %s, %s/s, ETA %s)\n", b.title, b.nextPct, Bytes(b.done), Bytes(b.total), Bytes(rate(b.done, el)), eta.Round(time.Second))
		b.nextPct += 25
	}
}

// Done ends the bar and prints the total and the rate.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	if b.bar != nil {
		b.bar.Finish()
		return
	}
	el := time.Since(b.start)
	fmt.Fprintf(b.w, "%s: done, %s in %s (%s/s)\n", b.title, Bytes(b.done), el.Round(time.Millisecond), Bytes(rate(b.done, el)))
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// Bytes formats n in binary units, e.g. "1.5 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
