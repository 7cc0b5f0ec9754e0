package serde

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/schemas"
)

// encodeWith registers writer in f and returns a wire-format record of datum written with it.
func encodeWith(t testing.TB, f *fakeRegistry, writer string, datum map[string]any) []byte {
	t.Helper()
	codec, err := goavro.NewCodec(writer)
	if err != nil {
		t.Fatalf("writer schema: %v", err)
	}
	data, err := appendHeader(nil, f.add("", writer, ""))
	if err != nil {
		t.Fatal(err)
	}
	data, err = codec.BinaryFromNative(data, datum)
	if err != nil {
		t.Fatalf("encode %v: %v", datum, err)
	}
	return data
}

func v1Datum() map[string]any {
	return map[string]any{"todo_id": "t-1", "user_id": "u-1", "title": "old", "status": "PENDING",
		"created_at": time.UnixMilli(1_700_000_000_123).UTC()}
}

// A consumer built with the current schema (version 2) reads events written with version 1: the
// new field takes its default. One built with version 1 reads version 2 events without it.
func TestDeserializeAcrossVersions(t *testing.T) {
	f := newFakeRegistry(t)
	v1 := schemas.TodoCreatedV1
	current := NewDeserializer(f.client())
	old, err := NewDeserializerWithReaders(f.client(), v1)
	if err != nil {
		t.Fatal(err)
	}
	wantV1 := events.TodoCreated{TodoID: "t-1", UserID: "u-1", Title: "old", Status: events.StatusPending,
		CreatedAt: time.UnixMilli(1_700_000_000_123).UTC()}

	v1Data := encodeWith(t, f, v1, v1Datum())
	got, err := current.Deserialize(t.Context(), v1Data)
	if err != nil {
		t.Fatalf("v1 event, v2 reader: %v", err)
	}
	want := wantV1
	want.Priority = events.PriorityNormal
	if got.Event != want {
		t.Errorf("v1 event, v2 reader:\n got %#v\nwant %#v", got.Event, want)
	}
	if got, err := old.Deserialize(t.Context(), v1Data); err != nil || got.Event != wantV1 {
		t.Errorf("v1 event, v1 reader: %#v, %v", got.Event, err)
	}

	// A v2 event (the serializer writes the current schema) read by a v1 consumer.
	ser := newSerializer(t, f.client(), SerializerConfig{AutoRegister: true})
	v2Data, err := ser.Serialize(t.Context(), created)
	if err != nil {
		t.Fatal(err)
	}
	got, err = old.Deserialize(t.Context(), v2Data)
	if err != nil {
		t.Fatalf("v2 event, v1 reader: %v", err)
	}
	want = atMillis(created).(events.TodoCreated)
	want.Priority = "" // version 1 has no priority
	if got.Event != want {
		t.Errorf("v2 event, v1 reader:\n got %#v\nwant %#v", got.Event, want)
	}
	if got, err := current.Deserialize(t.Context(), v2Data); err != nil || got.Event != atMillis(created) {
		t.Errorf("v2 event, v2 reader: %#v, %v", got.Event, err)
	}
	// The other records are read with the embedded schemas still.
	if got, err := old.Deserialize(t.Context(), mustSerializeWith(t, ser, completed)); err != nil || got.Event != atMillis(completed) {
		t.Errorf("TodoCompleted with a v1 TodoCreated reader: %#v, %v", got.Event, err)
	}
}

// A writer schema that does not resolve against the reader is a permanent ErrDecode whose
// message names the field and the rule; so is a datum the plan cannot read.
func TestDeserializeResolutionErrors(t *testing.T) {
	f := newFakeRegistry(t)
	de := NewDeserializer(f.client())
	titleInt := strings.Replace(schemas.TodoCreatedV1, `{"name": "title", "type": "string"}`, `{"name": "title", "type": "int"}`, 1)
	noTitle := strings.Replace(schemas.TodoCreatedV1, `{"name": "title", "type": "string"},`, ``, 1)
	newStatus := strings.Replace(schemas.TodoCreatedV1, `"ARCHIVED"]`, `"ARCHIVED", "DELETED"]`, 1)
	for _, s := range []string{titleInt, noTitle, newStatus} {
		if s == schemas.TodoCreatedV1 {
			t.Fatal("the test's schema edit did not apply")
		}
	}
	withTitle := func(title any) map[string]any { d := v1Datum(); d["title"] = title; return d }
	withStatus := func(s string) map[string]any { d := v1Datum(); d["status"] = s; return d }
	noTitleDatum := v1Datum()
	delete(noTitleDatum, "title")
	tests := []struct {
		name   string
		writer string
		datum  map[string]any
		want   string // "" reads
	}{
		{"incompatible field type", titleInt, withTitle(int32(7)), "field title: writer int cannot be read as reader string"},
		{"reader field without default missing in the writer", noTitle, noTitleDatum, "field title: reader field title has no default and writer com.todos.events.TodoCreated has no field title"},
		{"unknown enum symbol, reader without default", newStatus, withStatus("DELETED"), `enum symbol "DELETED" written by the writer is not a symbol of reader enum com.todos.events.Status`},
		{"known enum symbol of a writer with more symbols", newStatus, withStatus("ARCHIVED"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second time from the cached plan
				got, err := de.Deserialize(t.Context(), encodeWith(t, f, tt.writer, tt.datum))
				if tt.want == "" {
					if err != nil {
						t.Fatal(err)
					}
					continue
				}
				if !errors.Is(err, ErrDecode) || IsRetriable(err) {
					t.Fatalf("err = %v, want permanent ErrDecode", err)
				}
				if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "schema id") {
					t.Fatalf("err %q does not name the rule %q and the schema id", err, tt.want)
				}
				if got.Event != nil || got.SchemaID == 0 {
					t.Fatalf("Decoded = %+v on error", got)
				}
			}
		})
	}
}

