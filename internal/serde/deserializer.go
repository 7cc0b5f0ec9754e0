package serde

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/linkedin/goavro/v2"
	"github.com/riferrei/srclient"
	"github.com/todocdc/pipeline/internal/events"
	"golang.org/x/sync/singleflight"
)

// Decoded is a deserialized record.
type Decoded struct {
	// SchemaID is the writer schema's registry id, from the wire-format header.
	SchemaID int
	// Event is a value: events.TodoCreated, events.TodoCompleted or events.TodoDeleted.
	Event events.Event
}

// Deserializer turns Confluent wire-format Avro into typed events, with the writer schema fetched
// from the registry by id. It is safe for concurrent use.
type Deserializer struct {
	reg Registry

	mu      sync.RWMutex
	writers map[int]*writerSchema // ids never change meaning, so entries never expire
	group   singleflight.Group
}

// writerSchema is a schema a record was written with, as fetched from the registry and parsed.
type writerSchema struct {
	id    int
	text  string
	name  string // the record's full name
	codec *goavro.Codec
	rec   *record // nil when the record has no Go type
}

// NewDeserializer returns a deserializer that fetches writer schemas from reg (which must not be nil).
func NewDeserializer(reg Registry) *Deserializer {
	return &Deserializer{reg: reg, writers: make(map[int]*writerSchema)}
}

// Deserialize decodes one wire-format record. The writer schema is fetched once per id: concurrent
// calls with an id not yet seen share one registry request. On error, the returned Decoded carries
// the schema id when the header could be read, for dead-letter headers.
func (d *Deserializer) Deserialize(ctx context.Context, data []byte) (Decoded, error) {
	id, body, err := parseHeader(data)
	if err != nil {
		return Decoded{}, err
	}
	ws, err := d.writerSchema(ctx, id)
	if err != nil {
		return Decoded{SchemaID: id}, err
	}
	ev, err := decode(ws, body)
	if err != nil {
		return Decoded{SchemaID: id}, err
	}
	return Decoded{SchemaID: id, Event: ev}, nil
}

// writerSchema is step one: the schema registered under id, from the cache or the registry.
func (d *Deserializer) writerSchema(ctx context.Context, id int) (*writerSchema, error) {
	d.mu.RLock()
	ws, ok := d.writers[id]
	d.mu.RUnlock()
	if ok {
		return ws, nil
	}
	ws, err := await(ctx, &d.group, strconv.Itoa(id), func() (*writerSchema, error) {
		sch, err := d.reg.GetSchema(id)
		if err != nil {
			return nil, registryError(opGetByID, "", id, err)
		}
		if sch == nil {
			return nil, &RegistryError{Op: opGetByID, SchemaID: id, class: ErrRegistryUnavailable,
				Err: errors.New("registry answered without a schema")}
		}
		ws, err := parseWriter(id, sch)
		if err != nil {
			return nil, err
		}
		d.mu.Lock()
		d.writers[id] = ws
		d.mu.Unlock()
		return ws, nil
	})
	if err != nil {
		if errors.As(err, new(*RegistryError)) || errors.Is(err, ErrUnsupportedSchema) {
			return nil, err
		}
		return nil, fmt.Errorf("serde: writer schema id %d: %w", id, err) // ctx ended
	}
	return ws, nil
}

// parseWriter parses a registry schema as an Avro writer schema.
func parseWriter(id int, sch *srclient.Schema) (*writerSchema, error) {
	if t := sch.SchemaType(); t != nil && *t != srclient.Avro {
		return nil, fmt.Errorf("%w: schema id %d is %s", ErrUnsupportedSchema, id, *t)
	}
	codec, err := goavro.NewCodec(sch.Schema())
	if err != nil {
		return nil, fmt.Errorf("%w: schema id %d: %v", ErrUnsupportedSchema, id, err)
	}
	name := fullName(codec)
	rec, _ := recordByName(name)
	return &writerSchema{id: id, text: sch.Schema(), name: name, codec: codec, rec: rec}, nil
}

// decode is step two: the body, decoded with the writer schema, as the typed event its record names.
// Reader/writer schema resolution, when it comes, goes here: decode with the writer codec, then
// resolve the native value against the embedded reader schema (readerSchemas) before mapping it.
func decode(ws *writerSchema, body []byte) (ev events.Event, err error) {
	if ws.rec == nil {
		return nil, fmt.Errorf("%w: schema id %d writes %q", ErrUnknownRecord, ws.id, ws.name)
	}
	defer func() {
		// goavro should return errors for every malformed body; a record must never crash a consumer.
		if r := recover(); r != nil {
			ev, err = nil, fmt.Errorf("%w: %s (schema id %d): goavro panicked: %v", ErrDecode, ws.name, ws.id, r)
		}
	}()
	native, rest, err := ws.codec.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (schema id %d): %v", ErrDecode, ws.name, ws.id, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %s (schema id %d): %d bytes left over after the record", ErrDecode, ws.name, ws.id, len(rest))
	}
	m, ok := native.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s (schema id %d): decoded %T, want a record", ErrDecode, ws.name, ws.id, native)
	}
	ev, err = ws.rec.fromNative(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (schema id %d): %v", ErrDecode, ws.name, ws.id, err)
	}
	return ev, nil
}
