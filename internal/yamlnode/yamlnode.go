// Package yamlnode holds the syntax-tree helpers that the strict parsers of cluster.yaml (installer/cluster) and
// app.yaml (platform/app) share: reading scalars and mappings of a goccy/go-yaml AST, naming a node for "expected X,
// found Y", building field paths, the yaml field names of a Go struct, and "did you mean" suggestions.
package yamlnode

import (
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// Null is a null node at the place of node, to stand in for a value that was refused.
func Null(node ast.Node) ast.Node {
	tk := token.Token{}
	if t := node.GetToken(); t != nil {
		tk = *t
	}
	tk.Type, tk.Value, tk.Origin = token.NullType, "null", "null"
	return ast.Null(&tk)
}

// AsString is a scalar as the string it was written as, so that 0644 stays "0644".
func AsString(n ast.Node) ast.Node {
	tk := *n.GetToken()
	tk.Type = token.StringType
	return ast.String(&tk)
}

// Mapping returns the entries of a mapping node (a one-entry mapping is a bare MappingValueNode).
func Mapping(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch n := n.(type) {
	case *ast.MappingNode:
		return n.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}, true
	}
	return nil, false
}

// KeyText is a mapping key as written, or "" for none.
func KeyText(k ast.MapKeyNode) string {
	if k == nil {
		return ""
	}
	return ScalarText(k)
}

// ScalarText is a scalar's value as written (quotes removed), or "" for anything else.
func ScalarText(n ast.Node) string {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value
	case *ast.TagNode:
		return ScalarText(n.Value)
	case ast.ScalarNode:
		if tk := n.GetToken(); tk != nil {
			return tk.Value
		}
	}
	return ""
}

// Describe names what a node is, for "expected X, found Y".
func Describe(n ast.Node) string {
	switch n.Type() {
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.NullType:
		return "nothing"
	}
	s := ScalarText(n)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// JoinPath appends a struct field to a path.
func JoinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// KeyPath appends a map key to a path, quoting keys that are not plain words, e.g. nodeSelector["kubernetes.io/os"].
func KeyPath(path, key string) string {
	if plainKey.MatchString(key) {
		return JoinPath(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// Fields maps the yaml names of struct t to their types, as goccy/go-yaml names them: the tag's name, or the
// lower-cased field name; fields of an inline struct count as t's own.
func Fields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if strings.Contains(","+opts+",", ",inline,") {
			for k, v := range Fields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name != "-" {
			fields[name] = f.Type
		}
	}
	return fields
}

// Closest is the name k was probably meant to be, or "": the same name in another case or spelling (privatekey,
// private_key), one within about one typo per five letters, or a name that k starts with (privateKeyPath →
// privateKey).
func Closest[V any](k string, names map[string]V) string {
	nk := NormName(k)
	sorted := SortedKeys(names)
	best, bestDist := "", 2+len(nk)/5
	for _, f := range sorted {
		switch d := Distance(NormName(f), nk); {
		case d == 0:
			return f
		case d < bestDist:
			best, bestDist = f, d
		}
	}
	if best != "" {
		return best
	}
	for _, f := range sorted {
		if nf := NormName(f); len(nf) >= 6 && strings.HasPrefix(nk, nf) {
			return f
		}
	}
	return ""
}

// NormName is a name lower-cased without '-' and '_', so that spellings of one name compare equal.
func NormName(s string) string {
	return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
}

// SortedKeys are m's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Distance is the optimal string alignment distance of a and b: insertions, deletions, substitutions and
// transpositions of neighbours (wbe → web) count one each. Strings over 64 bytes are no typo of a field name: their
// distance is the longer length, which keeps the cost bounded.
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
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
