package events

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/todocdc/pipeline/schemas"
)

// The Go event types are written by hand and checked against the .avsc files, field by field:
// a field added to, removed from or retyped in either fails here until the other follows.
// Types: string -> string, enum -> a named string type whose Symbols() are the enum's symbols,
// long timestamp-millis -> time.Time, int -> int32, long -> int64, float -> float32, double ->
// float64, boolean -> bool, bytes -> []byte, ["null", T] -> *T.
func TestEventTypesMatchSchemas(t *testing.T) {
	for _, tc := range []struct {
		file string
		ev   Event
	}{
		{"TodoCreated.avsc", TodoCreated{}},
		{"TodoCompleted.avsc", TodoCompleted{}},
		{"TodoDeleted.avsc", TodoDeleted{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := schemas.FS.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			var rec struct {
				Type, Name, Namespace string
				Fields                []struct {
					Name string
					Type json.RawMessage
				}
			}
			if err := json.Unmarshal(raw, &rec); err != nil {
				t.Fatal(err)
			}
			if got := rec.Namespace + "." + rec.Name; got != tc.ev.RecordName() {
				t.Errorf("schema names %s, RecordName() is %s", got, tc.ev.RecordName())
			}
			goFields := map[string]reflect.StructField{}
			rt := reflect.TypeOf(tc.ev)
			for i := range rt.NumField() {
				f := rt.Field(i)
				tag := f.Tag.Get("avro")
				if tag == "" {
					t.Errorf("Go field %s has no avro tag", f.Name)
					continue
				}
				goFields[tag] = f
			}
			for _, af := range rec.Fields {
				f, ok := goFields[af.Name]
				if !ok {
					t.Errorf("schema field %q has no Go field with tag avro:%q", af.Name, af.Name)
					continue
				}
				delete(goFields, af.Name)
				if msg := typeDrift(af.Type, f.Type); msg != "" {
					t.Errorf("field %q (Go %s %s): %s", af.Name, f.Name, f.Type, msg)
				}
			}
			for tag, f := range goFields {
				t.Errorf("Go field %s (avro:%q) is not in %s", f.Name, tag, tc.file)
			}
		})
	}
}

type symboler interface{ Symbols() []string }

// typeDrift says how Go type gt fails to represent Avro type at, or "" when it does.
func typeDrift(at json.RawMessage, gt reflect.Type) string {
	var name string
	if json.Unmarshal(at, &name) == nil {
		want := map[string]reflect.Type{"string": reflect.TypeFor[string](), "int": reflect.TypeFor[int32](),
			"long": reflect.TypeFor[int64](), "float": reflect.TypeFor[float32](), "double": reflect.TypeFor[float64](),
			"boolean": reflect.TypeFor[bool](), "bytes": reflect.TypeFor[[]byte]()}[name]
		if want == nil {
			return "Avro type " + name + " has no Go mapping in this test"
		}
		if gt != want {
			return "Avro " + name + " wants Go " + want.String()
		}
		return ""
	}
	var union []json.RawMessage
	if json.Unmarshal(at, &union) == nil {
		if len(union) != 2 || string(union[0]) != `"null"` {
			return "only [\"null\", T] unions have a Go mapping (a pointer)"
		}
		if gt.Kind() != reflect.Pointer {
			return "an optional (null union) field wants a pointer"
		}
		return typeDrift(union[1], gt.Elem())
	}
	var obj struct {
		Type        string
		LogicalType string
		Symbols     []string
	}
	if err := json.Unmarshal(at, &obj); err != nil {
		return "unreadable type: " + err.Error()
	}
	switch {
	case obj.Type == "long" && obj.LogicalType == "timestamp-millis":
		if gt != reflect.TypeFor[time.Time]() {
			return "timestamp-millis wants time.Time"
		}
	case obj.Type == "enum":
		s, ok := reflect.Zero(gt).Interface().(symboler)
		if gt.Kind() != reflect.String || gt.Name() == "string" || !ok {
			return "an enum wants a named string type with a Symbols() method"
		}
		if !slices.Equal(s.Symbols(), obj.Symbols) {
			return "enum symbols " + strings.Join(obj.Symbols, ",") + ", Go Symbols() " + strings.Join(s.Symbols(), ",")
		}
	case obj.LogicalType == "":
		return typeDrift(json.RawMessage(`"`+obj.Type+`"`), gt)
	default:
		return "Avro " + obj.Type + " " + obj.LogicalType + " has no Go mapping in this test"
	}
	return ""
}

// typeDrift itself: each mapping accepts its type and rejects a neighbour, so that the check
// above cannot pass by accepting everything.
func TestTypeDrift(t *testing.T) {
	for _, tc := range []struct {
		avro string
		gt   reflect.Type
		ok   bool
	}{
		{`"string"`, reflect.TypeFor[string](), true},
		{`"string"`, reflect.TypeFor[Status](), false},
		{`"long"`, reflect.TypeFor[int64](), true},
		{`"long"`, reflect.TypeFor[int](), false},
		{`{"type":"long","logicalType":"timestamp-millis"}`, reflect.TypeFor[time.Time](), true},
		{`{"type":"long","logicalType":"timestamp-millis"}`, reflect.TypeFor[int64](), false},
		{`{"type":"enum","name":"Status","symbols":["PENDING","COMPLETED","ARCHIVED"]}`, reflect.TypeFor[Status](), true},
		{`{"type":"enum","name":"Status","symbols":["PENDING","COMPLETED"]}`, reflect.TypeFor[Status](), false},
		{`{"type":"enum","name":"Status","symbols":["PENDING"]}`, reflect.TypeFor[string](), false},
		{`["null",{"type":"long","logicalType":"timestamp-millis"}]`, reflect.TypeFor[*time.Time](), true},
		{`["null",{"type":"long","logicalType":"timestamp-millis"}]`, reflect.TypeFor[time.Time](), false},
		{`["null","string"]`, reflect.TypeFor[*int64](), false},
	} {
		if got := typeDrift(json.RawMessage(tc.avro), tc.gt) == ""; got != tc.ok {
			t.Errorf("typeDrift(%s, %s) ok = %v, want %v", tc.avro, tc.gt, got, tc.ok)
		}
	}
}
