package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// hostLog is one host's log file, WORKDIR/logs/HOST.log (0600), appended to by every run. A nil *hostLog drops
// everything.
type hostLog struct {
	mu  sync.Mutex
	f   *os.File
	p   string
	now func() time.Time
}

func openHostLog(workdir, host, runID string, now func() time.Time) (*hostLog, error) {
	dir := filepath.Join(workdir, "logs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	p := filepath.Join(dir, host+".log")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open host log: %w", err)
	}
	l := &hostLog{f: f, p: p, now: now}
	l.printf("=== run %s ===", runID)
	return l, nil
}

func (l *hostLog) printf(format string, args ...any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.f, "%s %s\n", l.now().Format("2006-01-02T15:04:05.000Z07:00"), fmt.Sprintf(format, args...))
}

func (l *hostLog) path() string {
	if l == nil {
		return ""
	}
	return l.p
}

func (l *hostLog) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.f.Close()
}
