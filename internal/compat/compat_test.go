package compat

import (
	"strings"
	"testing"

	"github.com/riferrei/srclient"

	"github.com/todocdc/pipeline/schemas"
)

// edit makes a candidate from version 1 of TodoCreated by replacing one piece of text.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	s := schemas.TodoCreatedV1
	out := strings.Replace(s, old, new, 1)
	if out == s {
		t.Fatalf("%q is not in version 1", old)
	}
	return out
}

// The gate's verdicts and words for the changes a developer makes, under the levels that matter.
func TestCompare(t *testing.T) {
	const (
		title     = `{"name": "title", "type": "string"},`
		createdAt = `{"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}`
	)
	withoutTitle := edit(t, title, "")
	titleInt := edit(t, title, `{"name": "title", "type": "int"},`)
	renamed := edit(t, title, `{"name": "name", "type": "string"},`)
	renamedAlias := edit(t, title, `{"name": "name", "type": "string", "aliases": ["title"]},`)
	newSymbol := edit(t, `"ARCHIVED"]`, `"ARCHIVED", "DELETED"]`)
	newSymbolDefault := edit(t, `"ARCHIVED"]}`, `"ARCHIVED", "DELETED"], "default": "PENDING"}`)
	addedDefault := edit(t, createdAt, createdAt+`, {"name": "due_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null}`)
	addedNoDefault := edit(t, createdAt, createdAt+`, {"name": "due_at", "type": "long"}`)
	current, err := schemas.FS.ReadFile("TodoCreated.avsc")
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name      string
		candidate string
		level     Level
		want      []string // one substring per problem, in order; none: compatible
	}{
		{"removing a field without a default, FORWARD", withoutTitle, srclient.Forward,
			[]string{`TodoCreated: field "title" removed, and version 1 has it without a default: consumers still using version 1 cannot read events written with the new schema (FORWARD)`}},
		{"removing a field without a default, FULL_TRANSITIVE", withoutTitle, srclient.FullTransitive,
			[]string{`field "title" removed, and version 1 has it without a default`}},
		{"removing a field, BACKWARD: the new reader ignores it", withoutTitle, srclient.Backward, nil},
		{"changing a field's type incompatibly, BACKWARD", titleInt, srclient.Backward,
			[]string{`TodoCreated: field "title" changed type from string (version 1) to int, which is not a promotion Avro allows (int to long, float or double; long to float or double; float to double; string to and from bytes): consumers using the new schema cannot read events written with version 1 (BACKWARD)`}},
		{"changing a field's type incompatibly, FULL: both ways", titleInt, srclient.Full,
			[]string{`field "title" changed type from string (version 1) to int, which is not a promotion`, `field "title" changed type from string (version 1) to int, and int cannot be read as string: consumers still using version 1`}},
		{"renaming a field without an alias, BACKWARD", renamed, srclient.BackwardTransitive,
			[]string{`TodoCreated: field "name" added without a default (if it is "title" renamed, add "aliases": ["title"] to it; or give it a default): consumers using the new schema cannot read events written with version 1 (BACKWARD_TRANSITIVE)`}},
		{"renaming a field without an alias, FORWARD", renamed, srclient.Forward,
			[]string{`field "title" renamed (to "name"?) or removed, and version 1 has it without a default; an alias in the new schema does not help consumers on version 1`}},
		{"renaming a field with an alias, BACKWARD", renamedAlias, srclient.Backward, nil},
		{"adding an enum symbol, FORWARD", newSymbol, srclient.Forward,
			[]string{`TodoCreated: enum at "status" gained symbol "DELETED", and version 1's enum has no default symbol to read it as: consumers still using version 1 cannot read events written with the new schema (FORWARD)`}},
		{"adding an enum symbol, BACKWARD", newSymbol, srclient.Backward, nil},
		{"adding an enum symbol and a default, FORWARD: version 1 has no default still", newSymbolDefault, srclient.Forward,
			[]string{`gained symbol "DELETED"`}},
		{"adding a field with a default, FULL_TRANSITIVE", addedDefault, srclient.FullTransitive, nil},
		{"adding a field without a default, BACKWARD", addedNoDefault, srclient.Backward,
			[]string{`TodoCreated: field "due_at" added without a default: consumers using the new schema cannot read events written with version 1 (BACKWARD)`}},
		{"adding a field without a default, FORWARD: old consumers ignore it", addedNoDefault, srclient.Forward, nil},
		{"NONE checks nothing", titleInt, srclient.None, nil},
		{"version 2 of TodoCreated against version 1, FULL_TRANSITIVE", string(current), srclient.FullTransitive, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Compare("TodoCreated", tc.candidate, schemas.TodoCreatedV1, 1, tc.level)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d problems, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i].Message, w) {
					t.Errorf("problem %d:\n got %s\nwant it to contain %s", i, got[i].Message, w)
				}
				if got[i].Version != 1 || got[i].Detail.Rule == "" {
					t.Errorf("problem %d: %+v", i, got[i])
				}
			}
		})
	}
}

func TestDirections(t *testing.T) {
	for _, tc := range []struct {
		level      Level
		dirs       string
		transitive bool
	}{
		{srclient.None, "", false},
		{srclient.Backward, "backward", false},
		{srclient.BackwardTransitive, "backward", true},
		{srclient.Forward, "forward", false},
		{srclient.ForwardTransitive, "forward", true},
		{srclient.Full, "backward forward", false},
		{srclient.FullTransitive, "backward forward", true},
	} {
		dirs, tr, err := Directions(tc.level)
		var names []string
		for _, d := range dirs {
			names = append(names, string(d))
		}
		if err != nil || strings.Join(names, " ") != tc.dirs || tr != tc.transitive {
			t.Errorf("%s: %v %v %v", tc.level, dirs, tr, err)
		}
	}
	if _, _, err := Directions("SOMETIMES"); err == nil {
		t.Error("unknown level: no error")
	}
}

// Issue 9: a reader field whose type is an empty union made Compare panic (index out of range)
// in both directions; it is an error now.
func TestCompareEmptyUnionIsAnError(t *testing.T) {
	old := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`
	bad := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"e","type":[],"default":null}]}`
	for _, l := range []Level{"BACKWARD", "FORWARD", "FULL_TRANSITIVE"} {
		if ps, err := Compare("R", bad, old, 1, l); err == nil {
			t.Errorf("%s: Compare = %v, nil; want an error", l, ps)
		}
	}
}
