package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/wutong-paas/wutong-offline/internal/yamlnode"
)

// maxFileSize bounds what Load reads: a cluster.yaml of a thousand hosts is far smaller.
const maxFileSize = 4 << 20

// ParseOptions are the inputs of Parse besides the document.
type ParseOptions struct {
	// LookupEnv resolves {env: NAME} secrets and $HOME. Default: os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Dir is the directory relative paths are relative to. Default: the directory of the name given to Parse.
	Dir string
}

// Problem is one thing wrong (or worth a warning) in a cluster.yaml.
type Problem struct {
	Line int    // 1-based line in the file, or 0 when unknown
	Path string // field path such as spec.hosts[2].address, or "" for the document as a whole
	Msg  string // what is wrong and how to fix it
}

// FormatProblem renders p as file:line: path: msg, leaving out what is unknown.
func FormatProblem(file string, p Problem) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.Path != "" {
		b.WriteString(": " + p.Path)
	}
	return b.String() + ": " + p.Msg
}

// ValidationError is every problem found in a cluster.yaml, in line order, so that all can be fixed in one go.
type ValidationError struct {
	File     string
	Problems []Problem
}

// Error prints one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = FormatProblem(e.File, p)
	}
	return strings.Join(lines, "\n")
}

// Load reads and parses a cluster.yaml with the environment of this process.
func Load(path string) (*Cluster, error) {
	data, err := readSmall(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster config: %w", err)
	}
	return Parse(path, data, ParseOptions{})
}

func readSmall(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is %d bytes, more than a cluster.yaml can be (%d)", path, st.Size(), maxFileSize)
	}
	return os.ReadFile(path)
}

// Parse decodes, defaults and validates a cluster.yaml; name is the file it came from, for messages and relative
// paths. Any problem in the document gives a *ValidationError listing them all; warnings are on the result.
func Parse(name string, data []byte, o ParseOptions) (*Cluster, error) {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Dir == "" {
		o.Dir = filepath.Dir(name)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("parse cluster config: %w", err)
	}
	home, _ := o.LookupEnv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	c := &Cluster{file: name, dir: dir, home: home}
	d := newDecoder()
	if !d.decode(data, c) {
		return nil, d.fail(name)
	}
	c.Default()
	k := &checker{lookup: o.LookupEnv, given: func(p string) bool { _, ok := d.lines[p]; return ok }, broken: d.broken}
	k.validate(c)
	d.add(k.problems)
	if len(d.problems) > 0 {
		return nil, d.fail(name)
	}
	c.warnings = d.place(k.warnings)
	for i := range c.Spec.Hosts {
		cfg := effectiveSSH(c.Spec.Hosts[i], c.Spec.SSH, c.Path)
		c.Spec.Hosts[i].ssh = &cfg
	}
	return c, nil
}

// decoder turns YAML into a Cluster. Before decoding, it walks the syntax tree against the Go types, so that every
// unknown field and every value of the wrong type is reported (not just the first), with its line; values of the
// wrong type are then nulled so that decoding can go on and the rest of the file can be checked too.
type decoder struct {
	lines    map[string]int  // field path → line
	bad      map[string]bool // paths with a structural problem: later problems under them are noise
	anchors  map[string]ast.Node
	problems []Problem
	lenient  bool     // unknown fields are collected in unknown instead of being problems (for KubeKey files)
	unknown  []string // paths of unknown fields that hold something, when lenient
	budget   int      // nodes left to visit; aliases can make a small file a huge tree
}

func newDecoder() *decoder {
	return &decoder{lines: map[string]int{}, bad: map[string]bool{}, anchors: map[string]ast.Node{}, budget: 100_000}
}

// decode fills c, or returns false with the problems that prevent going further.
func (d *decoder) decode(data []byte, c *Cluster) bool {
	docs, ok := d.parse(data)
	if !ok {
		return false
	}
	for _, extra := range docs[1:] {
		d.problems = append(d.problems, Problem{Line: line(extra), Msg: "a cluster.yaml holds one document; remove the '---' and what follows it"})
	}
	body := docs[0]
	if len(docs) > 1 || !d.header(body) {
		return false
	}
	d.walk(body, clusterType, "")
	if d.budget < 0 {
		d.problems = []Problem{{Msg: "the document expands to too many nodes (through aliases); write it out plainly"}}
		return false
	}
	if err := safely(func() error { return yaml.NodeToValue(body, c) }); err != nil {
		d.problems = append(d.problems, problemFromYAML(err))
		return false
	}
	return true
}

