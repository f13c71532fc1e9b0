package app

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

var (
	appType = reflect.TypeFor[App]()
	anyType = reflect.TypeFor[any]()
)

// maxDepth bounds nesting: app.yaml is six levels deep, raw objects somewhat more.
const maxDepth = 64

// walk checks node against type t at path, records the line of every field, and reports unknown fields and values
// of the wrong type. It returns a node to put in place of node (nil to keep it): null for a value of the wrong
// type, and a string for a number or boolean given where a string is expected, so that "0644" stays "0644".
func (d *decoder) walk(node ast.Node, t reflect.Type, path string, depth int) ast.Node {
	d.budget--
	if node == nil || d.budget < 0 {
		return nil
	}
	if depth > maxDepth {
		return d.wrong(node, path, "nesting too deep", "flatten the document")
	}
	if _, seen := d.lines[path]; !seen && path != "" {
		d.lines[path] = line(node)
	}
	switch n := node.(type) {
	case *ast.AnchorNode:
		d.anchors[scalarText(n.Name)] = n.Value
		if r := d.walk(n.Value, t, path, depth+1); r != nil {
			n.Value = r
		}
		return nil
	case *ast.AliasNode:
		// The target is shared: check it, but it cannot be patched for this one use.
		if target, ok := d.anchors[scalarText(n.Value)]; ok {
			d.walk(target, t, path, depth+1)
		}
		return nil
	case *ast.TagNode:
		if r := d.walk(n.Value, t, path, depth+1); r != nil {
			n.Value = r
		}
		return nil
	}
	if node.Type() == ast.NullType {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == anyType {
		d.walkAny(node, path, depth)
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := mappingOf(node)
		if !ok {
			return d.wrong(node, path, "expected a mapping (key: value lines)", "")
		}
		d.walkStruct(m, t, path, depth)
	case reflect.Map:
		m, ok := mappingOf(node)
		if !ok {
			return d.wrong(node, path, "expected a mapping (key: value lines)", "")
		}
		for _, kv := range m {
			p := keyPath(path, keyText(kv.Key))
			d.lines[p] = line(kv.Key)
			if r := d.walk(kv.Value, t.Elem(), p, depth+1); r != nil {
				kv.Value = r
			}
		}
	case reflect.Slice:
		seq, ok := node.(*ast.SequenceNode)
		if !ok {
			return d.wrong(node, path, "expected a list", "write it as a list: lines starting with '- ', or [a, b]")
		}
		for i, v := range seq.Values {
			if r := d.walk(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1); r != nil {
				seq.Values[i] = r
				if i < len(seq.Entries) && seq.Entries[i] != nil {
					seq.Entries[i].Value = r
				}
			}
		}
	case reflect.String:
		switch n := node.(type) {
		case *ast.StringNode, *ast.LiteralNode:
		case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
			return asString(n)
		default:
			return d.wrong(node, path, "expected a string", "")
		}
	case reflect.Int:
		n, ok := node.(*ast.IntegerNode)
		if !ok {
			return d.wrong(node, path, "expected a whole number", "")
		}
		if _, err := strconv.ParseInt(fmt.Sprint(n.Value), 10, 32); err != nil {
			return d.wrong(node, path, "expected a whole number of reasonable size", "")
		}
	}
	return nil
}

// walkStruct checks the keys of a mapping against the yaml fields of struct type t.
func (d *decoder) walkStruct(m []*ast.MappingValueNode, t reflect.Type, path string, depth int) {
	fields := yamlFields(t)
	for _, kv := range m {
		if kv.Key != nil && kv.Key.Type() == ast.MergeKeyType {
			d.walk(kv.Value, t, path, depth+1)
			continue
		}
		k := keyText(kv.Key)
		ft, ok := fields[k]
		if !ok {
			p := keyPath(path, k)
			d.lines[p] = line(kv.Key)
			d.bad[p] = true
			msg, fix := unknownField(k, path, fields)
			if s := closest(k, fields); s != "" {
				d.bad[joinPath(path, s)] = true // "image is missing" would only repeat "did you mean image?"
			}
			d.problems = append(d.problems, problem{line: line(kv.Key), path: p, msg: msg, fix: fix})
			continue
		}
		p := joinPath(path, k)
		d.lines[p] = line(kv.Key)
		if r := d.walk(kv.Value, ft, p, depth+1); r != nil {
			kv.Value = r
		}
	}
}

// walkAny only records lines, for raw objects.
func (d *decoder) walkAny(node ast.Node, path string, depth int) {
	if m, ok := mappingOf(node); ok {
		for _, kv := range m {
			p := keyPath(path, keyText(kv.Key))
			d.lines[p] = line(kv.Key)
			d.walk(kv.Value, anyType, p, depth+1)
		}
	} else if seq, ok := node.(*ast.SequenceNode); ok {
		for i, v := range seq.Values {
			d.walk(v, anyType, fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	}
}

// wrong reports a value of the wrong type and returns the null that replaces it.
func (d *decoder) wrong(node ast.Node, path, want, fix string) ast.Node {
	d.bad[path] = true
	d.problems = append(d.problems, problem{line: line(node), path: path, msg: want + ", found " + describe(node), fix: fix})
	return ast.Null(nullToken(node))
}

// nullToken is a null token at the place of node.
func nullToken(node ast.Node) *token.Token {
	tk := token.Token{}
	if t := node.GetToken(); t != nil {
		tk = *t
	}
	tk.Type, tk.Value, tk.Origin = token.NullType, "null", "null"
	return &tk
}

// asString is a scalar as the string it was written as.
func asString(n ast.Node) ast.Node {
	tk := *n.GetToken()
	tk.Type = token.StringType
	return ast.String(&tk)
}

// mappingOf returns the entries of a mapping node (a one-entry mapping is a bare MappingValueNode).
func mappingOf(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch n := n.(type) {
	case *ast.MappingNode:
		return n.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}, true
	}
	return nil, false
}

func keyText(k ast.MapKeyNode) string {
	if k == nil {
		return ""
	}
	return scalarText(k)
}

// scalarText is a scalar's value as written (quotes removed), or "" for anything else.
func scalarText(n ast.Node) string {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value
	case *ast.TagNode:
		return scalarText(n.Value)
	case ast.ScalarNode:
		if tk := n.GetToken(); tk != nil {
			return tk.Value
		}
	}
	return ""
}

// describe names what a node is, for "expected X, found Y".
func describe(n ast.Node) string {
	switch n.Type() {
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.NullType:
		return "nothing"
	}
	s := scalarText(n)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinPath appends a struct field to a path.
func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// keyPath appends a map key to a path, quoting keys that are not plain words, e.g. nodeSelector["kubernetes.io/os"].
func keyPath(path, key string) string {
	if plainKey.MatchString(key) {
		return joinPath(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// yamlFields maps the yaml names of struct t to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	return fields
}

// unknownField explains an unknown field: a close name here, or where a field of that name belongs.
func unknownField(k, parent string, fields map[string]reflect.Type) (msg, fix string) {
	msg = fmt.Sprintf("unknown field %q", k)
	if s := closest(k, fields); s != "" {
		return msg + fmt.Sprintf("; did you mean %q?", s), fmt.Sprintf("rename it to %s (field names are case-sensitive)", s)
	}
	where := parent
	if where == "" {
		where = "the top level"
	}
	if homes := fieldHomes()[k]; len(homes) > 0 && len(homes) <= 2 && !slices.Contains(homes, generalize(parent)) {
		return msg + "; it belongs in " + strings.Join(homes, " or "), "move it there"
	}
	return msg, fmt.Sprintf("remove it; the fields of %s are %s", where, strings.Join(sortedKeys(fields), ", "))
}

// generalize turns components[3].probes into "each entry of components.probes", as fieldHomes names places.
var indexRE = regexp.MustCompile(`\[[^\]]*\]`)

func generalize(path string) string {
	if path == "" {
		return "the top level"
	}
	if !strings.Contains(path, "[") {
		return path
	}
	return "each entry of " + indexRE.ReplaceAllString(path, "")
}

// closest is the field name k was probably meant to be, or "": the same name in another case or spelling
// (mountpath, mount_path), or one within about one typo per five letters.
func closest[V any](k string, fields map[string]V) string {
	nk := normName(k)
	best, bestDist := "", 2+len(nk)/5
	for _, f := range sortedKeys(fields) {
		switch dist := levenshtein(normName(f), nk); {
		case dist == 0:
			return f
		case dist < bestDist:
			best, bestDist = f, dist
		}
	}
	return best
}

func normName(s string) string {
	return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// levenshtein is the optimal string alignment distance of a and b: insertions, deletions, substitutions and
// transpositions of neighbours (wbe → web) count one each.
func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b)) // not a typo of a field name; and keeps the cost bounded
	}
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			rows[i][j] = min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				rows[i][j] = min(rows[i][j], rows[i-2][j-2]+1)
			}
		}
	}
	return rows[len(a)][len(b)]
}

// fieldHomes maps each field name of app.yaml to the places it is valid, shallowest first, e.g. mountPath → each
// entry of components.volumes.
func fieldHomes() map[string][]string {
	homes := map[string][]string{}
	type level struct {
		t    reflect.Type
		path string
		list bool
	}
	queue := []level{{appType, "", false}}
	for len(queue) > 0 {
		l := queue[0]
		queue = queue[1:]
		fields := yamlFields(l.t)
		for _, n := range sortedKeys(fields) {
			where := l.path
			switch {
			case where == "":
				where = "the top level"
			case l.list:
				where = "each entry of " + where
			}
			homes[n] = append(homes[n], where)
			t, list := fields[n], l.list
			for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
				if t.Kind() == reflect.Slice {
					list = true
				}
				t = t.Elem()
			}
			if t.Kind() == reflect.Struct {
				queue = append(queue, level{t, joinPath(l.path, n), list})
			}
		}
	}
	return homes
}
