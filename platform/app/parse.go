package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/wutong-paas/wutong-offline/internal/yamlnode"
)

const (
	// maxFileSize bounds app.yaml: an app of a hundred components is far smaller.
	maxFileSize = 4 << 20
	// maxConfigFileSize bounds one config file: Kubernetes keeps them in ConfigMaps, which hold at most 1 MiB.
	maxConfigFileSize = 1 << 20
)

// Parse decodes, validates and defaults an app.yaml. Unknown fields and values of the wrong type are refused, and
// every problem in the document is reported at once as a *ValidationError with lines and field paths. Config files
// given with `file:` need the directory of app.yaml and are refused here: use Load for those.
func Parse(data []byte) (*App, error) {
	return parse(data, "app.yaml", "")
}

// Load reads and parses an app.yaml. Config files given with `file:` are read, relative to the directory of path,
// into their content; a file outside that directory (through .. or a symbolic link) is refused.
func Load(path string) (*App, error) {
	data, err := readFile(nil, path, maxFileSize)
	if err != nil {
		return nil, fmt.Errorf("load app: %w", err)
	}
	return parse(data, path, filepath.Dir(path))
}

// parse is Parse with a file name for messages and, when dir is not empty, the directory `file:` sources are in.
func parse(data []byte, file, dir string) (*App, error) {
	d := &decoder{lines: map[string]int{}, bad: map[string]bool{}, anchors: map[string]ast.Node{}, budget: 100_000}
	a := &App{}
	if !d.decode(data, a) {
		return nil, finish(file, d.problems, d.lineOf, nil)
	}
	if dir != "" {
		d.readConfigFiles(a, dir)
	}
	for _, p := range check(a) {
		if !d.under(p.path) {
			d.problems = append(d.problems, p)
		}
	}
	if err := finish(file, d.problems, d.lineOf, namesOf(a)); err != nil {
		return nil, err
	}
	a.Default()
	return a, nil
}

// errTooLarge is the error of reading a file larger than allowed.
var errTooLarge = errors.New("larger than allowed")

// readFile reads at most limit bytes of name, in root when root is not nil.
func readFile(root *os.Root, name string, limit int64) ([]byte, error) {
	var f *os.File
	var err error
	if root != nil {
		f, err = root.Open(name)
	} else {
		f, err = os.Open(name)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (%d bytes)", name, errTooLarge, limit)
	}
	return data, nil
}

// readConfigFiles reads every `file:` source into its content, relative to dir.
func (d *decoder) readConfigFiles(a *App, dir string) {
	var root *os.Root
	defer func() {
		if root != nil {
			root.Close()
		}
	}()
	for i := range a.Components {
		for j := range a.Components[i].ConfigFiles {
			cf := &a.Components[i].ConfigFiles[j]
			if cf.File == "" || cf.Content != "" {
				continue // none to read, or both given: check says so
			}
			base := fmt.Sprintf("components[%d].configFiles[%d]", i, j)
			fail := func(msg, fix string) {
				d.bad[base] = true
				d.problems = append(d.problems, problem{path: base + ".file", msg: msg, fix: fix})
			}
			name := filepath.FromSlash(cf.File)
			if !filepath.IsLocal(name) {
				fail(fmt.Sprintf("%q leads out of the directory of app.yaml", cf.File),
					"give a path relative to app.yaml, without .. or a leading /, and copy the file next to app.yaml")
				continue
			}
			if root == nil {
				var err error
				if root, err = os.OpenRoot(dir); err != nil {
					fail(fmt.Sprintf("cannot open the directory of app.yaml: %v", err), "")
					continue
				}
			}
			data, err := readFile(root, name, maxConfigFileSize)
			switch {
			case err != nil && strings.Contains(err.Error(), "escapes"):
				fail(fmt.Sprintf("%q leads out of the directory of app.yaml through a symbolic link", cf.File),
					"copy the file next to app.yaml instead of linking to it")
			case errors.Is(err, errTooLarge):
				fail(fmt.Sprintf("%q is larger than %d bytes", cf.File, maxConfigFileSize),
					"put large data in the image or a volume: Kubernetes keeps config files in ConfigMaps of at most 1 MiB")
			case errors.Is(err, os.ErrNotExist):
				fail(fmt.Sprintf("%q does not exist next to app.yaml", cf.File), "check the path; it is relative to the directory of app.yaml")
			case err != nil:
				fail(fmt.Sprintf("cannot read %q: %v", cf.File, err), "")
			case !utf8.Valid(data):
				fail(fmt.Sprintf("%q is not UTF-8 text", cf.File), "config files hold text; put binary data in the image")
			default:
				cf.Content, cf.File = string(data), ""
			}
		}
	}
}

