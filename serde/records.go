package serde

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/resolve"
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
				"priority": string(cmp.Or(e.Priority, events.PriorityNormal)),
			}, true
		},
		fromNative: func(m map[string]any) (events.Event, error) {
			var e events.TodoCreated
			var status, priority string
			err := fields(m,
				str("todo_id", &e.TodoID), str("user_id", &e.UserID), str("title", &e.Title),
				str("status", &status), timestamp("created_at", &e.CreatedAt),
				optional(str("priority", &priority)))
			e.Status, e.Priority = events.Status(status), events.Priority(priority)
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

// readerSchema is a record schema with a Go type: the schema the serializer writes with (the
// embedded .avsc files), and the reader schema the deserializer resolves writer schemas against.
type readerSchema struct {
	rec     *record
	text    string        // compact JSON, as sent to the registry
	aliases []string      // full names of the record's aliases: writer records it also reads
	codec   *goavro.Codec // what the serializer encodes with; set for the embedded schemas only
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
		rs, err := parseReader(string(raw))
		if err != nil {
			return nil, fmt.Errorf("serde: embedded schema %s: %w", rec.file, err)
		}
		if rs.rec != rec {
			return nil, fmt.Errorf("serde: embedded schema %s names record %q, want %q", rec.file, rs.rec.name, rec.name)
		}
		if rs.codec, err = goavro.NewCodec(rs.text); err != nil {
			return nil, fmt.Errorf("serde: embedded schema %s: %w", rec.file, err)
		}
		out[rec.name] = rs
	}
	return out, nil
})

// parseReader parses an Avro record schema whose record has a Go type, with the parser that
// resolution uses.
func parseReader(text string) (*readerSchema, error) {
	// Compact JSON, because srclient rewrites newlines to spaces before sending and a stable
	// text keeps the registry's lookup by content predictable.
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(text)); err != nil {
		return nil, fmt.Errorf("serde: reader schema is not JSON: %w", err)
	}
	name, err := resolve.FullName(compact.String())
	if err != nil {
		return nil, fmt.Errorf("serde: parse reader schema: %w", err)
	}
	rec, ok := recordByName(name)
	if !ok {
		return nil, fmt.Errorf("%w: reader schema names %q", ErrUnknownRecord, name)
	}
	var head struct {
		Aliases []string `json:"aliases"`
	}
	_ = json.Unmarshal(compact.Bytes(), &head) // it parsed: it is a JSON object
	ns := name[:max(strings.LastIndexByte(name, '.'), 0)]
	var aliases []string
	for _, a := range head.Aliases {
		if !strings.Contains(a, ".") && ns != "" {
			a = ns + "." + a
		}
		aliases = append(aliases, a)
	}
	return &readerSchema{rec: rec, text: compact.String(), aliases: aliases}, nil
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

// optional reads a field that reader schemas of older versions lack (the field was added later):
// absent, its Go value stays the zero value. Every reader schema that has the field gives it a
// value, the writer's or the reader's default, so absent means the reader's version has none.
func optional(f field) field {
	return func(m map[string]any) error {
		if err := f(m); err != nil && !errors.Is(err, errMissing) {
			return err
		}
		return nil
	}
}

var errMissing = errors.New("field missing")

// str reads a string or enum field (enum symbols are strings).
func str(name string, dst *string) field {
	return func(m map[string]any) error {
		v, ok := m[name]
		if !ok {
			return fmt.Errorf("%w: %q", errMissing, name)
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("field %q is %T, want string", name, v)
		}
		*dst = s
		return nil
	}
}

// timestamp reads a timestamp-millis field as UTC time (resolution gives time.Time; a plain long, from a
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
