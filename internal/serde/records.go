package serde

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/todocdc/pipeline/internal/events"
	"github.com/todocdc/pipeline/schemas"
)

// record ties an Avro record of schemas/ to its Go type in package events.
type record struct {
	name       string // full name, e.g. com.todos.events.TodoCreated
	file       string // .avsc file in schemas.FS
	toNative   func(events.Event) (map[string]any, bool)
	fromNative func(map[string]any) (events.Event, error)
}

var records = []record{
	{
		name: events.TodoCreated{}.RecordName(), file: "TodoCreated.avsc",
		toNative: func(ev events.Event) (map[string]any, bool) {
			e, ok := ev.(events.TodoCreated)
			if !ok {
				return nil, false
			}
			return map[string]any{
				"todo_id": e.TodoID, "user_id": e.UserID, "title": e.Title,
				"status": string(e.Status), "created_at": millis(e.CreatedAt),
			}, true
		},
		fromNative: func(m map[string]any) (events.Event, error) {
			var e events.TodoCreated
			var status string
			err := fields(m,
				str("todo_id", &e.TodoID), str("user_id", &e.UserID), str("title", &e.Title),
				str("status", &status), timestamp("created_at", &e.CreatedAt))
			e.Status = events.Status(status)
			return e, err
		},
	},
	{
		name: events.TodoCompleted{}.RecordName(), file: "TodoCompleted.avsc",
		toNative: func(ev events.Event) (map[string]any, bool) {
			e, ok := ev.(events.TodoCompleted)
			if !ok {
				return nil, false
			}
			return map[string]any{
				"todo_id": e.TodoID, "user_id": e.UserID, "completed_at": millis(e.CompletedAt),
			}, true
		},
		fromNative: func(m map[string]any) (events.Event, error) {
			var e events.TodoCompleted
			err := fields(m, str("todo_id", &e.TodoID), str("user_id", &e.UserID),
				timestamp("completed_at", &e.CompletedAt))
			return e, err
		},
	},
	{
		name: events.TodoDeleted{}.RecordName(), file: "TodoDeleted.avsc",
		toNative: func(ev events.Event) (map[string]any, bool) {
			e, ok := ev.(events.TodoDeleted)
			if !ok {
				return nil, false
			}
			return map[string]any{
				"todo_id": e.TodoID, "user_id": e.UserID, "deleted_at": millis(e.DeletedAt),
			}, true
		},
		fromNative: func(m map[string]any) (events.Event, error) {
			var e events.TodoDeleted
			err := fields(m, str("todo_id", &e.TodoID), str("user_id", &e.UserID),
				timestamp("deleted_at", &e.DeletedAt))
			return e, err
		},
	},
}

// recordByName finds the record with full name name.
func recordByName(name string) (*record, bool) {
	for i := range records {
		if records[i].name == name {
			return &records[i], true
		}
	}
	return nil, false
}

// readerSchema is an embedded .avsc file, parsed: the schema the serializer writes with, and the
// reader schema a writer schema will be resolved against when the deserializer learns resolution.
type readerSchema struct {
	rec   *record
	text  string // the file as compact JSON, as sent to the registry
	codec *goavro.Codec
}

// readerSchemas parses the embedded .avsc files once per process.
var readerSchemas = sync.OnceValues(func() (map[string]*readerSchema, error) {
	out := make(map[string]*readerSchema, len(records))
	for i := range records {
		rec := &records[i]
		raw, err := fs.ReadFile(schemas.FS, rec.file)
		if err != nil {
			return nil, fmt.Errorf("serde: read embedded schema: %w", err)
		}
		// Compact JSON, because srclient rewrites newlines to spaces before sending and a stable
		// text keeps the registry's lookup by content predictable.
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, fmt.Errorf("serde: embedded schema %s is not JSON: %w", rec.file, err)
		}
		codec, err := goavro.NewCodec(compact.String())
		if err != nil {
			return nil, fmt.Errorf("serde: parse embedded schema %s: %w", rec.file, err)
		}
		if got := fullName(codec); got != rec.name {
			return nil, fmt.Errorf("serde: embedded schema %s names record %q, want %q", rec.file, got, rec.name)
		}
		out[rec.name] = &readerSchema{rec: rec, text: compact.String(), codec: codec}
	}
	return out, nil
})

// fullName is the full name of the type a codec describes ("string" for a primitive).
func fullName(c *goavro.Codec) string {
	n := c.TypeName()
	return n.String()
}

// millis is t as Avro timestamp-millis: milliseconds since the Unix epoch, sub-millisecond dropped.
func millis(t time.Time) int64 { return t.UnixMilli() }

// field reads one field of a decoded record into a Go value.
type field func(m map[string]any) error

// fields applies each field reader, failing on the first missing or mistyped field.
func fields(m map[string]any, fs ...field) error {
	for _, f := range fs {
		if err := f(m); err != nil {
			return err
		}
	}
	return nil
}

// str reads a string or enum field (goavro gives enum symbols as strings).
func str(name string, dst *string) field {
	return func(m map[string]any) error {
		v, ok := m[name]
		if !ok {
			return fmt.Errorf("field %q missing", name)
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("field %q is %T, want string", name, v)
		}
		*dst = s
		return nil
	}
}

// timestamp reads a timestamp-millis field as UTC time (goavro gives time.Time; a plain long, from a
// writer schema without the logical type, is read as milliseconds too).
func timestamp(name string, dst *time.Time) field {
	return func(m map[string]any) error {
		v, ok := m[name]
		if !ok {
			return fmt.Errorf("field %q missing", name)
		}
		switch t := v.(type) {
		case time.Time:
			*dst = time.UnixMilli(t.UnixMilli()).UTC()
		case int64:
			*dst = time.UnixMilli(t).UTC()
		default:
			return fmt.Errorf("field %q is %T, want timestamp-millis", name, v)
		}
		return nil
	}
}