// A reader record that was renamed reads the writer's old name through its aliases.
func TestDeserializeRenamedRecordByAlias(t *testing.T) {
	f := newFakeRegistry(t)
	reader := `{"type":"record","name":"TodoCompleted","namespace":"com.todos.events","aliases":["TodoDone"],"fields":[
		{"name":"todo_id","type":"string"},{"name":"user_id","type":"string"},
		{"name":"completed_at","type":{"type":"long","logicalType":"timestamp-millis"},"aliases":["done_at"]}]}`
	writer := `{"type":"record","name":"TodoDone","namespace":"com.todos.events","fields":[
		{"name":"todo_id","type":"string"},{"name":"user_id","type":"string"},{"name":"done_at","type":"long"}]}`
	de, err := NewDeserializerWithReaders(f.client(), reader)
	if err != nil {
		t.Fatal(err)
	}
	got, err := de.Deserialize(t.Context(), encodeWith(t, f, writer, map[string]any{"todo_id": "t", "user_id": "u", "done_at": int64(5)}))
	want := events.TodoCompleted{TodoID: "t", UserID: "u", CompletedAt: time.UnixMilli(5).UTC()}
	if err != nil || got.Event != want {
		t.Fatalf("got %#v, %v; want %#v", got.Event, err, want)
	}
}

func TestNewDeserializerWithReadersRejects(t *testing.T) {
	f := newFakeRegistry(t)
	for name, text := range map[string]string{
		"not JSON":                 `{`,
		"not Avro":                 `{"type":"record","name":"TodoCreated"}`,
		"record without a Go type": `{"type":"record","name":"Other","namespace":"com.todos.events","fields":[]}`,
	} {
		if _, err := NewDeserializerWithReaders(f.client(), text); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewDeserializerWithReaders(nil); err == nil {
		t.Error("nil registry: no error")
	}
}

// The zero Priority is written as the schema's default.
func TestEmptyPriorityIsWrittenAsTheDefault(t *testing.T) {
	ev := created
	ev.Priority = ""
	f := newFakeRegistry(t)
	data, err := newSerializer(t, f.client(), SerializerConfig{AutoRegister: true}).Serialize(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewDeserializer(f.client()).Deserialize(t.Context(), data)
	if err != nil || got.Event.(events.TodoCreated).Priority != events.PriorityNormal {
		t.Fatalf("got %#v, %v; want priority NORMAL", got.Event, err)
	}
}

func mustSerializeWith(t testing.TB, ser *Serializer, ev events.Event) []byte {
	t.Helper()
	data, err := ser.Serialize(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// BenchmarkDeserializeResolved measures Deserialize once the writer schema and its plan are cached: a
// record written with the reader's own schema, and one written with version 1 and resolved
// against version 2 (the new field filled with its default).
func BenchmarkDeserializeResolved(b *testing.B) {
	f := newFakeRegistry(b)
	de := NewDeserializer(f.client())
	ser, err := NewSerializer(f.client(), SerializerConfig{AutoRegister: true})
	if err != nil {
		b.Fatal(err)
	}
	same, err := ser.Serialize(b.Context(), created)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"same-schema", same},
		{"v1-written-v2-read", encodeWith(b, f, schemas.TodoCreatedV1, v1Datum())},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := de.Deserialize(b.Context(), bc.data); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if _, err := de.Deserialize(b.Context(), bc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The round-trip tests compare whole events; they cover the field mapping of records.go only if
// the sample events set every field. A field added to an event fails here until the sample has it.
func TestSamplesSetEveryField(t *testing.T) {
	for _, ev := range []events.Event{created, completed, deleted} {
		v := reflect.ValueOf(ev)
		for i := range v.NumField() {
			if v.Field(i).IsZero() {
				t.Errorf("sample %T leaves %s zero", ev, v.Type().Field(i).Name)
			}
		}
	}
}
