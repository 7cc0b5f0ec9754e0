package resolve

import (
	"errors"
	"strings"
	"testing"
)

// emptyUnionField is the reader field of issue 9 section 2 that made Check, NewPlan and
// Cache.Plan panic (index out of range): a union with no branches, with a default.
const emptyUnionReader = `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"e","type":[],"default":null}]}`

func TestEmptyUnionReaderFieldIsAnErrorNotAPanic(t *testing.T) {
	w := rec("R", fld("a", `"int"`))
	if _, err := NewPlan(w, emptyUnionReader); err == nil {
		t.Error("NewPlan accepted a reader field with an empty union")
	}
	if _, err := Check(w, emptyUnionReader); err == nil {
		t.Error("Check accepted a reader field with an empty union")
	}
	var c Cache
	for i := range 2 {
		p, err := c.Plan(7, w, emptyUnionReader)
		if err == nil || p != nil {
			t.Errorf("Cache.Plan call %d = %v, %v; want an error", i+1, p, err)
		}
	}
	// An empty union that a datum never needs (array items) is no error; its default would be.
	arr := rec("R", fld("a", `"int"`), fld("e", `{"type":"array","items":[]}`, `"default":[]`))
	if _, err := NewPlan(w, arr); err != nil {
		t.Errorf("array of an empty union, default []: %v", err)
	}
	bad := rec("R", fld("a", `"int"`), fld("e", `{"type":"array","items":[]}`, `"default":[null]`))
	if _, err := NewPlan(w, bad); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "no branches") {
		t.Errorf("array of an empty union, default [null]: %v, want ErrSchema", err)
	}
}

// A panic while planning is returned as an error by every call for the pair, not cached as a
// nil plan with a nil error.
func TestCacheDoesNotCacheAPanicAsSuccess(t *testing.T) {
	saved := buildPlan
	t.Cleanup(func() { buildPlan = saved })
	buildPlan = func(w, r *schema) (*Plan, error) { panic("boom") }
	var c Cache
	for i := range 2 {
		p, err := c.Plan(1, `"int"`, `"int"`)
		if err == nil || p != nil || !strings.Contains(err.Error(), "boom") {
			t.Errorf("call %d: %v, %v; want the panic as an error", i+1, p, err)
		}
	}
}

// Avro 1.12 (AVRO-3649): a union field's default may be of any branch. Java reads u = "x".
func TestUnionDefaultOfALaterBranch(t *testing.T) {
	w := rec("R", fld("a", `"int"`))
	runCases(t, []rcase{
		{name: "issue example", writer: w, reader: rec("R", fld("a", `"int"`), fld("u", `["null","string"]`, `"default":"x"`)),
			datum: m{"a": int32(1)}, want: m{"a": int32(1), "u": m{"string": "x"}}},
		{name: "first branch that fits: int before long", writer: w, reader: rec("R", fld("a", `"int"`), fld("u", `["null","int","long"]`, `"default":5`)),
			datum: m{"a": int32(1)}, want: m{"a": int32(1), "u": m{"int": int32(5)}}},
		{name: "too big for int: long", writer: w, reader: rec("R", fld("a", `"int"`), fld("u", `["null","int","long"]`, `"default":5000000000`)),
			datum: m{"a": int32(1)}, want: m{"a": int32(1), "u": m{"long": int64(5000000000)}}},
		{name: "no branch fits", writer: w, reader: rec("R", fld("a", `"int"`), fld("u", `["null","int"]`, `"default":"x"`)),
			planErr: "not a valid value of any branch of union [null, int]"},
	})
	r := rec("R", fld("a", `"int"`), fld("u", `["null","string"]`, `"default":"x"`))
	if incs, err := Check(w, r); err != nil || len(incs) != 0 {
		t.Errorf("Check = %v, %v; want compatible", incs, err)
	}
}

// A decimal whose precision cannot fit its fixed size is an invalid logical type, read as the
// plain fixed (specification, "Logical Types"); size 2 holds at most 4 digits.
func TestInvalidFixedDecimalIsAPlainFixed(t *testing.T) {
	dec := func(prec int) string {
		return `{"type":"fixed","name":"F","size":2,"logicalType":"decimal","precision":` + itoa(prec) + `,"scale":2}`
	}
	w := rec("R", fld("d", dec(9)))
	r := rec("R", fld("d", dec(4)))
	if incs, err := Check(w, r); err != nil || len(incs) != 0 {
		t.Errorf("Check(size 2 precision 9, precision 4) = %v, %v; want compatible", incs, err)
	}
	if incs, _ := Check(r, rec("R", fld("d", dec(3)))); len(incs) != 1 || incs[0].Kind != SizeMismatch {
		t.Errorf("two valid decimals of different precision: %v, want a size mismatch", incs)
	}
	p, err := NewPlan(w, w)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Decode([]byte{0x01, 0x02})
	if err != nil || !equalNative(got, m{"d": []byte{1, 2}}) {
		t.Errorf("Decode = %s, %v; want the plain fixed bytes", show(got), err)
	}
}

// A long default beyond the 64-bit range is refused, not read as -9223372036854775808.
func TestLongDefaultOutOfRange(t *testing.T) {
	w := rec("R", fld("a", `"int"`))
	for _, def := range []string{"9223372036854775808", "-9223372036854775809", "9.3e18", "1e19"} {
		r := rec("R", fld("a", `"int"`), fld("l", `"long"`, `"default":`+def))
		if _, err := NewPlan(w, r); !errors.Is(err, ErrSchema) {
			t.Errorf("default %s: NewPlan = %v, want ErrSchema", def, err)
		}
		if incs, err := Check(w, r); err != nil || len(incs) != 1 || incs[0].Kind != BadDefault {
			t.Errorf("default %s: Check = %v, %v; want a bad default", def, incs, err)
		}
	}
	r := rec("R", fld("a", `"int"`), fld("l", `"long"`, `"default":-9223372036854775808`))
	runCases(t, []rcase{{name: "min int64", writer: w, reader: r, datum: m{"a": int32(1)},
		want: m{"a": int32(1), "l": int64(-9223372036854775808)}}})
}

// The gate and the decoder agree on a fixed of size 0: both read it (Java does too).
func TestFixedOfSizeZero(t *testing.T) {
	s := rec("R", fld("a", `"int"`), fld("z", `{"type":"fixed","name":"Z","size":0}`))
	if incs, err := Check(s, s); err != nil || len(incs) != 0 {
		t.Errorf("Check = %v, %v", incs, err)
	}
	p, err := NewPlan(s, s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Decode([]byte{0x02})
	if err != nil || !equalNative(got, m{"a": int32(1), "z": []byte{}}) {
		t.Errorf("Decode = %s, %v", show(got), err)
	}
	d := rec("R", fld("a", `"int"`), fld("z", `{"type":"fixed","name":"Z","size":0}`, `"default":""`))
	runCases(t, []rcase{{name: "default", writer: rec("R", fld("a", `"int"`)), reader: d, datum: m{"a": int32(1)},
		want: m{"a": int32(1), "z": []byte{}}}})
}
