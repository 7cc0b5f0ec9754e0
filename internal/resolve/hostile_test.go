package resolve

import (
	"errors"
	"strings"
	"testing"

	"github.com/todocdc/pipeline/internal/memtest"
)

// todoCreatedWithTags is TodoCreated (version 2) with the field of issue 9: an array of strings.
const todoCreatedWithTags = `{"type":"record","name":"TodoCreated","namespace":"com.todos.events","fields":[
 {"name":"todo_id","type":"string"},{"name":"user_id","type":"string"},{"name":"title","type":"string"},
 {"name":"status","type":{"type":"enum","name":"Status","symbols":["PENDING","COMPLETED","ARCHIVED"]}},
 {"name":"created_at","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"priority","type":{"type":"enum","name":"Priority","symbols":["LOW","NORMAL","HIGH"],"default":"NORMAL"},"default":"NORMAL"},
 {"name":"tags","type":{"type":"array","items":"string"},"default":[]}]}`

// todoCreatedFields is a valid body of the first six fields of todoCreatedWithTags.
var todoCreatedFields = []byte{
	0x06, 't', '-', '1', 0x06, 'u', '-', '1', 0x02, 'x', // todo_id, user_id, title
	0x00,                               // status PENDING
	0x80, 0x80, 0x80, 0x80, 0x80, 0x01, // created_at
	0x02, // priority NORMAL
}

// maxBlock is a block count of 2^31-1, zigzag varint: the count of issue 9.
var maxBlock = []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// hostileCases are bodies that claim far more than they hold, or nest without end: each must
// be refused with ErrMalformed, within the child's address-space cap.
var hostileCases = []struct {
	name, schema string
	body         []byte
	want         string // in the error
}{
	{"issue9_record_array", todoCreatedWithTags, cat(todoCreatedFields, maxBlock), "block"},
	{"issue9_record_map", strings.Replace(todoCreatedWithTags, `{"type":"array","items":"string"},"default":[]`,
		`{"type":"map","values":"string"},"default":{}`, 1), cat(todoCreatedFields, maxBlock), "block"},
	{"array_5_bytes", `{"type":"array","items":"string"}`, maxBlock, "block"},
	{"map_5_bytes", `{"type":"map","values":"long"}`, maxBlock, "block"},
	{"array_of_nulls", `{"type":"array","items":"null"}`, maxBlock, "block"},
	{"array_of_empty_records", `{"type":"array","items":{"type":"record","name":"E","fields":[]}}`, maxBlock, "block"},
	{"negative_block_with_size", `{"type":"array","items":"long"}`, cat([]byte{0xfd, 0xff, 0xff, 0xff, 0x0f}, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}), "block"},
	{"block_count_min_int64", `{"type":"array","items":"null"}`, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "block"},
	{"string_length", `"string"`, maxBlock, "length"},
	{"bytes_length", `"bytes"`, []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "length"},
	{"nested_arrays", `{"type":"record","name":"N","fields":[{"name":"n","type":{"type":"array","items":"N"}}]}`,
		[]byte(strings.Repeat("\x02", 1<<20)), "MaxDepth"},
	{"linked_list", `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`,
		[]byte(strings.Repeat("\x02", 1<<20)), "MaxDepth"},
	{"many_blocks_of_nulls", `{"type":"array","items":"null"}`, []byte(strings.Repeat("\xfe\xff\xff\x0f", 1000)), "block"},
}

// TestHostileBodies: issue 9's record (TodoCreated with an array field whose block count is
// 2^31-1), its map form, the same 5 bytes alone, and the other ways a body can claim more than
// it holds or nest without end. Before the fix, goavro allocated the declared count and the
// process died of "out of memory", or recursed until the stack limit.
func TestHostileBodies(t *testing.T) {
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			if !memtest.Capped(t, 0) {
				return
			}
			p, err := NewPlan(tc.schema, tc.schema)
			if err != nil {
				t.Fatalf("NewPlan: %v", err)
			}
			v, err := p.Decode(tc.body)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, %v; want ErrMalformed naming %q", show(v), err, tc.want)
			}
		})
	}
}

// TestUninhabitedSchemas: a schema that admits no finite value is refused when parsed, with an
// error that says so, by NewPlan, Check and Cache.Plan. Before, a body decoded with a record
// that must contain itself recursed until the goroutine stack limit (a fatal error).
func TestUninhabitedSchemas(t *testing.T) {
	for _, s := range []string{
		`{"type":"record","name":"R","fields":[{"name":"r","type":"R"}]}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"s","type":{"type":"record","name":"S","fields":[{"name":"r","type":"R"}]}}]}`,
		`{"type":"record","name":"R","fields":[{"name":"u","type":["R"]}]}`,
		`{"type":"record","name":"R","fields":[{"name":"e","type":[]}]}`,
		`[]`,
	} {
		t.Run("", func(t *testing.T) {
			if !memtest.Capped(t, 0) {
				return
			}
			if _, err := NewPlan(s, s); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "no finite value") {
				t.Errorf("NewPlan(%s) = %v, want ErrSchema: no finite value", s, err)
				if err == nil {
					p, _ := NewPlan(s, s)
					_, err := p.Decode([]byte{0, 0, 0, 0})
					t.Logf("Decode: %v", err)
				}
			}
			if _, err := Check(s, s); !errors.Is(err, ErrSchema) {
				t.Errorf("Check(%s) = %v, want ErrSchema", s, err)
			}
			var c Cache
			if _, err := c.Plan(1, s, `"int"`); !errors.Is(err, ErrSchema) {
				t.Errorf("Cache.Plan(%s) = %v, want ErrSchema", s, err)
			}
		})
	}
}
