package resolve

import (
	"errors"
	"strings"
	"testing"
)

// Check lists every incompatibility, each with its kind and path, and is strict where NewPlan
// leaves the failure to the datum (enum symbols, union branches).
func TestCheck(t *testing.T) {
	one := func(typ string, extra ...string) string { return rec("R", fld("a", `"int"`), fld("v", typ, extra...)) }
	status := func(syms string, extra string) string {
		return `{"type":"enum","name":"Status","symbols":[` + syms + `]` + extra + `}`
	}
	type want struct {
		kind             Kind
		path, field, sym string
		renamed          string
	}
	cases := []struct {
		name           string
		writer, reader string
		want           []want
	}{
		{name: "same schema", writer: one(`"string"`), reader: one(`"string"`)},
		{name: "reader field with a default, writer without it", writer: rec("R", fld("a", `"int"`)), reader: one(`"string"`, `"default":"x"`)},
		{name: "reader field without default, writer without it", writer: rec("R", fld("a", `"int"`)), reader: one(`"string"`),
			want: []want{{kind: FieldMissing, path: "v", field: "v"}}},
		{name: "writer field the reader lacks is ignored", writer: one(`"string"`), reader: rec("R", fld("a", `"int"`))},
		{name: "renamed without alias: the writer field that could be it is named", writer: rec("R", fld("a", `"int"`), fld("title", `"string"`)),
			reader: rec("R", fld("a", `"int"`), fld("name", `"string"`)), want: []want{{kind: FieldMissing, path: "name", field: "name", renamed: "title"}}},
		{name: "renamed with alias", writer: rec("R", fld("a", `"int"`), fld("title", `"string"`)),
			reader: rec("R", fld("a", `"int"`), fld("name", `"string"`, `"aliases":["title"]`))},
		{name: "incompatible type", writer: one(`"string"`), reader: one(`"int"`), want: []want{{kind: TypeMismatch, path: "v"}}},
		{name: "promotion int to double", writer: one(`"int"`), reader: one(`"double"`)},
		{name: "no demotion long to int", writer: one(`"long"`), reader: one(`"int"`), want: []want{{kind: TypeMismatch, path: "v"}}},
		{name: "string to bytes", writer: one(`"string"`), reader: one(`"bytes"`)},
		{name: "bytes to string", writer: one(`"bytes"`), reader: one(`"string"`)},
		{name: "record renamed without alias", writer: one(rec("In", fld("x", `"int"`))), reader: one(rec("Other", fld("x", `"int"`))),
			want: []want{{kind: NameMismatch, path: "v"}}},
		{name: "fixed sizes differ", writer: one(`{"type":"fixed","name":"F","size":2}`), reader: one(`{"type":"fixed","name":"F","size":3}`),
			want: []want{{kind: SizeMismatch, path: "v"}}},
		{name: "enum symbol added, reader without default: incompatible for every symbol", writer: one(status(`"A","B","C","D"`, "")), reader: one(status(`"A","B"`, "")),
			want: []want{{kind: SymbolMissing, path: "v", sym: "C"}, {kind: SymbolMissing, path: "v", sym: "D"}}},
		{name: "enum symbol added, reader with default", writer: one(status(`"A","B","C"`, "")), reader: one(status(`"A","B"`, `,"default":"A"`))},
		{name: "enum symbol removed from the writer", writer: one(status(`"A"`, "")), reader: one(status(`"A","B"`, ""))},
		{name: "writer union branch the reader union lacks", writer: one(`["null","string","int"]`), reader: one(`["null","string"]`),
			want: []want{{kind: BranchMissing, path: "v"}}},
		{name: "writer union, reader not: the null branch does not read", writer: one(`["null","int"]`), reader: one(`"long"`),
			want: []want{{kind: TypeMismatch, path: "v"}}},
		{name: "reader union without the writer's type", writer: one(`"boolean"`), reader: one(`["null","string"]`),
			want: []want{{kind: BranchMissing, path: "v"}}},
		{name: "field made optional", writer: one(`"string"`), reader: one(`["null","string"]`, `"default":null`)},
		{name: "nested record, array and map paths", writer: rec("R", fld("in", rec("In", fld("xs", `{"type":"array","items":"string"}`), fld("m", `{"type":"map","values":"long"}`)))),
			reader: rec("R", fld("in", rec("In", fld("xs", `{"type":"array","items":"int"}`), fld("m", `{"type":"map","values":"int"}`), fld("y", `"int"`)))),
			want:   []want{{kind: TypeMismatch, path: "in.xs[]"}, {kind: TypeMismatch, path: "in.m{}"}, {kind: FieldMissing, path: "in.y", field: "y"}}},
		{name: "recursive type ends", writer: `{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}`,
			reader: `{"type":"record","name":"L","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","L"]},{"name":"w","type":"int"}]}`,
			want:   []want{{kind: FieldMissing, path: "w", field: "w"}}},
		{name: "reader default that is not of its type", writer: rec("R", fld("a", `"int"`)), reader: one(`"int"`, `"default":"x"`),
			want: []want{{kind: BadDefault, path: "v", field: "v"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Check(tc.writer, tc.reader)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d incompatibilities %v, want %d %+v", len(got), got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Kind != w.kind || g.Path != w.path || g.Field != w.field || g.Symbol != w.sym || g.Renamed != w.renamed {
					t.Errorf("incompatibility %d = %+v, want %+v", i, g, w)
				}
				if g.Rule == "" || !strings.Contains(g.Rule, "spec:") {
					t.Errorf("incompatibility %d has no rule: %+v", i, g)
				}
			}
			// Where Check finds nothing, NewPlan makes a plan: the gate is never more lenient.
			_, perr := NewPlan(tc.writer, tc.reader)
			if len(got) == 0 && perr != nil {
				t.Errorf("Check found nothing but NewPlan fails: %v", perr)
			}
		})
	}
}

func TestCheckInvalidSchema(t *testing.T) {
	if _, err := Check(`{"type":"record"}`, `"int"`); !errors.Is(err, ErrSchema) {
		t.Fatalf("err = %v, want ErrSchema", err)
	}
	if _, err := Check(`"int"`, `nope`); !errors.Is(err, ErrSchema) {
		t.Fatalf("err = %v, want ErrSchema", err)
	}
}

// Found by FuzzResolve (testdata/fuzz/FuzzResolve/56ff0a2a740ed608): a recursive record whose field
// was renamed without an alias made Check look for the rename inside the rename for ever (a stack
// overflow after minutes). It names the rename once.
func TestCheckRenamedFieldOfARecursiveRecord(t *testing.T) {
	w := `{"type":"record","name":"L","fields":[{"name":"ext","type":["null","L"]}]}`
	r := `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`
	incs, err := Check(w, r)
	if err != nil || len(incs) != 1 || incs[0].Kind != FieldMissing || incs[0].Renamed != "ext" {
		t.Fatalf("Check = %+v, %v; want one missing field, perhaps renamed from ext", incs, err)
	}
}
