package cluster

import (
	"cmp"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/wutong-paas/wutong-offline/internal/yamlnode"
)

var (
	clusterType  = reflect.TypeFor[Cluster]()
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[Duration]()
	anyType      = reflect.TypeFor[any]()
)

// maxDepth bounds nesting; cluster.yaml is five levels deep.
const maxDepth = 64

// walk checks node against type t at path, records the line of every field, and reports unknown fields and values
// of the wrong type. It returns a node to put in place of node (nil to keep it): null for a value of the wrong
// type, and a string for a number or boolean given where a string is expected, so that "0123" stays "0123".
func (d *decoder) walk(node ast.Node, t reflect.Type, path string) ast.Node {
	return d.walkDepth(node, t, path, 0)
}

func (d *decoder) walkDepth(node ast.Node, t reflect.Type, path string, depth int) ast.Node {
	d.budget--
	if node == nil || d.budget < 0 {
		return nil
	}
	if depth > maxDepth {
		return d.wrong(node, path, "nesting too deep")
	}
	if _, seen := d.lines[path]; !seen && path != "" {
		d.lines[path] = line(node)
	}
	switch n := node.(type) {
	case *ast.AnchorNode:
		d.anchors[yamlnode.ScalarText(n.Name)] = n.Value
		if r := d.walkDepth(n.Value, t, path, depth+1); r != nil {
			n.Value = r
		}
		return nil
	case *ast.AliasNode:
		// The target is shared: check it, but it cannot be patched for this one use.
		if target, ok := d.anchors[yamlnode.ScalarText(n.Value)]; ok {
			d.walkDepth(target, t, path, depth+1)
		}
		return nil
	case *ast.TagNode:
		if r := d.walkDepth(n.Value, t, path, depth+1); r != nil {
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
	switch {
	case t == anyType:
		d.walkAny(node, path, depth)
		return nil
	case t == secretType:
		return d.walkSecret(node, path, depth)
	case t == durationType:
		if s, ok := node.(*ast.StringNode); ok {
			if _, err := time.ParseDuration(s.Value); err == nil {
				return nil
			}
		}
		return d.wrong(node, path, "expected a duration such as 30s or 2m")
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := yamlnode.Mapping(node)
		if !ok {
			return d.wrong(node, path, "expected a mapping (key: value lines)")
		}
		d.walkStruct(m, t, path, depth)
	case reflect.Map:
		m, ok := yamlnode.Mapping(node)
		if !ok {
			return d.wrong(node, path, "expected a mapping (key: value lines)")
		}
		for _, kv := range m {
			k := yamlnode.KeyText(kv.Key)
			if r := d.walkDepth(kv.Value, t.Elem(), yamlnode.KeyPath(path, k), depth+1); r != nil {
				kv.Value = r
			}
		}
	case reflect.Slice:
		seq, ok := node.(*ast.SequenceNode)
		if !ok {
			return d.wrong(node, path, "expected a list")
		}
		for i, v := range seq.Values {
			if r := d.walkDepth(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1); r != nil {
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
			return d.wrong(node, path, "expected a string")
		}
	case reflect.Int:
		n, ok := node.(*ast.IntegerNode)
		if !ok {
			return d.wrong(node, path, "expected a whole number")
		}
		if _, err := strconv.ParseInt(fmt.Sprint(n.Value), 10, 32); err != nil {
			return d.wrong(node, path, "expected a whole number")
		}
	case reflect.Bool:
		if _, ok := node.(*ast.BoolNode); !ok {
			return d.wrong(node, path, "expected true or false")
		}
	}
	return nil
}

// walkStruct checks the keys of a mapping against the yaml fields of struct type t.
func (d *decoder) walkStruct(m []*ast.MappingValueNode, t reflect.Type, path string, depth int) {
	fields := yamlnode.Fields(t)
	for _, kv := range m {
		if kv.Key != nil && kv.Key.Type() == ast.MergeKeyType {
			d.walkDepth(kv.Value, t, path, depth+1)
			continue
		}
		k := yamlnode.KeyText(kv.Key)
		p := yamlnode.JoinPath(path, k)
		ft, ok := fields[k]
		if !ok && d.lenient {
			if !empty(kv.Value) {
				d.unknown = append(d.unknown, yamlnode.KeyPath(path, k))
			}
			continue
		}
		if !ok {
			p = yamlnode.KeyPath(path, k)
			d.lines[p] = line(kv.Key)
			d.bad[p] = true
			if s := yamlnode.Closest(k, fields); s != "" {
				d.bad[yamlnode.JoinPath(path, s)] = true // "address is missing" would only repeat "did you mean address?"
			}
			d.problems = append(d.problems, Problem{Line: line(kv.Key), Path: p, Msg: unknownField(k, path, fields)})
			continue
		}
		d.lines[p] = line(kv.Key)
		if r := d.walkDepth(kv.Value, ft, p, depth+1); r != nil {
			kv.Value = r
		}
	}
}

// walkSecret checks a literal string or {env: NAME}.
func (d *decoder) walkSecret(node ast.Node, path string, depth int) ast.Node {
	switch n := node.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		return nil
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return yamlnode.AsString(n)
	}
	m, ok := yamlnode.Mapping(node)
	if !ok {
		return d.wrong(node, path, "expected a string or {env: NAME}")
	}
	env, other := false, false
	for _, kv := range m {
		k := yamlnode.KeyText(kv.Key)
		p := yamlnode.KeyPath(path, k)
		d.lines[p] = line(kv.Key)
		if k != "env" {
			d.bad[path], other = true, true
			hint := ""
			if yamlnode.Distance(yamlnode.NormName(k), "env") <= 2 {
				hint = ` did you mean "env"?`
			}
			d.problems = append(d.problems, Problem{Line: line(kv.Key), Path: p, Msg: fmt.Sprintf("unknown field %q;%s a secret is a string or {env: NAME}", k, hint)})
			continue
		}
		env = true
		if _, ok := kv.Value.(*ast.StringNode); !ok {
			return d.wrong(kv.Value, p, "expected the name of an environment variable")
		}
	}
	switch {
	case !env && !other:
		return d.wrong(node, path, "expected a string or {env: NAME}")
	case !env:
		return yamlnode.Null(node)
	}
	return nil
}

// walkAny only records lines, for documents read leniently (KubeKey's).
func (d *decoder) walkAny(node ast.Node, path string, depth int) {
	if m, ok := yamlnode.Mapping(node); ok {
		for _, kv := range m {
			p := yamlnode.KeyPath(path, yamlnode.KeyText(kv.Key))
			d.lines[p] = line(kv.Key)
			d.walkDepth(kv.Value, anyType, p, depth+1)
		}
	} else if seq, ok := node.(*ast.SequenceNode); ok {
		for i, v := range seq.Values {
			d.walkDepth(v, anyType, fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	}
}

// wrong reports a value of the wrong type and returns the null that replaces it.
func (d *decoder) wrong(node ast.Node, path, want string) ast.Node {
	d.bad[path] = true
	d.problems = append(d.problems, Problem{Line: line(node), Path: path, Msg: want + ", found " + yamlnode.Describe(node)})
	return yamlnode.Null(node)
}

// empty reports whether a node holds nothing: null, "", [] or {}.
func empty(n ast.Node) bool {
	switch n := n.(type) {
	case nil:
		return true
	case *ast.MappingNode:
		return len(n.Values) == 0
	case *ast.SequenceNode:
		return len(n.Values) == 0
	case *ast.StringNode:
		return n.Value == ""
	}
	return n.Type() == ast.NullType
}

// unknownField explains an unknown field: a close name here, or where a field of that name belongs.
func unknownField(k, parent string, fields map[string]reflect.Type) string {
	msg := fmt.Sprintf("unknown field %q", k)
	if s := yamlnode.Closest(k, fields); s != "" {
		return msg + fmt.Sprintf("; did you mean %q?", s)
	}
	if home, ok := fieldHomes()[k]; ok && home != parent {
		return msg + "; it belongs in " + home
	}
	return msg + fmt.Sprintf("; the fields of %s are %s", cmp.Or(parent, "the top level"), strings.Join(yamlnode.SortedKeys(fields), ", "))
}

// fieldHomes maps each field name of cluster.yaml to the shallowest place it is valid, e.g. podCIDR →
// spec.kubernetes.
func fieldHomes() map[string]string {
	homes := map[string]string{}
	type level struct {
		t    reflect.Type
		path string
	}
	queue := []level{{clusterType, ""}}
	for len(queue) > 0 {
		l := queue[0]
		queue = queue[1:]
		fields := yamlnode.Fields(l.t)
		for _, n := range yamlnode.SortedKeys(fields) {
			if _, ok := homes[n]; !ok {
				homes[n] = cmp.Or(l.path, "the top level")
			}
			t, path := fields[n], yamlnode.JoinPath(l.path, n)
			for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
				t, path = t.Elem(), "each entry of "+path
			}
			if t.Kind() == reflect.Struct && t != secretType {
				queue = append(queue, level{t, path})
			}
		}
	}
	return homes
}
