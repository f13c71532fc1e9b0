package app

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/wutong-paas/wutong-offline/internal/yamlnode"
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
		d.anchors[yamlnode.ScalarText(n.Name)] = n.Value
		if r := d.walk(n.Value, t, path, depth+1); r != nil {
			n.Value = r
		}
		return nil
	case *ast.AliasNode:
		// The target is shared: check it, but it cannot be patched for this one use.
		if target, ok := d.anchors[yamlnode.ScalarText(n.Value)]; ok {
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
		m, ok := yamlnode.Mapping(node)
		if !ok {
			return d.wrong(node, path, "expected a mapping (key: value lines)", "")
		}
		d.walkStruct(m, t, path, depth)
	case reflect.Map:
		m, ok := yamlnode.Mapping(node)
		if !ok {
			return d.wrong(node, path, "expected a mapping (key: value lines)", "")
		}
		for _, kv := range m {
			p := yamlnode.KeyPath(path, yamlnode.KeyText(kv.Key))
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
			return yamlnode.AsString(n)
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
	fields := yamlnode.Fields(t)
	for _, kv := range m {
		if kv.Key != nil && kv.Key.Type() == ast.MergeKeyType {
			d.walk(kv.Value, t, path, depth+1)
			continue
		}
		k := yamlnode.KeyText(kv.Key)
		ft, ok := fields[k]
		if !ok {
			p := yamlnode.KeyPath(path, k)
			d.lines[p] = line(kv.Key)
			d.bad[p] = true
			msg, fix := unknownField(k, path, fields)
			if s := yamlnode.Closest(k, fields); s != "" {
				d.bad[yamlnode.JoinPath(path, s)] = true // "image is missing" would only repeat "did you mean image?"
			}
			d.problems = append(d.problems, problem{line: line(kv.Key), path: p, msg: msg, fix: fix})
			continue
		}
		p := yamlnode.JoinPath(path, k)
		d.lines[p] = line(kv.Key)
		if r := d.walk(kv.Value, ft, p, depth+1); r != nil {
			kv.Value = r
		}
	}
}

// walkAny only records lines, for raw objects.
func (d *decoder) walkAny(node ast.Node, path string, depth int) {
	if m, ok := yamlnode.Mapping(node); ok {
		for _, kv := range m {
			p := yamlnode.KeyPath(path, yamlnode.KeyText(kv.Key))
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
	d.problems = append(d.problems, problem{line: line(node), path: path, msg: want + ", found " + yamlnode.Describe(node), fix: fix})
	return yamlnode.Null(node)
}

// unknownField explains an unknown field: a close name here, or where a field of that name belongs.
func unknownField(k, parent string, fields map[string]reflect.Type) (msg, fix string) {
	msg = fmt.Sprintf("unknown field %q", k)
	if s := yamlnode.Closest(k, fields); s != "" {
		return msg + fmt.Sprintf("; did you mean %q?", s), fmt.Sprintf("rename it to %s (field names are case-sensitive)", s)
	}
	where := parent
	if where == "" {
		where = "the top level"
	}
	if homes := fieldHomes()[k]; len(homes) > 0 && len(homes) <= 2 && !slices.Contains(homes, generalize(parent)) {
		return msg + "; it belongs in " + strings.Join(homes, " or "), "move it there"
	}
	return msg, fmt.Sprintf("remove it; the fields of %s are %s", where, strings.Join(yamlnode.SortedKeys(fields), ", "))
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
		fields := yamlnode.Fields(l.t)
		for _, n := range yamlnode.SortedKeys(fields) {
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
				queue = append(queue, level{t, yamlnode.JoinPath(l.path, n), list})
			}
		}
	}
	return homes
}
