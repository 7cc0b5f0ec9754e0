package resolve

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// Spec, "if both are records": fields are matched by name, in any order; a reader field's
// aliases name the writer field it reads ("Aliases"); a writer field the reader lacks is
// ignored; a reader field the writer lacks takes its default, and is an error without one.
func TestRecordFields(t *testing.T) {
	w := rec("R", fld("a", `"int"`), fld("b", `"string"`), fld("c", `"long"`))
	datum := m{"a": int32(1), "b": "x", "c": int64(3)}
	runCases(t, []rcase{
		{name: "same fields", writer: w, reader: w, datum: datum, want: datum},
		{name: "matched by name in another order",
			writer: w, reader: rec("R", fld("c", `"long"`), fld("a", `"int"`), fld("b", `"string"`)),
			datum: datum, want: datum},
		{name: "writer field unknown to the reader is skipped",
			writer: w, reader: rec("R", fld("a", `"int"`), fld("c", `"long"`)),
			datum: datum, want: m{"a": int32(1), "c": int64(3)}},
		{name: "renamed field read by its alias",
			writer: w, reader: rec("R", fld("a", `"int"`), fld("title", `"string"`, `"aliases":["old","b"]`), fld("c", `"long"`)),
			datum: datum, want: m{"a": int32(1), "title": "x", "c": int64(3)}},
		{name: "a field's own name wins over another field's alias",
			writer: w, reader: rec("R", fld("z", `"int"`, `"aliases":["a"]`, `"default":7`), fld("a", `"int"`)),
			datum: datum, want: m{"z": int32(7), "a": int32(1)}},
		{name: "two aliases of one writer field: the first reader field takes it",
			writer: w, reader: rec("R", fld("y", `"string"`, `"aliases":["b"]`), fld("z", `"string"`, `"aliases":["b"]`, `"default":"d"`)),
			datum: datum, want: m{"y": "x", "z": "d"}},
		{name: "reader field missing in the writer takes its default",
			writer: w, reader: rec("R", fld("a", `"int"`), fld("d", `"string"`, `"default":"none"`)),
			datum: datum, want: m{"a": int32(1), "d": "none"}},
		{name: "reader field missing in the writer without a default is an error",
			writer: w, reader: rec("R", fld("a", `"int"`), fld("d", `"string"`)),
			planErr: "field d: reader field d has no default and writer R has no field d"},
		{name: "an alias that names no writer field is no match",
			writer: w, reader: rec("R", fld("d", `"string"`, `"aliases":["e"]`)),
			planErr: "nor any of its aliases e"},
		{name: "field types resolve recursively",
			writer: w, reader: rec("R", fld("a", `"string"`)),
			planErr: "field a: writer int cannot be read as reader string"},
		{name: "nested record field gets its path",
			writer:  rec("R", fld("in", rec("In", fld("x", `"int"`)))),
			reader:  rec("R", fld("in", rec("In", fld("x", `"int"`), fld("y", `"int"`)))),
			planErr: "field in.y: reader field y has no default"},
	})
}

// Spec, "match": records, enums and fixed match when their unqualified names match; by
// "Aliases", a reader alias (full name, or relative to the reader's namespace) names the
// writer's type too.
func TestNamedTypeNames(t *testing.T) {
	recNS := func(name, ns string, extra string) string {
		return `{"type":"record","name":"` + name + `","namespace":"` + ns + `"` + extra + `,"fields":[{"name":"a","type":"int"}]}`
	}
	enum := func(name, extra string) string {
		return `{"type":"enum","name":"` + name + `"` + extra + `,"symbols":["A","B"]}`
	}
	fixed := func(name string, size int, extra string) string {
		return `{"type":"fixed","name":"` + name + `","size":` + string(rune('0'+size)) + extra + `}`
	}
	datum := m{"a": int32(5)}
	runCases(t, []rcase{
		{name: "record same full name", writer: recNS("R", "x.y", ""), reader: recNS("R", "x.y", ""), datum: datum, want: datum},
		{name: "record unqualified names match across namespaces", writer: recNS("R", "old.ns", ""), reader: recNS("R", "new.ns", ""), datum: datum, want: datum},
		{name: "record renamed, reader alias is the writer's full name",
			writer: recNS("Old", "x.y", ""), reader: recNS("New", "x.y", `,"aliases":["x.y.Old"]`), datum: datum, want: datum},
		{name: "record renamed, reader alias relative to the reader's namespace",
			writer: recNS("Old", "x.y", ""), reader: recNS("New", "x.y", `,"aliases":["Old"]`), datum: datum, want: datum},
		{name: "record renamed, alias in another namespace than the writer's is no match",
			writer: recNS("Old", "a.b", ""), reader: recNS("New", "x.y", `,"aliases":["Old"]`),
			planErr: "writer a.b.Old does not match reader x.y.New"},
		{name: "record names differ", writer: recNS("A", "x", ""), reader: recNS("B", "x", ""),
			planErr: "top level: writer x.A does not match reader x.B: the unqualified names differ and no reader alias names x.A"},
		{name: "enum renamed with alias", writer: enum("Old", ""), reader: enum("New", `,"aliases":["Old"]`), datum: "B", want: "B"},
		{name: "enum unqualified names", writer: enum("p.E", ""), reader: enum("q.E", ""), datum: "A", want: "A"},
		{name: "enum names differ", writer: enum("E", ""), reader: enum("F", ""), planErr: "writer E does not match reader F"},
		{name: "fixed same name and size", writer: fixed("F", 2, ""), reader: fixed("F", 2, ""), datum: []byte{1, 2}, want: []byte{1, 2}},
		{name: "fixed renamed with alias", writer: fixed("G", 2, ""), reader: fixed("F", 2, `,"aliases":["G"]`), datum: []byte{1, 2}, want: []byte{1, 2}},
		{name: "fixed sizes differ", writer: fixed("F", 2, ""), reader: fixed("F", 3, ""), planErr: "writer fixed F has size 2, reader fixed F size 3"},
		{name: "fixed names differ", writer: fixed("F", 2, ""), reader: fixed("G", 2, ""), planErr: "writer F does not match reader G"},
		{name: "record read as enum", writer: recNS("R", "x", ""), reader: enum("R", ""), planErr: "writer record x.R cannot be read as reader enum R"},
	})
}

