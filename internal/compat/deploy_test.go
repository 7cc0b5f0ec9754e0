package compat

import (
	"testing"

	"github.com/riferrei/srclient"

	"github.com/todocdc/pipeline/schemas"
)

// oneVersion is a registry with one subject holding one version, at a level, that agrees with
// whatever the gate says (the registry's verdict is not what these tests are about).
type oneVersion struct {
	text  string
	level srclient.CompatibilityLevel
}

func (r oneVersion) GetSchemaVersions(string) ([]int, error) { return []int{1}, nil }
func (r oneVersion) GetSchemaByVersion(string, int) (*srclient.Schema, error) {
	return srclient.NewSchema(1, r.text, srclient.Avro, 1, nil, nil, nil)
}
func (r oneVersion) GetCompatibilityLevel(string, bool) (*srclient.CompatibilityLevel, error) {
	return &r.level, nil
}
func (r oneVersion) IsSchemaCompatible(subject, schema, version string, _ srclient.SchemaType, _ ...srclient.Reference) (bool, error) {
	ps, err := Compare("TodoCreated", schema, r.text, 1, r.level)
	return len(ps) == 0, err
}

// The gate says which deployment order a change allows, whatever the level checks: issue 15's
// example, dropping the required title, passes BACKWARD_TRANSITIVE but is "consumers first", and
// this pipeline deploys todo-api (the producer) first.
func TestDeployOrder(t *testing.T) {
	for _, tc := range []struct {
		name      string
		candidate string
		want      DeployOrder
	}{
		{"unchanged", schemas.TodoCreatedV1, EitherOrder},
		{"field added with a default", edit(t, `{"name": "title", "type": "string"},`, `{"name": "title", "type": "string"}, {"name": "note", "type": "string", "default": ""},`), EitherOrder},
		{"required title dropped", edit(t, `{"name": "title", "type": "string"},`, ``), ConsumersFirst},
		{"field added without a default", edit(t, `{"name": "title", "type": "string"},`, `{"name": "title", "type": "string"}, {"name": "note", "type": "string"},`), ProducerFirst},
		{"type changed", edit(t, `{"name": "title", "type": "string"}`, `{"name": "title", "type": "int"}`), NoOrder},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Check(oneVersion{schemas.TodoCreatedV1, srclient.BackwardTransitive}, "s", "f.avsc", "TodoCreated", tc.candidate)
			if err != nil {
				t.Fatal(err)
			}
			if r.Deploy != tc.want || r.Deploy.Describe() == "" {
				t.Errorf("Deploy = %q, want %q (problems %v)", r.Deploy, tc.want, r.Problems)
			}
		})
	}
}
