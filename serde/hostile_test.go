package serde

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/memtest"
)

// withField is the current TodoCreated schema with one more field (its JSON) at the end.
func withField(t testing.TB, field string) string {
	t.Helper()
	s := schemaText(t, events.TodoCreated{}.RecordName())
	i := strings.LastIndex(s, "]")
	return s[:i] + "," + field + s[i:]
}

// createdBody is a valid body of the current TodoCreated's fields (Avro's long is Go's zig-zag
// varint).
var createdBody = catBytes(
	[]byte{0x06, 't', '-', '1', 0x06, 'u', '-', '1', 0x02, 'x'}, // todo_id, user_id, title
	[]byte{0x00}, // status PENDING
	binary.AppendVarint(nil, 1_700_000_000_123), // created_at
	[]byte{0x02}, // priority NORMAL
)

func catBytes(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Issue 9, section 1: TodoCreated with a tags array (or map) whose block count is 2^31-1 killed
// notifier and analytics with "fatal error: runtime: out of memory", on every restart. It is a
// permanent decode error: the consumer runtime dead-letters it (consumer.Classify: Permanent).
func TestDeserializeHostileBlockCounts(t *testing.T) {
	maxBlock := []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}
	for _, tc := range []struct{ name, field string }{
		{"array", `{"name":"tags","type":{"type":"array","items":"string"},"default":[]}`},
		{"map", `{"name":"tags","type":{"type":"map","values":"string"},"default":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !memtest.Capped(t, 0) {
				return
			}
			f := newFakeRegistry(t)
			data := rawRecord(t, f, withField(t, tc.field), "", catBytes(createdBody, maxBlock))
			got, err := NewDeserializer(f.client()).Deserialize(t.Context(), data)
			if !errors.Is(err, ErrDecode) || IsRetriable(err) || !strings.Contains(err.Error(), "block of 2147483647 items") {
				t.Fatalf("Deserialize = %+v, %v; want a permanent ErrDecode naming the block", got, err)
			}
			if got.SchemaID == 0 || got.Event != nil {
				t.Errorf("Decoded = %+v", got)
			}
		})
	}
}

// A writer schema that admits no finite value is refused (permanent), before any body is read.
func TestDeserializeUninhabitedWriterSchema(t *testing.T) {
	if !memtest.Capped(t, 0) {
		return
	}
	f := newFakeRegistry(t)
	data := rawRecord(t, f, withField(t, `{"name":"loop","type":{"type":"record","name":"Loop","fields":[{"name":"next","type":"Loop"}]}}`),
		"", catBytes(createdBody, make([]byte, 64)))
	_, err := NewDeserializer(f.client()).Deserialize(t.Context(), data)
	if !errors.Is(err, ErrUnsupportedSchema) || IsRetriable(err) || !strings.Contains(err.Error(), "no finite value") {
		t.Fatalf("Deserialize: %v; want a permanent ErrUnsupportedSchema: no finite value", err)
	}
}

// Issue 9, section 2: writer schemas that are valid Avro (and that resolution reads), which the
// deserializer refused because it parsed them with goavro.
func TestDeserializeValidSchemasGoavroRefused(t *testing.T) {
	want := events.TodoCreated{TodoID: "t-1", UserID: "u-1", Title: "x", Status: events.StatusPending,
		CreatedAt: time.UnixMilli(1_700_000_000_123).UTC(), Priority: events.PriorityNormal}
	for _, tc := range []struct {
		name   string
		schema func(t testing.TB) string
		extra  []byte
	}{
		{"union default of a later branch", func(t testing.TB) string {
			return withField(t, `{"name":"u","type":["null","string"],"default":"x"}`)
		}, []byte{0x02, 0x02, 'y'}},
		{"fixed default of one byte, written \\u00ff", func(t testing.TB) string {
			return withField(t, `{"name":"f","type":{"type":"fixed","name":"F","size":1},"default":"\u00ff"}`)
		}, []byte{0xff}},
		{"record declared as error", func(t testing.TB) string {
			s := withField(t, `{"name":"e","type":{"type":"error","name":"Oops","fields":[{"name":"m","type":"string"}]}}`)
			return strings.Replace(s, `"type":"record"`, `"type":"error"`, 1)
		}, []byte{0x02, 'm'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRegistry(t)
			schema := tc.schema(t)
			data := rawRecord(t, f, schema, "", catBytes(createdBody, tc.extra))
			got, err := NewDeserializer(f.client()).Deserialize(t.Context(), data)
			if err != nil {
				t.Fatalf("writer %s\nDeserialize: %v", schema, err)
			}
			if got.Event != want {
				t.Errorf("Event = %#v, want %#v", got.Event, want)
			}
		})
	}
}

// Fields of a writer schema that the consumer's reader schema does not have are checked and
// skipped, not decoded into values: a record of TodoCreated with 100,000 tags costs the
// consumer what the six fields it reads cost, not 100,000 Go strings.
func TestDeserializeSkipsFieldsTheReaderLacks(t *testing.T) {
	f := newFakeRegistry(t)
	const n = 100_000
	tags := binary.AppendVarint(nil, n)
	for range n {
		tags = append(tags, 0x02, 'a')
	}
	tags = append(tags, 0)
	data := rawRecord(t, f, withField(t, `{"name":"tags","type":{"type":"array","items":"string"},"default":[]}`), "", catBytes(createdBody, tags))
	de := NewDeserializer(f.client())
	if _, err := de.Deserialize(t.Context(), data); err != nil { // fetches and plans the writer schema
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := de.Deserialize(t.Context(), data)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	a := after.TotalAlloc - before.TotalAlloc
	t.Logf("record of %d bytes: Deserialize allocated %d bytes", len(data), a)
	if a > 16<<10 {
		t.Errorf("Deserialize allocated %d bytes for a record of %d bytes whose extra field the reader lacks; want under 16 KiB", a, len(data))
	}
}