// parse returns the bodies of the documents in data; there is at least one.
func (d *decoder) parse(data []byte) ([]ast.Node, bool) {
	var f *ast.File
	if err := safely(func() (err error) { f, err = parser.ParseBytes(data, 0); return err }); err != nil {
		d.problems = append(d.problems, problemFromYAML(err))
		return nil, false
	}
	var docs []ast.Node
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc.Body)
		}
	}
	if len(docs) == 0 {
		d.problems = append(d.problems, Problem{Msg: "the file is empty; start from `wtctl cluster import-config` or the example in the docs"})
		return nil, false
	}
	return docs, true
}

// header checks apiVersion and kind first: the rest of a document of another kind would only give noise.
func (d *decoder) header(body ast.Node) bool {
	m, ok := yamlnode.Mapping(body)
	if !ok {
		d.problems = append(d.problems, Problem{Line: line(body), Msg: fmt.Sprintf("expected a mapping with apiVersion: %s and kind: %s, found %s", APIVersion, Kind, yamlnode.Describe(body))})
		return false
	}
	found := map[string]string{}
	lines := map[string]int{}
	near := map[string]string{} // apiVersion → "apiversion", when only a differently spelled key is there
	for _, kv := range m {
		k := yamlnode.KeyText(kv.Key)
		switch {
		case k == "apiVersion" || k == "kind":
			found[k], lines[k] = yamlnode.ScalarText(kv.Value), line(kv.Key)
		case yamlnode.NormName(k) == "apiversion":
			near["apiVersion"], lines["apiVersion"] = k, line(kv.Key)
		case yamlnode.NormName(k) == "kind":
			near["kind"], lines["kind"] = k, line(kv.Key)
		}
	}
	ok = true
	check := func(field, want, hint string) {
		got, present := found[field]
		switch {
		case !present && near[field] != "":
			d.problems = append(d.problems, Problem{Line: lines[field], Path: near[field], Msg: fmt.Sprintf("unknown field %q; did you mean %q? (field names are case-sensitive)", near[field], field)})
		case !present:
			d.problems = append(d.problems, Problem{Line: 1, Path: field, Msg: fmt.Sprintf("is missing; the first lines of a cluster.yaml are apiVersion: %s and kind: %s", APIVersion, Kind)})
		case got != want:
			d.problems = append(d.problems, Problem{Line: lines[field], Path: field, Msg: fmt.Sprintf("found %q, expected %q%s", got, want, hint)})
		default:
			return
		}
		ok = false
	}
	hint := ""
	if strings.HasPrefix(found["apiVersion"], "kubekey.kubesphere.io/") {
		hint = "; this is a KubeKey config: convert it with `wtctl cluster import-config FILE -o cluster.yaml`"
	}
	check("apiVersion", APIVersion, hint)
	if ok || found["apiVersion"] == APIVersion {
		check("kind", Kind, "")
	}
	return ok
}

// fail returns the problems so far as a *ValidationError.
func (d *decoder) fail(file string) error {
	return &ValidationError{File: file, Problems: d.place(d.problems)}
}

// place gives problems their lines and sorts them by line (those without a line last), keeping the order of
// problems on the same line.
func (d *decoder) place(ps []Problem) []Problem {
	out := slices.Clone(ps)
	for i := range out {
		if out[i].Line == 0 {
			out[i].Line = d.lineOf(out[i].Path)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := out[i].Line, out[j].Line
		return li != 0 && (lj == 0 || li < lj)
	})
	return out
}

// add appends the checker's problems, leaving out those at or under a path that already has a structural
// problem: "hosts: expected a list" makes "hosts: list at least one host" noise.
func (d *decoder) add(ps []Problem) {
	for _, p := range ps {
		if !d.under(p.Path) {
			d.problems = append(d.problems, p)
		}
	}
}

// broken reports whether path, or anything below it, has a structural problem.
func (d *decoder) broken(path string) bool {
	for p := range d.bad {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// under reports whether path is at or below a path with a structural problem.
func (d *decoder) under(path string) bool {
	for p := path; ; {
		if d.bad[p] {
			return true
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			return false
		}
		p = p[:i]
	}
}

// lineOf is the line of path, or of its nearest ancestor that is in the file.
func (d *decoder) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := d.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// safely runs f, turning a panic of the YAML library (FuzzParse finds some) into an error.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed YAML (%v); check the file's syntax", r)
		}
	}()
	return f()
}

// problemFromYAML turns a YAML library error into a Problem with its line.
func problemFromYAML(err error) Problem {
	var ye yaml.Error
	if errors.As(err, &ye) {
		p := Problem{Msg: "invalid YAML: " + ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			p.Line = tk.Position.Line
		}
		return p
	}
	return Problem{Msg: err.Error()}
}

// line is the line a node starts on.
func line(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}
