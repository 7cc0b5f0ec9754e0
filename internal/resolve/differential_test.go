package resolve

import (
	"flag"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

var (
	diffPairs   = flag.Int("resolve.pairs", 1000, "differential test: generated writer/reader schema pairs")
	diffRecords = flag.Int("resolve.records", 20, "differential test: random records per pair")
	diffSeed    = flag.Uint64("resolve.seed", 20260101, "differential test: random seed")
)

// TestDifferentialHamba generates writer schemas, compatible reader schemas (one to three of
// the evolutions in gen_test.go), and random records encoded with the writer schema, and checks
// that Plan.Decode gives what github.com/hamba/avro/v2 gives for the same bytes with its own
// resolution (SchemaCompatibility.Resolve, then Unmarshal with the resolved schema).
//
// Both results are brought to one form first: union values unwrapped (hamba wraps a value in a
// union map where the writer's schema has a union, goavro's form where the reader's has one),
// hamba's int for an Avro int made int32, its [N]byte for a fixed made []byte.
//
// The pairs are ones the specification and hamba agree on. Where hamba departs from the
// specification (TestHambaDisagreements), the generator makes no such pair: it removes an enum
// symbol only with a reader default, and it never narrows a union.
func TestDifferentialHamba(t *testing.T) {
	start := time.Now()
	g := &gen{rnd: rand.New(rand.NewPCG(*diffSeed, 1))}
	seen := make(map[evolution]int)
	records, identical := 0, 0
	for pair := range *diffPairs {
		writer := g.record(0)
		reader := writer.clone()
		var applied []string
		for range 1 + g.rnd.IntN(3) {
			if ev := g.evolve(reader); ev != "" {
				seen[ev]++
				applied = append(applied, string(ev))
			}
		}
		ws, rs := writer.json(), reader.json()
		if ws == rs {
			identical++
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("pair %d (seed %d), evolutions %q\nwriter %s\nreader %s\n"+format,
				append([]any{pair, *diffSeed, applied, ws, rs}, args...)...)
		}
		plan, err := NewPlan(ws, rs)
		if err != nil {
			fail("NewPlan: %v", err)
		}
		// Every generated pair reads every datum, so the strict check finds nothing either.
		if incs, err := Check(ws, rs); err != nil || len(incs) != 0 {
			fail("Check: %v %v", incs, err)
		}
		hw, err := avro.ParseWithCache(ws, "", &avro.SchemaCache{})
		if err != nil {
			fail("hamba parse writer: %v", err)
		}
		hr, err := avro.ParseWithCache(rs, "", &avro.SchemaCache{})
		if err != nil {
			fail("hamba parse reader: %v", err)
		}
		resolved, err := avro.NewSchemaCompatibility().Resolve(hr, hw)
		if err != nil {
			fail("hamba Resolve: %v", err)
		}
		api := avro.Config{}.Freeze() // no decoder cache shared between pairs
		for range *diffRecords {
			datum := g.value(writer)
			body := encode(t, ws, datum)
			got, err := plan.Decode(body)
			if err != nil {
				fail("datum %s\nDecode: %v", show(datum), err)
			}
			var want any
			if err := api.Unmarshal(resolved, body, &want); err != nil {
				fail("datum %s\nhamba Unmarshal: %v", show(datum), err)
			}
			if g, w := common(got), common(want); !equalNative(g, w) {
				fail("datum %s\nplan  %s\nhamba %s", show(datum), show(g), show(w))
			}
			records++
		}
	}
	t.Logf("%d schema pairs (%d with no change left), %d records compared with hamba in %v; evolutions applied: %v",
		*diffPairs, identical, records, time.Since(start).Round(time.Millisecond), seen)
	for _, ev := range evolutions {
		if seen[ev] == 0 && *diffPairs >= 100 {
			t.Errorf("no pair had the evolution %q", ev)
		}
	}
}

// common brings a value decoded by either library to one form: see TestDifferentialHamba.
func common(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, inner := range x {
				if isUnionKey(k) {
					return common(inner)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = common(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = common(e)
		}
		return out
	case int:
		return int32(x) // hamba's type for an Avro int
	case []byte:
		if len(x) == 0 {
			return []byte{}
		}
		return x
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
		b := make([]byte, rv.Len()) // hamba's [N]byte for a fixed
		reflect.Copy(reflect.ValueOf(b), rv)
		return b
	}
	return v
}

// isUnionKey: the generator names fields, map keys and types so that only union keys are
// primitive names, "array", "map" or dotted names.
func isUnionKey(k string) bool {
	switch k {
	case "null", "boolean", "int", "long", "float", "double", "bytes", "string", "array", "map":
		return true
	}
	return strings.Contains(k, ".")
}
