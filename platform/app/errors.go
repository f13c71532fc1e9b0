package app

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong in an app.
type Problem struct {
	// Line in app.yaml, 1-based; 0 when unknown (a model built in code or decoded from JSON).
	Line int
	// Field path such as components[web].ports[0].port. Entries of components and configGroups are named by their
	// name when it is valid and unique, by index otherwise; entries of every other list by index. Empty for the
	// document as a whole.
	Path string
	// What is wrong.
	Message string
	// How to fix it; may be empty when the message says it all.
	Fix string
}

// format renders p as FILE:LINE: PATH: MESSAGE (fix: FIX), leaving out what is unknown.
func (p Problem) format(file string) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.Path != "" {
		b.WriteString(": " + p.Path)
	}
	b.WriteString(": " + p.Message)
	if p.Fix != "" {
		b.WriteString(" (fix: " + p.Fix + ")")
	}
	return b.String()
}

// ValidationError is every problem found in an app, so that all can be fixed in one go. Problems with a line come
// first, in line order.
type ValidationError struct {
	// File the app came from, for messages. Default: app.yaml.
	File     string
	Problems []Problem
}

// Error prints one problem per line.
func (e *ValidationError) Error() string {
	file := e.File
	if file == "" {
		file = "app.yaml"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.format(file)
	}
	return strings.Join(lines, "\n")
}

// maxProblems is the most problems a ValidationError lists: past that, they are more noise than help.
const maxProblems = 200

// problem is a Problem while checking: path is by index (components[1].ports[0]), as lines are recorded.
type problem struct {
	path, msg, fix string
	line           int
}

// finish turns problems into a *ValidationError: lines from lineOf (may be nil), paths named by namer, sorted by
// line with those without a line last.
func finish(file string, ps []problem, lineOf func(string) int, names pathNamer) error {
	if len(ps) == 0 {
		return nil
	}
	out := make([]Problem, 0, len(ps))
	seen := map[Problem]bool{}
	for _, p := range ps {
		l := p.line
		if l == 0 && lineOf != nil {
			l = lineOf(p.path)
		}
		q := Problem{Line: l, Path: names.name(p.path), Message: p.msg, Fix: p.fix}
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := out[i].Line, out[j].Line
		return li != 0 && (lj == 0 || li < lj)
	})
	if n := len(out) - maxProblems; n > 0 {
		out = append(out[:maxProblems], Problem{Message: fmt.Sprintf("and %d more problems", n), Fix: "fix those above and check again"})
	}
	return &ValidationError{File: file, Problems: out}
}

// pathNamer rewrites index paths (components[1]) into name paths (components[web]).
type pathNamer map[string]string // "components[1]" → "components[web]"

var indexPrefix = regexp.MustCompile(`^(components|configGroups)\[(\d+)\]`)

// namesOf maps the entries of components and configGroups whose names are valid and unique to their names.
func namesOf(a *App) pathNamer {
	n := pathNamer{}
	if a == nil {
		return n
	}
	add := func(list string, names []string) {
		count := map[string]int{}
		for _, s := range names {
			count[s]++
		}
		for i, s := range names {
			if count[s] == 1 && dnsLabel.MatchString(s) {
				n[list+"["+strconv.Itoa(i)+"]"] = list + "[" + s + "]"
			}
		}
	}
	var cs, gs []string
	for _, c := range a.Components {
		cs = append(cs, c.Name)
	}
	for _, g := range a.ConfigGroups {
		gs = append(gs, g.Name)
	}
	add("components", cs)
	add("configGroups", gs)
	return n
}

func (n pathNamer) name(path string) string {
	m := indexPrefix.FindString(path)
	if m == "" {
		return path
	}
	if named, ok := n[m]; ok {
		return named + path[len(m):]
	}
	return path
}

// lister collects problems, with what the checks of one app share.
type lister struct {
	problems []problem
	names    []string  // the app's component names, sorted, each once
	namer    pathNamer // of the app
}

func (l *lister) add(path, msg, fix string) {
	l.problems = append(l.problems, problem{path: path, msg: msg, fix: fix})
}

func (l *lister) addf(path, fix, format string, args ...any) {
	l.add(path, fmt.Sprintf(format, args...), fix)
}
