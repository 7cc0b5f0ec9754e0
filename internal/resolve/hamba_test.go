package resolve

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// hambaRead decodes body, written with writer, as reader, with hamba's resolution.
func hambaRead(writer, reader string, body []byte) (any, error) {
	hw, err := avro.ParseWithCache(writer, "", &avro.SchemaCache{})
	if err != nil {
		return nil, err
	}
	hr, err := avro.ParseWithCache(reader, "", &avro.SchemaCache{})
	if err != nil {
		return nil, err
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(hr, hw)
	if err != nil {
		return nil, err
	}
	var v any
	err = avro.Config{}.Freeze().Unmarshal(resolved, body, &v)
	return v, err
}

// TestHambaDisagreements records where github.com/hamba/avro/v2 (v2.31.0) departs from the Avro
// specification, and so where the differential test makes no pairs: the specification wins,
// and this package follows it. Each case checks hamba's behaviour too, so that a hamba release
// that changes it fails here and the exclusion can be lifted.
func TestHambaDisagreements(t *testing.T) {
	type disagreement struct {
		name           string
		writer, reader string
		datum          any
		hambaErr       string // hamba fails with an error containing this; or:
		hambaGot       any    // hamba gives this value (after common())
		want           any    // what this package gives, per the specification
		wantErr        error  // or the error it gives
	}
	one := func(typ string) string { return rec("R", fld("v", typ)) }
	add := func(typ, def string) string { return rec("R", fld("a", `"int"`), fld("d", typ, `"default":`+def)) }
	base := rec("R", fld("a", `"int"`))
	enumW := one(`{"type":"enum","name":"E","symbols":["A","B"]}`)
	enumR := one(`{"type":"enum","name":"E","symbols":["A"]}`)
	dec := func(scale string) string {
		return one(`{"type":"bytes","logicalType":"decimal","precision":6,"scale":` + scale + `}`)
	}
	for _, d := range []disagreement{
		{
			// Spec, "if both are enums": the error is signalled when the reader meets a symbol it
			// lacks. hamba refuses the pair up front, so it cannot read even the symbols both have.
			name:   "enum symbol the reader lacks, no reader default: error only when read",
			writer: enumW, reader: enumR, datum: m{"v": "A"},
			hambaErr: "reader E is missing symbol B", want: m{"v": "A"},
		},
		{
			// Spec, "if writer's is a union, but reader's is not": an error is signalled if the
			// branch written does not match. hamba refuses any writer union with such a branch.
			name:   "writer union branch the reader cannot read: error only when read",
			writer: one(`["null","string"]`), reader: one(`"string"`), datum: m{"v": u("string", "s")},
			hambaErr: "reader schema string not compatible with writer schema null", want: m{"v": "s"},
		},
		{
			// Spec (1.12), "Decimal": two decimals match only if their scales and precisions match.
			// hamba resolves them and reads the unscaled integer with the reader's scale: 12.34
			// written is read as 1.234.
			name:   "decimals of different scales do not match",
			writer: dec("2"), reader: dec("3"), datum: m{"v": big.NewRat(1234, 100)},
			hambaGot: m{"v": big.NewRat(1234, 1000)}, wantErr: ErrIncompatible,
		},
		{
			// Spec, unions: "the first schema in the reader's union that matches". hamba takes it
			// word for word and reads a writer int as the reader's "long" although the reader
			// union has "int"; this package, like Java's, takes the writer's own type first
			// (see firstMatch), so data read with its own schema does not change type.
			name:   "writer int, reader union with long before int",
			writer: one(`"int"`), reader: one(`["long","int"]`), datum: m{"v": int32(5)},
			hambaGot: m{"v": int64(5)}, want: m{"v": m{"int": int32(5)}},
		},
		{
			// The same, with a writer union: hamba maps both writer branches to "long" and then
			// cannot build its resolved union. Data written with a schema cannot be read with the
			// same schema.
			name:   "union with long and int read with itself",
			writer: one(`["long","int"]`), reader: one(`["long","int"]`), datum: m{"v": u("int", int32(5))},
			hambaErr: "union type must be unique", want: m{"v": m{"int": int32(5)}},
		},
		{
			// Spec, "Records": default values for union fields correspond to the first schema in
			// the union. hamba cannot decode such a default when that schema has a logical type.
			name:   "union default whose first branch is timestamp-millis",
			writer: base, reader: add(`[{"type":"long","logicalType":"timestamp-millis"},"null"]`, `5`), datum: m{"a": int32(1)},
			hambaErr: "unknown union type long", want: m{"a": int32(1), "d": m{"long.timestamp-millis": time.UnixMilli(5).UTC()}},
		},
		{
			name:   "union default whose first branch is an enum",
			writer: base, reader: add(`[{"type":"enum","name":"E","symbols":["A"]},"null"]`, `"A"`), datum: m{"a": int32(1)},
			hambaErr: "unknown union type string", want: m{"a": int32(1), "d": m{"E": "A"}},
		},
		{
			name:   "union default whose first branch is a fixed",
			writer: base, reader: add(`[{"type":"fixed","name":"F","size":1},"null"]`, `"\u00ff"`), datum: m{"a": int32(1)},
			hambaErr: "unable to resolve type [1]uint8", want: m{"a": int32(1), "d": m{"F": []byte{0xff}}},
		},
		{
			name:   "union default whose first branch is a map",
			writer: base, reader: add(`[{"type":"map","values":"int"},"null"]`, `{"k":1}`), datum: m{"a": int32(1)},
			hambaErr: "unknown union type k", want: m{"a": int32(1), "d": m{"map": m{"k": int32(1)}}},
		},
		{
			name:   "union default whose first branch is a record",
			writer: base, reader: add(`[{"type":"record","name":"S","fields":[{"name":"x","type":"int"}]},"null"]`, `{"x":1}`), datum: m{"a": int32(1)},
			hambaErr: "unknown union type x", want: m{"a": int32(1), "d": m{"S": m{"x": int32(1)}}},
		},
		{
			// A null inside a record, array or map default, where the inner type is a union.
			name:   "null for a union inside a record default",
			writer: base, reader: add(`{"type":"record","name":"S","fields":[{"name":"x","type":["null","int"]}]}`, `{"x":null}`), datum: m{"a": int32(1)},
			hambaErr: "unable to resolve type avro.nullDefaultType", want: m{"a": int32(1), "d": m{"x": nil}},
		},
		{
			name:   "null for a union inside an array default",
			writer: base, reader: add(`{"type":"array","items":["null","int"]}`, `[null]`), datum: m{"a": int32(1)},
			hambaErr: "unable to resolve type avro.nullDefaultType", want: m{"a": int32(1), "d": []any{nil}},
		},
		{
			// A time-micros default reads as 0 in hamba: the JSON number is not taken as
			// microseconds.
			name:   "time-micros default",
			writer: base, reader: add(`{"type":"long","logicalType":"time-micros"}`, `3`), datum: m{"a": int32(1)},
			hambaGot: m{"a": int32(1), "d": time.Duration(0)}, want: m{"a": int32(1), "d": 3 * time.Microsecond},
		},
	} {
		t.Run(d.name, func(t *testing.T) {
			body := encode(t, d.writer, d.datum)
			hv, herr := hambaRead(d.writer, d.reader, body)
			switch {
			case d.hambaErr != "":
				if herr == nil || !strings.Contains(herr.Error(), d.hambaErr) {
					t.Errorf("hamba: got %v, %v; want an error containing %q (has hamba changed? then the differential test may include this case)", hv, herr, d.hambaErr)
				}
			default:
				if herr != nil || !equalNative(common(hv), common(d.hambaGot)) {
					t.Errorf("hamba: got %s, %v; want %s (has hamba changed?)", show(common(hv)), herr, show(common(d.hambaGot)))
				}
			}
			p, err := NewPlan(d.writer, d.reader)
			if d.wantErr != nil {
				if !errors.Is(err, d.wantErr) {
					t.Fatalf("NewPlan: %v, want %v", err, d.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPlan: %v", err)
			}
			got, err := p.Decode(body)
			if err != nil || !equalNative(got, d.want) {
				t.Fatalf("Decode: %s, %v; want %s", show(got), err, show(d.want))
			}
		})
	}
}

// hambaCanDefault says whether hamba decodes a default of t correctly (see the default cases
// of TestHambaDisagreements); the differential test adds fields only of such types.
func hambaCanDefault(t *gtype, nested bool) bool {
	switch t.kind {
	case "long":
		return t.logical != "time-micros"
	case "union":
		first := t.branches[0]
		switch {
		case first.kind == "null":
			return !nested
		case first.logical != "", first.name != "", first.kind == "map":
			return false
		}
		return hambaCanDefault(first, nested)
	case "array", "map":
		return hambaCanDefault(t.items, true)
	case "record":
		for _, f := range t.fields {
			if !hambaCanDefault(f.typ, true) {
				return false
			}
		}
	}
	return true
}
