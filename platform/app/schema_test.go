package app

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	invopop "github.com/invopop/jsonschema"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite app.schema.json and the golden files in testdata/golden")

// generateSchema reflects the JSON Schema of app.yaml from the Go types, with their doc comments as descriptions,
// and adds what struct tags cannot say: name patterns, exactly-one-of rules, the shape of raw objects, and numbers
// accepted where the parser takes them as written.
func generateSchema(t *testing.T) []byte {
	t.Helper()
	r := &invopop.Reflector{FieldNameTag: "yaml", RequiredFromJSONSchemaTags: true, ExpandedStruct: true}
	if err := r.AddGoComments("github.com/wutong-paas/wutong-offline/platform/app", "./"); err != nil {
		t.Fatal(err)
	}
	for k, v := range r.CommentMap {
		r.CommentMap[k] = strings.Join(strings.Fields(v), " ") // comments wrap at 120 columns; editors wrap themselves
	}
	s := r.Reflect(&App{})
	s.ID = SchemaID
	s.Title = "Wutong app (app.yaml, " + APIVersion + ")"
	def := func(name string) *invopop.Schema {
		d, ok := s.Definitions[name]
		if !ok {
			t.Fatalf("no definition %s in the reflected schema", name)
		}
		return d
	}
	prop := func(d *invopop.Schema, name string) *invopop.Schema {
		p, ok := d.Properties.Get(name)
		if !ok {
			t.Fatalf("no property %s", name)
		}
		return p
	}
	loose := func(p *invopop.Schema, types ...string) { // a scalar the parser takes as written
		p.Type = ""
		for _, ty := range types {
			p.AnyOf = append(p.AnyOf, &invopop.Schema{Type: ty})
		}
	}
	prop(s, "key").Pattern = keyRE.String()
	prop(s, "version").Pattern = `^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`
	c := def("Component")
	prop(c, "name").Pattern = dnsLabel.String()
	prop(c, "formerNames").Items.Pattern = dnsLabel.String()
	prop(c, "dependsOn").Items.Pattern = dnsLabel.String()
	prop(def("ConfigGroup"), "name").Pattern = dnsLabel.String()
	prop(def("Volume"), "name").Pattern = dnsLabel.String()
	prop(def("Volume"), "mountPath").Pattern = "^/."
	prop(def("ConfigFile"), "path").Pattern = "^/."
	prop(def("Port"), "name").Pattern = portName.String()
	prop(def("EnvVar"), "name").Pattern = envName.String()
	prop(def("ConfigItem"), "key").Pattern = envName.String()
	for _, p := range []*invopop.Schema{prop(def("EnvVar"), "value"), prop(def("ConfigItem"), "value")} {
		loose(p, "string", "number", "boolean")
	}
	for _, p := range []*invopop.Schema{prop(def("ResourceList"), "cpu"), prop(def("ResourceList"), "memory"), prop(def("Volume"), "size")} {
		loose(p, "string", "number")
	}
	mode := prop(def("ConfigFile"), "mode")
	loose(mode, "integer")
	mode.AnyOf = append([]*invopop.Schema{{Type: "string", Pattern: modeRE.String()}}, mode.AnyOf...)
	def("ConfigFile").Not = &invopop.Schema{Required: []string{"content", "file"}}
	def("Volume").OneOf = []*invopop.Schema{{Required: []string{"size"}}, {Required: []string{"from"}}}
	def("Probe").OneOf = []*invopop.Schema{{Required: []string{"http"}}, {Required: []string{"tcp"}}, {Required: []string{"exec"}}}
	kinds := make([]any, len(clusterScoped))
	for i, k := range clusterScoped {
		kinds[i] = k
	}
	objProps := invopop.NewProperties()
	objProps.Set("apiVersion", &invopop.Schema{Type: "string", MinLength: new(uint64(1))})
	objProps.Set("kind", &invopop.Schema{Type: "string", MinLength: new(uint64(1)), Not: &invopop.Schema{Enum: kinds},
		Description: "A namespaced kind; cluster-scoped kinds are refused."})
	metaProps := invopop.NewProperties()
	metaProps.Set("name", &invopop.Schema{Type: "string", MinLength: new(uint64(1))})
	objProps.Set("metadata", &invopop.Schema{Type: "object", Required: []string{"name"}, Properties: metaProps,
		Not: &invopop.Schema{Required: []string{"namespace"}}, Description: "Metadata with a name and no namespace."})
	delete(s.Definitions, "Object")
	items := prop(s, "resources").Items
	*items = invopop.Schema{Type: "object", Required: []string{"apiVersion", "kind", "metadata"}, Properties: objProps,
		Description: "A raw namespaced Kubernetes object."}
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// TestSchemaUpToDate fails when app.schema.json differs from what the types generate; -update rewrites it.
func TestSchemaUpToDate(t *testing.T) {
	got := generateSchema(t)
	if *update {
		if err := os.WriteFile("app.schema.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, schemaJSON) && !*update {
		t.Fatal("app.schema.json is out of date with the Go types: run go test ./platform/app -run TestSchemaUpToDate -update")
	}
	if !bytes.Equal(Schema(), schemaJSON) {
		t.Fatal("Schema() differs from the embedded file")
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// yamlInstance reads a YAML file as a JSON Schema instance.
func yamlInstance(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestSchemaAcceptsExamples validates every example app.yaml, and the canonical JSON of each, against the schema.
func TestSchemaAcceptsExamples(t *testing.T) {
	sch := compileSchema(t)
	for _, path := range examples(t) {
		if err := sch.Validate(yamlInstance(t, path)); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		a, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		canon, err := a.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(canon))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("canonical form of %s: %v", path, err)
		}
	}
}

// TestSchemaAndParseRefuse checks that the invalid examples are refused by both the schema and Parse, for the
// reason each file names in its first line ("# refused: PATH: MESSAGE").
func TestSchemaAndParseRefuse(t *testing.T) {
	sch := compileSchema(t)
	paths, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(paths) < 4 {
		t.Fatalf("only %d invalid examples", len(paths))
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if err := sch.Validate(yamlInstance(t, path)); err == nil {
				t.Error("the schema accepts it")
			}
			data, _ := os.ReadFile(path)
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# refused: ")
			if !ok {
				t.Fatalf("first line %q does not say why it is refused", first)
			}
			wantPath, wantMsg, _ := strings.Cut(want, ": ")
			_, err := Parse(data)
			ve := validationError(t, err)
			for _, p := range ve.Problems {
				if p.Path == wantPath && strings.Contains(p.Message, wantMsg) {
					return
				}
			}
			t.Errorf("Parse does not report %s: %s; it reports:\n%v", wantPath, wantMsg, err)
		})
	}
}

// examples are the valid example files.
func examples(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	return append(paths, "testdata/example/app.yaml")
}
