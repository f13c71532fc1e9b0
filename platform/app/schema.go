package app

import _ "embed"

// schemaJSON is the JSON Schema of app.yaml, generated from the types of this package by its tests (go test
// -run TestSchema -update regenerates it).
//
//go:embed app.schema.json
var schemaJSON []byte

// SchemaID is the $id of the JSON Schema of app.yaml.
const SchemaID = "https://wutong.io/schemas/app/v1alpha1/app.schema.json"

// Schema returns the JSON Schema (draft 2020-12) of app.yaml, for editors and API documents. Parse checks more than
// it can say (references between components, cycles, quantities), so a document it accepts may still be refused.
func Schema() []byte {
	return append([]byte(nil), schemaJSON...)
}
