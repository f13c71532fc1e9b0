package engine

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// JournalFile is the journal's name in the workdir.
const JournalFile = "journal.jsonl"

// RecordKind is what a journal record says happened.
type RecordKind string

// Journal record kinds.
const (
	KindRunStarted   RecordKind = "run-started" // Reason: what the previous run left unfinished
	KindPhaseStarted RecordKind = "phase-started"
	KindPhaseSkipped RecordKind = "phase-skipped" // Reason: why
	KindPhaseDone    RecordKind = "phase-done"
	KindPhaseFailed  RecordKind = "phase-failed"
	KindHostStarted  RecordKind = "host-started"
	KindHostDone     RecordKind = "host-done" // Changes: what the gate changed in the phase
	KindHostFailed   RecordKind = "host-failed"
	KindStepStarted  RecordKind = "step-started" // Reason: new, inputs changed, not verified
	KindStepDone     RecordKind = "step-done"
	KindStepSkipped  RecordKind = "step-skipped" // Reason: done, verified / done, inputs unchanged
	KindStepFailed   RecordKind = "step-failed"
	KindInterrupted  RecordKind = "interrupted"  // with Host: that host's work; without: the run
	KindRunFinished  RecordKind = "run-finished" // Reason: ok, failed or interrupted; Changes: the total
)

// Record is one line of the journal.
type Record struct {
	Time    time.Time  `json:"time"`
	Run     string     `json:"run"`
	Kind    RecordKind `json:"kind"`
	Phase   string     `json:"phase,omitempty"`
	Host    string     `json:"host,omitempty"`
	Step    string     `json:"step,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	Error   string     `json:"error,omitempty"`
	Hint    string     `json:"hint,omitempty"`
	Changes int        `json:"changes,omitempty"`
}

// journal appends records to WORKDIR/journal.jsonl, each synced to disk before add returns, so that a crash or a
// pulled plug loses at most the record being written.
type journal struct {
	mu sync.Mutex
	f  *os.File
}

func openJournal(workdir string) (*journal, error) {
	if err := os.MkdirAll(workdir, 0o700); err != nil {
		return nil, fmt.Errorf("create workdir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(workdir, JournalFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &journal{f: f}, nil
}

// add stamps rec with now (under the lock, so that times rise down the file) and appends it.
func (j *journal) add(rec Record, now func() time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	rec.Time = now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return err
	}
	return j.f.Sync()
}

func (j *journal) sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Sync()
}

func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.f.Close()
}

// ReadJournal returns the records of WORKDIR/journal.jsonl, oldest first; none when there is no journal. A line
// that does not parse (one torn by a crash) is skipped.
func ReadJournal(workdir string) ([]Record, error) {
	f, err := os.Open(filepath.Join(workdir, JournalFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	var recs []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Kind != "" {
			recs = append(recs, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	return recs, nil
}

// Leftover is what the last run left unfinished.
type Leftover struct {
	RunID string
	// Failed holds the host-failed and phase-failed records.
	Failed []Record
	// Interrupted holds the interrupted records (the run's, and each host's that was working).
	Interrupted []Record
	// Finished is false when the run ended without a run-finished record (the jump host crashed, say).
	Finished  bool
	LastPhase string
}

// Unfinished looks at the last run in recs: nil when it finished without failures (or there is none).
func Unfinished(recs []Record) *Leftover {
	start := -1
	for i, r := range recs {
		if r.Kind == KindRunStarted {
			start = i
		}
	}
	if start < 0 {
		return nil
	}
	l := &Leftover{RunID: recs[start].Run}
	for _, r := range recs[start:] {
		if r.Run != l.RunID {
			continue
		}
		switch r.Kind {
		case KindPhaseStarted:
			l.LastPhase = r.Phase
		case KindHostFailed, KindPhaseFailed:
			l.Failed = append(l.Failed, r)
		case KindInterrupted:
			if r.Step == "" {
				l.Interrupted = append(l.Interrupted, r)
			}
		case KindRunFinished:
			l.Finished = true
		}
	}
	if l.Finished && len(l.Failed) == 0 && len(l.Interrupted) == 0 {
		return nil
	}
	return l
}

// String says what is left in one line, e.g. `lab2 failed in phase "node prep": …`.
func (l *Leftover) String() string {
	var parts []string
	for _, r := range l.Failed {
		if r.Host != "" {
			parts = append(parts, fmt.Sprintf("%s failed in phase %q: %s", r.Host, r.Phase, r.Error))
		} else {
			parts = append(parts, fmt.Sprintf("phase %q failed: %s", r.Phase, r.Error))
		}
	}
	for _, r := range l.Interrupted {
		if r.Host != "" {
			parts = append(parts, fmt.Sprintf("%s was interrupted in phase %q", r.Host, r.Phase))
		} else {
			parts = append(parts, fmt.Sprintf("run %s was interrupted in phase %q", l.RunID, r.Phase))
		}
	}
	if !l.Finished && len(l.Interrupted) == 0 {
		parts = append(parts, fmt.Sprintf("run %s stopped in phase %q without finishing", l.RunID, l.LastPhase))
	}
	return strings.Join(parts, "; ")
}