// Spec, "Records": a reader field's default is used when the writer lacks the field; union
// defaults are of any branch (Avro 1.12); bytes and fixed defaults are strings of code points 0-255.
func TestDefaults(t *testing.T) {
	w := rec("R", fld("a", `"int"`))
	add := func(typ, def string) string {
		return rec("R", fld("a", `"int"`), fld("d", typ, `"default":`+def))
	}
	point := rec("Point", fld("x", `"int"`), fld("y", `"int"`, `"default":-1`), fld("tag", `["null","string"]`, `"default":null`))
	runCases(t, []rcase{
		{name: "null", writer: w, reader: add(`"null"`, `null`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": nil}},
		{name: "boolean", writer: w, reader: add(`"boolean"`, `true`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": true}},
		{name: "int", writer: w, reader: add(`"int"`, `-3`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": int32(-3)}},
		{name: "long beyond 2^53 stays exact", writer: w, reader: add(`"long"`, `9007199254740993`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": int64(9007199254740993)}},
		{name: "float", writer: w, reader: add(`"float"`, `1.5`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": float32(1.5)}},
		{name: "double from an integer literal", writer: w, reader: add(`"double"`, `2`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": float64(2)}},
		{name: "string", writer: w, reader: add(`"string"`, `"héllo"`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": "héllo"}},
		{name: "bytes are code points 0-255", writer: w, reader: add(`"bytes"`, `"\u00ff\u0000A"`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": []byte{0xff, 0, 'A'}}},
		{name: "fixed are code points 0-255", writer: w, reader: add(`{"type":"fixed","name":"F","size":2}`, `"\u00e9\u0001"`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": []byte{0xe9, 1}}},
		{name: "enum symbol", writer: w, reader: add(`{"type":"enum","name":"P","symbols":["LOW","NORMAL"]}`, `"NORMAL"`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": "NORMAL"}},
		{name: "array", writer: w, reader: add(`{"type":"array","items":"long"}`, `[1,2]`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": []any{int64(1), int64(2)}}},
		{name: "map", writer: w, reader: add(`{"type":"map","values":"string"}`, `{"k":"v"}`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": m{"k": "v"}}},
		{name: "nested record; its missing fields take their own defaults", writer: w, reader: add(point, `{"x":4}`),
			datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": m{"x": int32(4), "y": int32(-1), "tag": nil}}},
		{name: "union default is of its first branch: null", writer: w, reader: add(`["null","string"]`, `null`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": nil}},
		{name: "union default is of its first branch: string", writer: w, reader: add(`["string","null"]`, `"x"`), datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": m{"string": "x"}}},
		{name: "union default of a record branch", writer: w, reader: add(`[`+point+`,"null"]`, `{"x":1,"y":2,"tag":null}`),
			datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": m{"Point": m{"x": int32(1), "y": int32(2), "tag": nil}}}},
		{name: "timestamp-millis default is a time", writer: w, reader: add(`{"type":"long","logicalType":"timestamp-millis"}`, `1700000000123`),
			datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": time.UnixMilli(1700000000123).UTC()}},
		{name: "timestamp-millis default in a union", writer: w, reader: add(`[{"type":"long","logicalType":"timestamp-millis"},"null"]`, `0`),
			datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": m{"long.timestamp-millis": time.Unix(0, 0).UTC()}}},
		{name: "decimal default is its bytes", writer: w, reader: add(`{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`, `"\u0004\u00d2"`),
			datum: m{"a": int32(1)}, want: m{"a": int32(1), "d": big.NewRat(1234, 100)}},
		{name: "union default of no branch is an error", writer: w, reader: add(`["null","int"]`, `"x"`),
			planErr: `field d: reader default "x": not a valid value of any branch of union [null, int]`},
		{name: "bytes default above code point 255 is an error", writer: w, reader: add(`"bytes"`, `"\u0100"`), planErr: "code point U+0100 is above 255"},
		{name: "fixed default of the wrong length is an error", writer: w, reader: add(`{"type":"fixed","name":"F","size":2}`, `"a"`), planErr: "1 bytes, not 2"},
		{name: "int default that is no integer is an error", writer: w, reader: add(`"int"`, `1.5`), planErr: "not a valid int"},
		{name: "int default out of range is an error", writer: w, reader: add(`"int"`, `2147483648`), planErr: "not a valid int"},
		{name: "enum default that is no symbol is an error", writer: w, reader: add(`{"type":"enum","name":"P","symbols":["LOW"]}`, `"HIGH"`), planErr: "not a valid enum P"},
		{name: "record default missing a field without default is an error", writer: w, reader: add(point, `{"y":1}`), planErr: "field x is missing and has no default"},
	})
}

// A default is a new value on every Decode: a caller that changes one result does not change
// the next.
func TestDefaultsAreFreshPerDecode(t *testing.T) {
	w := rec("R", fld("a", `"int"`))
	r := rec("R", fld("a", `"int"`), fld("d", `{"type":"map","values":{"type":"array","items":"bytes"}}`, `"default":{"k":["\u0001"]}`))
	p, err := NewPlan(w, r)
	if err != nil {
		t.Fatal(err)
	}
	body := encode(t, w, m{"a": int32(1)})
	first, _ := p.Decode(body)
	d := first.(m)["d"].(m)
	d["k"].([]any)[0].([]byte)[0] = 99
	d["other"] = 1
	second, _ := p.Decode(body)
	want := m{"a": int32(1), "d": m{"k": []any{[]byte{1}}}}
	if !equalNative(second, want) {
		t.Fatalf("second decode %s, want %s", show(second), show(want))
	}
}

// Spec, "match": int is promotable to long, float or double; long to float or double; float to
// double; string to bytes and bytes to string. Nothing else changes type.
func TestPromotions(t *testing.T) {
	one := func(typ string) string { return rec("R", fld("v", typ)) }
	cases := []rcase{
		{name: "int to long", writer: one(`"int"`), reader: one(`"long"`), datum: m{"v": int32(-7)}, want: m{"v": int64(-7)}},
		{name: "int to float", writer: one(`"int"`), reader: one(`"float"`), datum: m{"v": int32(16777217)}, want: m{"v": float32(16777217)}},
		{name: "int to double", writer: one(`"int"`), reader: one(`"double"`), datum: m{"v": int32(3)}, want: m{"v": float64(3)}},
		{name: "long to float", writer: one(`"long"`), reader: one(`"float"`), datum: m{"v": int64(1) << 40}, want: m{"v": float32(1 << 40)}},
		{name: "long to double", writer: one(`"long"`), reader: one(`"double"`), datum: m{"v": int64(-1) << 60}, want: m{"v": float64(-1 << 60)}},
		{name: "float to double", writer: one(`"float"`), reader: one(`"double"`), datum: m{"v": float32(0.1)}, want: m{"v": float64(float32(0.1))}},
		{name: "string to bytes", writer: one(`"string"`), reader: one(`"bytes"`), datum: m{"v": "é"}, want: m{"v": []byte("é")}},
		{name: "bytes to string", writer: one(`"bytes"`), reader: one(`"string"`), datum: m{"v": []byte("ok")}, want: m{"v": "ok"}},
		{name: "in array items", writer: one(`{"type":"array","items":"int"}`), reader: one(`{"type":"array","items":"double"}`),
			datum: m{"v": []any{int32(1), int32(2)}}, want: m{"v": []any{float64(1), float64(2)}}},
		{name: "in map values", writer: one(`{"type":"map","values":"float"}`), reader: one(`{"type":"map","values":"double"}`),
			datum: m{"v": m{"k": float32(2.5)}}, want: m{"v": m{"k": float64(2.5)}}},
		{name: "string written, int read", writer: one(`"string"`), reader: one(`"int"`), planErr: "field v: writer string cannot be read as reader int"},
		{name: "long written, int read", writer: one(`"long"`), reader: one(`"int"`), planErr: "writer long cannot be read as reader int"},
		{name: "double written, float read", writer: one(`"double"`), reader: one(`"float"`), planErr: "writer double cannot be read as reader float"},
		{name: "float written, long read", writer: one(`"float"`), reader: one(`"long"`), planErr: "writer float cannot be read as reader long"},
		{name: "boolean written, int read", writer: one(`"boolean"`), reader: one(`"int"`), planErr: "writer boolean cannot be read as reader int"},
		{name: "bytes written, fixed read", writer: one(`"bytes"`), reader: one(`{"type":"fixed","name":"F","size":1}`), planErr: "writer bytes cannot be read as reader fixed F"},
		{name: "array items that do not match", writer: one(`{"type":"array","items":"string"}`), reader: one(`{"type":"array","items":"int"}`),
			planErr: "field v[]: writer string cannot be read as reader int"},
		{name: "map values that do not match", writer: one(`{"type":"map","values":"long"}`), reader: one(`{"type":"map","values":"int"}`),
			planErr: "field v{}: writer long cannot be read as reader int"},
		{name: "array read as map", writer: one(`{"type":"array","items":"int"}`), reader: one(`{"type":"map","values":"int"}`),
			planErr: "writer array of int cannot be read as reader map of int"},
	}
	for _, p := range []string{"null", "boolean", "int", "long", "float", "double", "bytes", "string"} {
		datum := map[string]any{"null": nil, "boolean": true, "int": int32(1), "long": int64(2), "float": float32(3),
			"double": float64(4), "bytes": []byte{5}, "string": "6"}[p]
		cases = append(cases, rcase{name: "same " + p, writer: one(q(p)), reader: one(q(p)), datum: m{"v": datum}, want: m{"v": datum}})
	}
	runCases(t, cases)
}

// Spec, "if both are enums": a writer symbol the reader lacks reads as the reader's default
// when it has one, and is an error otherwise. The error is signalled when such a symbol is
// read: at plan time only its possibility is known, so the plan is made.
func TestEnums(t *testing.T) {
	enum := func(syms, extra string) string {
		return rec("R", fld("status", `{"type":"enum","name":"Status","symbols":[`+syms+`]`+extra+`}`))
	}
	w := enum(`"PENDING","COMPLETED","ARCHIVED"`, "")
	runCases(t, []rcase{
		{name: "same symbols", writer: w, reader: w, datum: m{"status": "ARCHIVED"}, want: m{"status": "ARCHIVED"}},
		{name: "reader has more symbols, in another order", writer: w, reader: enum(`"ARCHIVED","NEW","PENDING","COMPLETED"`, ""),
			datum: m{"status": "COMPLETED"}, want: m{"status": "COMPLETED"}},
		{name: "unknown symbol takes the reader default", writer: w, reader: enum(`"PENDING","COMPLETED","UNKNOWN"`, `,"default":"UNKNOWN"`),
			datum: m{"status": "ARCHIVED"}, want: m{"status": "UNKNOWN"}},
		{name: "known symbol with a reader default is itself", writer: w, reader: enum(`"PENDING","COMPLETED","UNKNOWN"`, `,"default":"UNKNOWN"`),
			datum: m{"status": "PENDING"}, want: m{"status": "PENDING"}},
		{name: "unknown symbol without reader default: plan made, known symbol reads", writer: w, reader: enum(`"PENDING","COMPLETED"`, ""),
			datum: m{"status": "COMPLETED"}, want: m{"status": "COMPLETED"}},
		{name: "unknown symbol without reader default: error when read", writer: w, reader: enum(`"PENDING","COMPLETED"`, ""),
			datum:     m{"status": "ARCHIVED"},
			decodeErr: `field status: enum symbol "ARCHIVED" written by the writer is not a symbol of reader enum Status, which has no default`},
		{name: "in an array, the path names the items", writer: rec("R", fld("s", `{"type":"array","items":{"type":"enum","name":"E","symbols":["A","B"]}}`)),
			reader: rec("R", fld("s", `{"type":"array","items":{"type":"enum","name":"E","symbols":["A"]}}`)),
			datum:  m{"s": []any{"A", "B"}}, decodeErr: `field s[]: enum symbol "B"`},
	})
}

// Spec, unions: a writer union is resolved branch by branch, and the branch a datum holds is
// read, an error only when no reader branch matches it; a reader union reads a non-union
// writer by its first branch that matches.
func TestUnions(t *testing.T) {
	one := func(typ string) string { return rec("R", fld("v", typ)) }
	point := rec("com.x.Point", fld("x", `"int"`))
	point2 := rec("com.x.Point", fld("x", `"long"`), fld("y", `"int"`, `"default":0`))
	runCases(t, []rcase{
		{name: "same union, null", writer: one(`["null","string"]`), reader: one(`["null","string"]`), datum: m{"v": nil}, want: m{"v": nil}},
		{name: "same union, string", writer: one(`["null","string"]`), reader: one(`["null","string"]`), datum: m{"v": u("string", "s")}, want: m{"v": m{"string": "s"}}},
		{name: "union widened and reordered", writer: one(`["null","string"]`), reader: one(`["int","string","null"]`),
			datum: m{"v": u("string", "s")}, want: m{"v": m{"string": "s"}}},
		{name: "writer branch promoted to another reader branch", writer: one(`["null","int"]`), reader: one(`["null","long"]`),
			datum: m{"v": u("int", int32(4))}, want: m{"v": m{"long": int64(4)}}},
		{name: "writer branch takes the first reader branch that matches", writer: one(`["null","int"]`), reader: one(`["null","double","long"]`),
			datum: m{"v": u("int", int32(4))}, want: m{"v": m{"double": float64(4)}}},
		{name: "a branch of the writer's own type comes before a promotion", writer: one(`"int"`), reader: one(`["long","int"]`),
			datum: m{"v": int32(4)}, want: m{"v": m{"int": int32(4)}}},
		{name: "a union holding int and long read with itself keeps both", writer: one(`["long","int"]`), reader: one(`["long","int"]`),
			datum: m{"v": u("int", int32(4))}, want: m{"v": m{"int": int32(4)}}},
		{name: "the same full name comes before an unqualified match", writer: one(point), reader: one(`["null",` + strings.Replace(point, "com.x.", "other.", 1) + `,` + point2 + `]`),
			datum: m{"v": m{"x": int32(1)}}, want: m{"v": m{"com.x.Point": m{"x": int64(1), "y": int32(0)}}}},
		{name: "an unqualified name matches when no full name does", writer: one(point), reader: one(`["null",` + strings.Replace(point2, "com.x.", "other.", 1) + `]`),
			datum: m{"v": m{"x": int32(1)}}, want: m{"v": m{"other.Point": m{"x": int64(1), "y": int32(0)}}}},
		{name: `"namespace": "" is the null namespace, not the enclosing one`,
			writer: `{"type":"record","name":"R","namespace":"com.x","fields":[{"name":"v","type":["null",{"type":"enum","name":"E","namespace":"","symbols":["A"]}]}]}`,
			reader: `{"type":"record","name":"R","namespace":"com.x","fields":[{"name":"v","type":["null",{"type":"enum","name":"E","namespace":"","symbols":["A"]}]}]}`,
			datum:  m{"v": u("com.x.E", "A")}, want: m{"v": m{"E": "A"}}},
		{name: "named branch resolved recursively", writer: one(`["null",` + point + `]`), reader: one(`[` + point2 + `,"null"]`),
			datum: m{"v": u("com.x.Point", m{"x": int32(2)})}, want: m{"v": m{"com.x.Point": m{"x": int64(2), "y": int32(0)}}}},
		{name: "non-union writer, reader union: first matching branch", writer: one(`"int"`), reader: one(`["null","string","long","double"]`),
			datum: m{"v": int32(9)}, want: m{"v": m{"long": int64(9)}}},
		{name: "non-union writer null, reader union", writer: one(`"null"`), reader: one(`["string","null"]`),
			datum: m{"v": nil}, want: m{"v": nil}},
		{name: "non-union writer record, reader union", writer: one(point), reader: one(`["null",` + point2 + `]`),
			datum: m{"v": m{"x": int32(1)}}, want: m{"v": m{"com.x.Point": m{"x": int64(1), "y": int32(0)}}}},
		{name: "writer union, reader not: branch that resolves", writer: one(`["null","int"]`), reader: one(`"long"`),
			datum: m{"v": u("int", int32(3))}, want: m{"v": int64(3)}},
		{name: "writer union, reader not: branch that does not resolve fails when read", writer: one(`["null","int"]`), reader: one(`"long"`),
			datum: m{"v": nil}, decodeErr: "field v: writer null cannot be read as reader long"},
		{name: "both unions: writer branch without reader match fails when read", writer: one(`["null","string","int"]`), reader: one(`["null","string"]`),
			datum: m{"v": u("int", int32(1))}, decodeErr: "no branch of reader union [null, string] matches writer int"},
		{name: "both unions: other branches still read", writer: one(`["null","string","int"]`), reader: one(`["null","string"]`),
			datum: m{"v": u("string", "ok")}, want: m{"v": m{"string": "ok"}}},
		{name: "no writer branch resolves", writer: one(`["null","string"]`), reader: one(`"int"`),
			planErr: "field v: no branch of writer union [null, string] resolves against reader int"},
		{name: "reader union without a branch for the writer", writer: one(`"boolean"`), reader: one(`["null","string"]`),
			planErr: "field v: no branch of reader union [null, string] matches writer boolean"},
		{name: "matching reader branch that fails deeper is an error", writer: one(point2), reader: one(`["null",` + point + `]`),
			planErr: "field v<com.x.Point>.x: writer long cannot be read as reader int"},
	})
}

// Nested records, arrays and maps resolve their items, values and fields recursively; the
// result is what goavro gives for the reader's schema.
func TestNested(t *testing.T) {
	item := rec("Item", fld("id", `"int"`), fld("gone", `"string"`))
	item2 := rec("Item", fld("id", `"long"`), fld("note", `["null","string"]`, `"default":null`))
	w := rec("R", fld("items", `{"type":"array","items":`+item+`}`), fld("byKey", `{"type":"map","values":"Item"}`))
	r := rec("R", fld("byKey", `{"type":"map","values":`+item2+`}`), fld("items", `{"type":"array","items":"Item"}`))
	runCases(t, []rcase{
		{name: "array of records and map of records", writer: w, reader: r,
			datum: m{"items": []any{m{"id": int32(1), "gone": "x"}}, "byKey": m{"k": m{"id": int32(2), "gone": "y"}}},
			want:  m{"items": []any{m{"id": int64(1), "note": nil}}, "byKey": m{"k": m{"id": int64(2), "note": nil}}}},
		{name: "empty array and map", writer: w, reader: r, datum: m{"items": []any{}, "byKey": m{}}, want: m{"items": []any{}, "byKey": m{}}},
		{name: "array of arrays of maps", writer: rec("R", fld("v", `{"type":"array","items":{"type":"array","items":{"type":"map","values":"int"}}}`)),
			reader: rec("R", fld("v", `{"type":"array","items":{"type":"array","items":{"type":"map","values":"long"}}}`)),
			datum:  m{"v": []any{[]any{m{"a": int32(1)}}}}, want: m{"v": []any{[]any{m{"a": int64(1)}}}}},
	})
}

// Spec, "Logical Types": a logical type is carried by its underlying type; goavro's native
// forms are kept (time.Time for timestamp-millis, timestamp-micros and date, time.Duration for
// time-millis and time-micros, *big.Rat for decimal).
func TestLogicalTypes(t *testing.T) {
	one := func(typ string) string { return rec("R", fld("v", typ)) }
	tsMillis := `{"type":"long","logicalType":"timestamp-millis"}`
	tsMicros := `{"type":"long","logicalType":"timestamp-micros"}`
	date := `{"type":"int","logicalType":"date"}`
	timeMillis := `{"type":"int","logicalType":"time-millis"}`
	dec := func(p, s int) string {
		return `{"type":"bytes","logicalType":"decimal","precision":` + itoa(p) + `,"scale":` + itoa(s) + `}`
	}
	at := time.UnixMilli(1700000000123).UTC()
	runCases(t, []rcase{
		{name: "timestamp-millis both sides", writer: one(tsMillis), reader: one(tsMillis), datum: m{"v": at}, want: m{"v": at}},
		{name: "timestamp-millis before 1970", writer: one(tsMillis), reader: one(tsMillis), datum: m{"v": time.UnixMilli(-1).UTC()}, want: m{"v": time.UnixMilli(-1).UTC()}},
		{name: "long written, timestamp-millis read", writer: one(`"long"`), reader: one(tsMillis), datum: m{"v": int64(1700000000123)}, want: m{"v": at}},
		{name: "int written, timestamp-millis read: promoted, then a time", writer: one(`"int"`), reader: one(tsMillis), datum: m{"v": int32(-5)}, want: m{"v": time.UnixMilli(-5).UTC()}},
		{name: "int written, timestamp-micros read in a union", writer: one(`["null","int"]`), reader: one(`["null",` + tsMicros + `]`),
			datum: m{"v": u("int", int32(7))}, want: m{"v": m{"long.timestamp-micros": time.UnixMicro(7).UTC()}}},
		{name: "timestamp-millis written, long read", writer: one(tsMillis), reader: one(`"long"`), datum: m{"v": at}, want: m{"v": int64(1700000000123)}},
		{name: "timestamp-millis written, double read (promotion of the long)", writer: one(tsMillis), reader: one(`"double"`), datum: m{"v": at}, want: m{"v": float64(1700000000123)}},
		{name: "timestamp-millis written, timestamp-micros read: the long is carried as is", writer: one(tsMillis), reader: one(tsMicros),
			datum: m{"v": at}, want: m{"v": time.UnixMicro(1700000000123).UTC()}},
		{name: "int written, date read", writer: one(`"int"`), reader: one(date), datum: m{"v": int32(19000)}, want: m{"v": time.Date(2022, 1, 8, 0, 0, 0, 0, time.UTC)}},
		{name: "date written, long read", writer: one(date), reader: one(`"long"`), datum: m{"v": time.Date(2022, 1, 8, 0, 0, 0, 0, time.UTC)}, want: m{"v": int64(19000)}},
		{name: "time-millis both sides", writer: one(timeMillis), reader: one(timeMillis), datum: m{"v": 90 * time.Second}, want: m{"v": 90 * time.Second}},
		{name: "timestamp-millis in a union keyed as goavro keys it", writer: one(`["null",` + tsMillis + `]`), reader: one(`["null",` + tsMillis + `]`),
			datum: m{"v": u("long.timestamp-millis", at)}, want: m{"v": m{"long.timestamp-millis": at}}},
		{name: "long in a union read as timestamp-millis in a union", writer: one(`["null","long"]`), reader: one(`["null",` + tsMillis + `]`),
			datum: m{"v": u("long", int64(0))}, want: m{"v": m{"long.timestamp-millis": time.Unix(0, 0).UTC()}}},
		{name: "decimal both sides", writer: one(dec(6, 2)), reader: one(dec(6, 2)), datum: m{"v": big.NewRat(-12345, 100)}, want: m{"v": big.NewRat(-12345, 100)}},
		{name: "decimal read as its bytes", writer: one(dec(6, 2)), reader: one(`"bytes"`), datum: m{"v": big.NewRat(1234, 100)}, want: m{"v": []byte{0x04, 0xd2}}},
		{name: "bytes read as decimal", writer: one(`"bytes"`), reader: one(dec(6, 2)), datum: m{"v": []byte{0xff}}, want: m{"v": big.NewRat(-1, 100)}},
		{name: "decimals of another scale do not match", writer: one(dec(6, 2)), reader: one(dec(6, 3)),
			planErr: "field v: writer decimal(6,2) does not match reader decimal(6,3)"},
		{name: "unknown logical type reads as its underlying type", writer: one(`{"type":"string","logicalType":"uuid"}`), reader: one(`{"type":"string","logicalType":"uuid"}`),
			datum: m{"v": "0e6f0d6c-52b9-4b1e-9a3f-0f1b8b2b1c11"}, want: m{"v": "0e6f0d6c-52b9-4b1e-9a3f-0f1b8b2b1c11"}},
	})
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// Recursive types (spec, "Records": a linked list refers to itself) resolve without looping,
// at plan time and at decode time.
func TestRecursiveTypes(t *testing.T) {
	w := `{"type":"record","name":"LongList","fields":[{"name":"value","type":"long"},{"name":"next","type":["null","LongList"]}]}`
	r := `{"type":"record","name":"LinkedLongs","aliases":["LongList"],"fields":[
		{"name":"value","type":"double"},
		{"name":"label","type":"string","default":"-"},
		{"name":"next","type":["null","LinkedLongs"]}]}`
	var datum any
	var want any
	for i := 3; i >= 1; i-- {
		var next, wantNext any
		if datum != nil {
			next, wantNext = u("LongList", datum), m{"LinkedLongs": want}
		}
		datum = m{"value": int64(i), "next": next}
		want = m{"value": float64(i), "label": "-", "next": wantNext}
	}
	// Mutual recursion: A holds Bs, each B holds an optional A.
	mw := `{"type":"record","name":"A","fields":[{"name":"bs","type":{"type":"array","items":{"type":"record","name":"B","fields":[{"name":"a","type":["null","A"]},{"name":"n","type":"int"}]}}}]}`
	mr := `{"type":"record","name":"A","fields":[{"name":"bs","type":{"type":"array","items":{"type":"record","name":"B","fields":[{"name":"n","type":"long"},{"name":"a","type":["null","A"]}]}}}]}`
	runCases(t, []rcase{
		{name: "linked list renamed, promoted, field added", writer: w, reader: r, datum: datum, want: want},
		{name: "identical recursive schema", writer: w, reader: w, datum: m{"value": int64(1), "next": u("LongList", m{"value": int64(2), "next": nil})},
			want: m{"value": int64(1), "next": m{"LongList": m{"value": int64(2), "next": nil}}}},
		{name: "mutual recursion", writer: mw, reader: mr,
			datum: m{"bs": []any{m{"n": int32(1), "a": u("A", m{"bs": []any{m{"n": int32(2), "a": nil}}})}}},
			want:  m{"bs": []any{m{"n": int64(1), "a": m{"A": m{"bs": []any{m{"n": int64(2), "a": nil}}}}}}}},
		{name: "recursive type that does not resolve", writer: w,
			reader:  `{"type":"record","name":"LongList","fields":[{"name":"value","type":"int"},{"name":"next","type":["null","LongList"]}]}`,
			planErr: "field value: writer long cannot be read as reader int"},
	})
}

// With the same schema on both sides, Decode gives exactly what goavro gives.
func TestSameSchemaIsGoavro(t *testing.T) {
	s := rec("com.x.All",
		fld("n", `"null"`), fld("b", `"boolean"`), fld("i", `"int"`), fld("l", `"long"`), fld("f", `"float"`), fld("d", `"double"`),
		fld("by", `"bytes"`), fld("s", `"string"`), fld("e", `{"type":"enum","name":"E","symbols":["A","B"]}`),
		fld("fx", `{"type":"fixed","name":"F","size":2}`), fld("a", `{"type":"array","items":"E"}`), fld("mp", `{"type":"map","values":"F"}`),
		fld("un", `["null","E","F",{"type":"long","logicalType":"timestamp-micros"}]`),
		fld("ts", `{"type":"long","logicalType":"timestamp-millis"}`), fld("dt", `{"type":"int","logicalType":"date"}`),
		fld("tm", `{"type":"long","logicalType":"time-micros"}`),
		fld("dec", `{"type":"fixed","name":"D","size":4,"logicalType":"decimal","precision":8,"scale":3}`))
	datum := m{"n": nil, "b": true, "i": int32(-1), "l": int64(1) << 50, "f": float32(1.25), "d": 2.5, "by": []byte{0, 1}, "s": "s",
		"e": "B", "fx": []byte{9, 8}, "a": []any{"A", "B"}, "mp": m{"k": []byte{1, 2}}, "un": u("long.timestamp-micros", time.UnixMicro(5).UTC()),
		"ts": time.UnixMilli(7).UTC(), "dt": time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC), "tm": 3 * time.Microsecond, "dec": big.NewRat(-1, 1000)}
	body := encode(t, s, datum)
	p, err := NewPlan(s, s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	want := goavroDecode(t, s, body)
	if !equalNative(got, want) {
		t.Fatalf("plan gave\n%s\ngoavro gave\n%s", show(got), show(want))
	}
}

func goavroDecode(t testing.TB, schema string, body []byte) any {
	t.Helper()
	c, err := newGoavroCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := c.NativeFromBinary(body)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A body that is not valid Avro for the writer schema is ErrMalformed, never a panic.
func TestMalformed(t *testing.T) {
	s := rec("R", fld("s", `"string"`), fld("e", `{"type":"enum","name":"E","symbols":["A"]}`))
	p, err := NewPlan(s, s)
	if err != nil {
		t.Fatal(err)
	}
	body := encode(t, s, m{"s": "hello", "e": "A"})
	for name, b := range map[string][]byte{
		"truncated":         body[:3],
		"bytes left over":   append(append([]byte(nil), body...), 0),
		"enum index beyond": {0x00, 0x02},
		"empty":             nil,
	} {
		if _, err := p.Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode error %v, want ErrMalformed", name, err)
		}
	}
}

// Schemas that are not valid Avro are ErrSchema, with what is wrong.
func TestInvalidSchemas(t *testing.T) {
	valid := rec("R", fld("a", `"int"`))
	for _, tc := range []struct{ schema, want string }{
		{`{`, "not JSON"},
		{`"Nope"`, `unknown type "Nope"`},
		{rec("R", fld("a", `"int"`), fld("a", `"long"`)), "field a is defined twice"},
		{`["null","null"]`, "the union already has a null"},
		{`["null",["int"]]`, "unions may not immediately contain other unions"},
		{`{"type":"enum","name":"E","symbols":["A"],"default":"B"}`, "default \"B\" is not one of its symbols"},
		{`{"type":"fixed","name":"F"}`, "needs a size"},
		{rec("1R"), "not a valid Avro name"},
	} {
		if _, err := NewPlan(tc.schema, valid); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewPlan(%s): error %v, want ErrSchema containing %q", tc.schema, err, tc.want)
		}
		if _, err := NewPlan(valid, tc.schema); !errors.Is(err, ErrSchema) {
			t.Errorf("NewPlan(_, %s): error %v, want ErrSchema", tc.schema, err)
		}
	}
}

// Errors of NewPlan are *Error values with the path and rule, and wrap ErrIncompatible.
func TestErrorValue(t *testing.T) {
	_, err := NewPlan(rec("R", fld("a", rec("In", fld("b", `"string"`)))), rec("R", fld("a", rec("In", fld("b", `"int"`)))))
	var e *Error
	if !errors.As(err, &e) || e.Path != "a.b" || !errors.Is(err, ErrIncompatible) {
		t.Fatalf("error %#v, want *Error at path a.b wrapping ErrIncompatible", err)
	}
	if !strings.Contains(e.Rule, "spec:") {
		t.Fatalf("rule %q does not name the specification's rule", e.Rule)
	}
}
