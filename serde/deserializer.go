package serde

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/riferrei/srclient"
	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/resolve"
	"golang.org/x/sync/singleflight"
)

// Decoded is a deserialized record.
type Decoded struct {
	// SchemaID is the writer schema's registry id, from the wire-format header.
	SchemaID int
	// Event is a value: events.TodoCreated, events.TodoCompleted or events.TodoDeleted.
	Event events.Event
}

// Deserializer turns Confluent wire-format Avro into typed events: the writer schema is fetched
// from the registry by id, and the body is resolved against the reader schema of its record (Avro
// schema resolution), so that events written with an older or newer version of a schema read as
// the version the consumer was built with. It is safe for concurrent use.
type Deserializer struct {
	reg     Registry
	readers map[string]*readerSchema // by the reader record's full name and by each of its aliases
	// plans are the resolution plans per writer schema id and reader schema. They are the
	// deserializer's own, not the process's: ids are only unique within one registry.
	plans resolve.Cache

	mu      sync.RWMutex
	writers map[int]*writerSchema // ids never change meaning, so entries never expire
	group   singleflight.Group
}

// writerSchema is a schema a record was written with, as fetched from the registry and parsed,
// with the plan that reads it as its record's reader schema.
type writerSchema struct {
	id   int
	text string
	name string  // the record's full name
	rec  *record // the Go type of the reader record; nil when the writer's record has none
	plan *resolve.Plan
	err  error // why no plan: the schemas do not resolve (permanent, ErrDecode)
}

// NewDeserializer returns a deserializer that fetches writer schemas from reg (which must not be
// nil) and reads every record as the current schema of its name, the .avsc embedded in package
// schemas.
func NewDeserializer(reg Registry) *Deserializer {
	d, err := NewDeserializerWithReaders(reg)
	if err != nil {
		// The embedded schemas are part of the binary and checked by this package's tests.
		panic(err)
	}
	return d
}

// NewDeserializerWithReaders is NewDeserializer with other reader schemas: each text is an Avro
// record schema of a record that has a Go type in package events (matched by full name), read
// instead of the embedded current schema of that name; records with no text given here are read
// with the embedded ones. A consumer built against version 1 of TodoCreated passes version 1's
// text and keeps reading version 1's fields from events written with version 2.
func NewDeserializerWithReaders(reg Registry, readerTexts ...string) (*Deserializer, error) {
	if reg == nil {
		return nil, errors.New("serde: NewDeserializer needs a registry")
	}
	embedded, err := readerSchemas()
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*readerSchema, len(embedded))
	for name, rs := range embedded {
		byName[name] = rs
	}
	for _, text := range readerTexts {
		rs, err := parseReader(text)
		if err != nil {
			return nil, err
		}
		byName[rs.rec.name] = rs
	}
	readers := make(map[string]*readerSchema, len(byName))
	for name, rs := range byName {
		readers[name] = rs
		for _, a := range rs.aliases {
			if _, taken := byName[a]; !taken {
				readers[a] = rs
			}
		}
	}
	return &Deserializer{reg: reg, readers: readers, writers: make(map[int]*writerSchema)}, nil
}

// Deserialize decodes one wire-format record. The writer schema is fetched once per id: concurrent
// calls with an id not yet seen share one registry request. On error, the returned Decoded carries
// the schema id when the header could be read, for dead-letter headers.
//
// Any bytes and any writer schema the registry holds give an event or a permanent error, never a
// panic or unbounded memory: the body is decoded by the pipeline's own decoder within its limits
// (lengths and block counts against the bytes left, nesting at most 1024 levels, at most 1024 array
// items of zero size in a datum, a bounded amount of work per byte; a broken limit is ErrDecode),
// writer fields the reader schema lacks are checked and skipped rather than kept, and a writer
// schema that admits no finite value is ErrUnsupportedSchema.
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
		ws, err := d.parseWriter(id, sch)
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

// parseWriter parses a registry schema as an Avro writer schema and plans how to read it.
func (d *Deserializer) parseWriter(id int, sch *srclient.Schema) (*writerSchema, error) {
	if t := sch.SchemaType(); t != nil && *t != srclient.Avro {
		return nil, fmt.Errorf("%w: schema id %d is %s", ErrUnsupportedSchema, id, *t)
	}
	// The parser resolution uses: every schema it can read is accepted here, and one it refuses
	// (not valid Avro, or admitting no finite value) is refused before any body is decoded.
	name, err := resolve.FullName(sch.Schema())
	if err != nil {
		return nil, fmt.Errorf("%w: schema id %d: %v", ErrUnsupportedSchema, id, err)
	}
	ws := &writerSchema{id: id, text: sch.Schema(), name: name}
	rs, ok := d.readers[ws.name]
	if !ok {
		return ws, nil // no Go type: every record of it fails with ErrUnknownRecord
	}
	ws.rec = rs.rec
	ws.plan, err = d.plans.Plan(id, ws.text, rs.text)
	if err != nil {
		var re *resolve.Error
		if !errors.As(err, &re) && !errors.Is(err, resolve.ErrIncompatible) {
			// Not a resolution failure (an internal error): permanent too, the schema will not change.
			return nil, fmt.Errorf("%w: schema id %d: %v", ErrUnsupportedSchema, id, err)
		}
		ws.err = fmt.Errorf("%w: %s (schema id %d) cannot be read as reader schema %s: %w", ErrDecode, ws.name, id, rs.rec.name, err)
	}
	return ws, nil
}

// decode is step two: the body, decoded with the writer schema and resolved against the reader
// schema of its record, as the typed event the reader record names.
func decode(ws *writerSchema, body []byte) (events.Event, error) {
	if ws.rec == nil {
		return nil, fmt.Errorf("%w: schema id %d writes %q", ErrUnknownRecord, ws.id, ws.name)
	}
	if ws.err != nil {
		return nil, ws.err
	}
	native, err := ws.plan.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (schema id %d): %w", ErrDecode, ws.name, ws.id, err)
	}
	m, ok := native.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s (schema id %d): decoded %T, want a record", ErrDecode, ws.name, ws.id, native)
	}
	ev, err := ws.rec.fromNative(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (schema id %d): %v", ErrDecode, ws.name, ws.id, err)
	}
	return ev, nil
}