// decoder turns YAML into an App. Before decoding it walks the syntax tree against the Go types, so that every
// unknown field and every value of the wrong type is reported with its line (not just the first); values of the
// wrong type are nulled so that decoding goes on and the rest of the document is checked too.
type decoder struct {
	lines    map[string]int  // index path → line
	bad      map[string]bool // paths with a structural problem: later problems at or under them are noise
	anchors  map[string]ast.Node
	problems []problem
	budget   int // nodes left to visit: aliases can make a small document a huge tree
}

// decode fills a, or returns false with the problems that keep it from going further.
func (d *decoder) decode(data []byte, a *App) bool {
	var f *ast.File
	if err := safely(func() (err error) { f, err = parser.ParseBytes(data, 0); return err }); err != nil {
		d.problems = append(d.problems, problemFromYAML(err))
		return false
	}
	var docs []ast.Node
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc.Body)
		}
	}
	if len(docs) == 0 {
		d.problems = append(d.problems, problem{msg: "the document is empty",
			fix: "start with apiVersion: " + APIVersion + ", kind: " + Kind + ", key, version and components"})
		return false
	}
	for _, extra := range docs[1:] {
		d.problems = append(d.problems, problem{line: line(extra), msg: "app.yaml holds one document",
			fix: "remove the '---' and what follows it"})
	}
	if len(docs) > 1 || !d.header(docs[0]) {
		return false
	}
	d.walk(docs[0], appType, "", 0)
	if d.budget < 0 {
		d.problems = []problem{{msg: "the document expands to too many nodes through aliases", fix: "write it out without aliases"}}
		return false
	}
	if err := safely(func() error { return yaml.NodeToValue(docs[0], a) }); err != nil {
		d.problems = append(d.problems, problemFromYAML(err))
		return false
	}
	return true
}

// header checks apiVersion and kind first: the rest of a document of another kind would only give noise.
func (d *decoder) header(body ast.Node) bool {
	m, ok := yamlnode.Mapping(body)
	if !ok {
		d.problems = append(d.problems, problem{line: line(body), msg: "expected a mapping, found " + yamlnode.Describe(body),
			fix: "start with apiVersion: " + APIVersion + " and kind: " + Kind})
		return false
	}
	found, lines := map[string]string{}, map[string]int{}
	for _, kv := range m {
		if k := yamlnode.KeyText(kv.Key); k == "apiVersion" || k == "kind" {
			found[k], lines[k] = yamlnode.ScalarText(kv.Value), line(kv.Key)
		}
	}
	ok = true
	for _, h := range [][2]string{{"apiVersion", APIVersion}, {"kind", Kind}} {
		got, present := found[h[0]]
		switch {
		case !present:
			d.problems = append(d.problems, problem{line: 1, path: h[0], msg: "is missing",
				fix: fmt.Sprintf("the first lines of app.yaml are apiVersion: %s and kind: %s", APIVersion, Kind)})
			ok = false
		case got != h[1]:
			d.problems = append(d.problems, problem{line: lines[h[0]], path: h[0],
				msg: fmt.Sprintf("is %q, expected %q", got, h[1]), fix: fmt.Sprintf("set %s: %s", h[0], h[1])})
			ok = false
		}
	}
	return ok
}

// under reports whether path is at or below a path with a structural problem.
func (d *decoder) under(path string) bool {
	for p := path; p != ""; {
		if d.bad[p] {
			return true
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			return false
		}
		p = p[:i]
	}
	return false
}

// lineOf is the line of path, or of its nearest ancestor that is in the document.
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

// safely runs f, turning a panic of the YAML library into an error.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed YAML (%v)", r)
		}
	}()
	return f()
}

// problemFromYAML turns a YAML library error into a problem with its line.
func problemFromYAML(err error) problem {
	var ye yaml.Error
	if errors.As(err, &ye) {
		p := problem{msg: "invalid YAML: " + ye.GetMessage(), fix: "check the syntax at this line (indentation, quotes, ':' after keys)"}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			p.line = tk.Position.Line
		}
		return p
	}
	return problem{msg: err.Error(), fix: "check the syntax of the document"}
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

// toJSONValue turns a decoded YAML value into what encoding/json gives back with UseNumber, so that a raw object
// survives Canonical and Decode exactly.
func toJSONValue(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}
