package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUnfinished(t *testing.T) {
	r := func(run string, kind RecordKind, phase, host, errText string) Record {
		return Record{Run: run, Kind: kind, Phase: phase, Host: host, Error: errText}
	}
	for _, tc := range []struct {
		name string
		recs []Record
		want string // "" for nil
	}{
		{"no journal", nil, ""},
		{"clean", []Record{r("1", KindRunStarted, "", "", ""), r("1", KindPhaseStarted, "a", "", ""), r("1", KindRunFinished, "", "", "")}, ""},
		{"host failed", []Record{
			r("1", KindRunStarted, "", "", ""), r("1", KindPhaseStarted, "node prep", "", ""),
			r("1", KindHostFailed, "node prep", "lab2", "exit status 1"), r("1", KindRunFinished, "", "", "x"),
		}, `lab2 failed in phase "node prep": exit status 1`},
		{"phase failed", []Record{r("1", KindRunStarted, "", "", ""), r("1", KindPhaseFailed, "certs", "", "no CA"), r("1", KindRunFinished, "", "", "")},
			`phase "certs" failed: no CA`},
		{"interrupted", []Record{r("1", KindRunStarted, "", "", ""), r("1", KindPhaseStarted, "b", "", ""), r("1", KindInterrupted, "b", "", ""), r("1", KindRunFinished, "", "", "")},
			`run 1 was interrupted in phase "b"`},
		{"crashed", []Record{r("1", KindRunStarted, "", "", ""), r("1", KindPhaseStarted, "b", "", "")},
			`run 1 stopped in phase "b" without finishing`},
		{"only the last run counts", []Record{
			r("1", KindRunStarted, "", "", ""), r("1", KindHostFailed, "a", "lab2", "x"), r("1", KindRunFinished, "", "", "x"),
			r("2", KindRunStarted, "", "", ""), r("2", KindRunFinished, "", "", ""),
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Unfinished(tc.recs)
			got := ""
			if l != nil {
				got = l.String()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadJournalSkipsTornLines(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.add(Record{Run: "1", Kind: KindRunStarted}, time.Now); err != nil {
		t.Fatal(err)
	}
	j.close()
	f, err := os.OpenFile(filepath.Join(dir, JournalFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"run":"1","kind":"phase-sta` + "\n")
	f.Close()
	j, _ = openJournal(dir)
	j.add(Record{Run: "1", Kind: KindRunFinished}, time.Now)
	j.close()
	recs, err := ReadJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Kind != KindRunStarted || recs[1].Kind != KindRunFinished {
		t.Errorf("records %+v", recs)
	}
	if recs, err := ReadJournal(filepath.Join(dir, "none")); err != nil || recs != nil {
		t.Errorf("missing journal: %v %v", recs, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, JournalFile))
	if strings.Count(string(b), "\n") != 3 {
		t.Errorf("journal:\n%s", b)
	}
}
