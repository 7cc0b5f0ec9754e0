package serde

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riferrei/srclient"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/fuzzseed"
)

// oneSchemaRegistry answers schema id 1 with its schema and every other id as unknown (40403),
// in memory, so that a fuzz run spends its time in the deserializer.
type oneSchemaRegistry struct{ text string }

func (r oneSchemaRegistry) GetSchema(id int) (*srclient.Schema, error) {
	if id != 1 {
		return nil, srclient.Error{Code: codeSchemaNotFound, Message: "Schema not found"}
	}
	return srclient.NewSchema(1, r.text, srclient.Avro, 1, nil, nil, nil)
}

func (oneSchemaRegistry) LookupSchema(string, string, srclient.SchemaType, ...srclient.Reference) (*srclient.Schema, error) {
	return nil, errors.New("not used")
}

func (oneSchemaRegistry) CreateSchema(string, string, srclient.SchemaType, ...srclient.Reference) (*srclient.Schema, error) {
	return nil, errors.New("not used")
}

// FuzzDeserialize takes a writer schema (registered as id 1) and a whole Kafka record value
// (wire-format header and body). Whatever they are, Deserialize returns a typed event or a
// permanent error of one of the serde's classes (the consumer dead-letters it), never panics,
// never a retriable error (the registry is always there), and never allocates without bound (a
// worker that runs out of memory is reported as a crasher by the fuzzing engine).
//
// The seed corpus is testdata/fuzz/FuzzDeserialize (TestFuzzDeserializeSeeds writes it): the
// repository's schemas with valid records, issue 9's hostile records and schemas, and valid
// schemas that goavro refused.
func FuzzDeserialize(f *testing.F) {
	classes := []error{ErrNotWireFormat, ErrUnknownSchemaID, ErrUnsupportedSchema, ErrUnknownRecord, ErrDecode}
	f.Fuzz(func(t *testing.T, writer string, data []byte) {
		if writer == "" {
			// srclient cannot hold an empty schema text (NewSchema refuses it), and no registry
			// stores one: the fake would answer with an error no real registry gives
			// (testdata/fuzz/FuzzDeserialize/c4fbffb118c66fc2, the only finding so far).
			t.Skip("an empty schema text is not a registry answer")
		}
		d := NewDeserializer(oneSchemaRegistry{writer})
		got, err := d.Deserialize(t.Context(), data)
		if err == nil {
			switch got.Event.(type) {
			case events.TodoCreated, events.TodoCompleted, events.TodoDeleted:
			default:
				t.Fatalf("no error and event %#v", got.Event)
			}
			return
		}
		if IsRetriable(err) || strings.Contains(err.Error(), "internal error") {
			t.Fatalf("error is retriable or a bug: %v", err)
		}
		n := 0
		for _, c := range classes {
			if errors.Is(err, c) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error matches %d of the serde's permanent classes, want 1: %v", n, err)
		}
	})
}

func fuzzDeserializeSeeds(t *testing.T) []fuzzseed.Seed {
	repo := fuzzseed.RepoSchemas(t)
	v1, v2, done, del := repo.CreatedV1, repo.Created, repo.Completed, repo.Deleted
	wire := func(body ...[]byte) []byte {
		return catBytes(append([][]byte{{0, 0, 0, 0, 1}}, body...)...)
	}
	ts := binary.AppendVarint(nil, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	ids := []byte{0x06, 't', '-', '1', 0x06, 'u', '-', '1'}
	maxBlock := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}
	with := func(field string) string { return withField(t, field) }
	return []fuzzseed.Seed{
		fuzzseed.New("created-v2", v2, wire(createdBody)),
		fuzzseed.New("created-v1", v1, wire(createdBody[:len(createdBody)-1])),
		fuzzseed.New("completed", done, wire(ids, ts)),
		fuzzseed.New("deleted", del, wire(ids, ts)),
		fuzzseed.New("unknown-id", v2, append([]byte{0, 0, 0, 0, 2}, createdBody...)),
		fuzzseed.New("not-wire-format", v2, []byte(`{"todo_id":"t-1"}`)),
		fuzzseed.New("issue9-tags-array", with(`{"name":"tags","type":{"type":"array","items":"string"},"default":[]}`), wire(createdBody, maxBlock)),
		fuzzseed.New("issue9-tags-map", with(`{"name":"tags","type":{"type":"map","values":"string"},"default":{}}`), wire(createdBody, maxBlock)),
		fuzzseed.New("tags-valid", with(`{"name":"tags","type":{"type":"array","items":"string"},"default":[]}`), wire(createdBody, []byte{0x04, 0x02, 'a', 0x00, 0x00})),
		fuzzseed.New("nulls", with(`{"name":"n","type":{"type":"array","items":"null"},"default":[]}`), wire(createdBody, maxBlock)),
		fuzzseed.New("linked-list", with(`{"name":"l","type":{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}}`),
			wire(createdBody, []byte(strings.Repeat("\x02", 300)))),
		fuzzseed.New("must-contain-itself", with(`{"name":"l","type":{"type":"record","name":"L","fields":[{"name":"next","type":"L"}]}}`), wire(createdBody)),
		fuzzseed.New("union-default-later", with(`{"name":"u","type":["null","string"],"default":"x"}`), wire(createdBody, []byte{0x02, 0x02, 'y'})),
		fuzzseed.New("fixed-default-ff", with(`{"name":"f","type":{"type":"fixed","name":"F","size":1},"default":"\u00ff"}`), wire(createdBody, []byte{0xff})),
		fuzzseed.New("error-record", strings.Replace(v2, `"type": "record"`, `"type": "error"`, 1), wire(createdBody)),
		fuzzseed.New("fixed-size-0", with(`{"name":"z","type":{"type":"fixed","name":"Z","size":0}}`), wire(createdBody)),
		fuzzseed.New("string-not-record", `"string"`, wire([]byte{0x02, 'x'})),
	}
}

func TestFuzzDeserializeSeeds(t *testing.T) {
	fuzzseed.Sync(t, "FuzzDeserialize", fuzzDeserializeSeeds(t))
}
