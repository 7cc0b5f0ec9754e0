package resolve

import (
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// rcase is one row of a rule's table: a datum written with writer, read with reader.
type rcase struct {
	name      string
	writer    string
	reader    string
	datum     any    // goavro's native form for the writer schema
	want      any    // the reader's native form
	planErr   string // when set, NewPlan fails with an error that contains it
	decodeErr string // when set, Decode fails with an error that contains it
}

func runCases(t *testing.T, cases []rcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(tc.writer, tc.reader)
			if tc.planErr != "" {
				if err == nil {
					t.Fatalf("NewPlan succeeded, want an error containing %q", tc.planErr)
				}
				if !strings.Contains(err.Error(), tc.planErr) {
					t.Fatalf("NewPlan error %q does not contain %q", err, tc.planErr)
				}
				if !errors.Is(err, ErrIncompatible) && !errors.Is(err, ErrSchema) {
					t.Fatalf("NewPlan error %v wraps neither ErrIncompatible nor ErrSchema", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPlan: %v", err)
			}
			got, err := p.Decode(encode(t, tc.writer, tc.datum))
			if tc.decodeErr != "" {
				if err == nil {
					t.Fatalf("Decode gave %#v, want an error containing %q", got, tc.decodeErr)
				}
				if !strings.Contains(err.Error(), tc.decodeErr) {
					t.Fatalf("Decode error %q does not contain %q", err, tc.decodeErr)
				}
				if !errors.Is(err, ErrUnreadable) {
					t.Fatalf("Decode error %v does not wrap ErrUnreadable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !equalNative(got, tc.want) {
				t.Fatalf("Decode\n got %s\nwant %s", show(got), show(tc.want))
			}
		})
	}
}

func encode(t testing.TB, schema string, datum any) []byte {
	t.Helper()
	c, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatalf("goavro writer codec: %v", err)
	}
	b, err := c.BinaryFromNative(nil, datum)
	if err != nil {
		t.Fatalf("goavro encode %#v: %v", datum, err)
	}
	return b
}

// equalNative is reflect.DeepEqual, except that *big.Rat values compare by value and time.Time
// by instant and location name.
func equalNative(a, b any) bool {
	switch x := a.(type) {
	case *big.Rat:
		y, ok := b.(*big.Rat)
		return ok && x.Cmp(y) == 0
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && x.Location().String() == y.Location().String()
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalNative(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalNative(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// show prints a native value with the Go type of every scalar, which %v hides.
func show(v any) string {
	switch x := v.(type) {
	case map[string]any:
		var b strings.Builder
		b.WriteString("{")
		for _, k := range sortedKeys(x) {
			fmt.Fprintf(&b, "%q: %s, ", k, show(x[k]))
		}
		b.WriteString("}")
		return b.String()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = show(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *big.Rat:
		return "rat(" + x.RatString() + ")"
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// rec is a record schema named name with the given fields (JSON objects).
func rec(name string, fields ...string) string {
	return `{"type":"record","name":"` + name + `","fields":[` + strings.Join(fields, ",") + `]}`
}

// fld is a field: name, type (JSON), and optional extra attributes (JSON members).
func fld(name, typ string, extra ...string) string {
	s := `{"name":"` + name + `","type":` + typ
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

func q(s string) string { return `"` + s + `"` }

// m is a goavro record or map value.
type m = map[string]any

func u(key string, v any) any { return goavro.Union(key, v) }

func newGoavroCodec(schema string) (*goavro.Codec, error) { return goavro.NewCodec(schema) }
