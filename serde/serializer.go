package serde

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/riferrei/srclient"
	"github.com/todocdc/pipeline/events"
	"golang.org/x/sync/singleflight"
)

// SerializerConfig configures a Serializer.
type SerializerConfig struct {
	// Topic the events are written to; subjects are events.Subject(Topic, record name).
	// Default: events.Topic.
	Topic string
	// AutoRegister registers a schema that is not yet under its subject. Default false: the schema
	// is only looked up, and Serialize fails with ErrNotRegistered when it is not there, so that
	// schemas reach the registry through the compatibility gate, not as a side effect of a write.
	AutoRegister bool
}

func (c *SerializerConfig) setDefaults() {
	if c.Topic == "" {
		c.Topic = events.Topic
	}
}

// Validate reports a configuration the serializer cannot work with.
func (c SerializerConfig) Validate() error {
	if len(c.Topic) > 249 {
		return fmt.Errorf("serde: topic %q is longer than Kafka's 249 characters", c.Topic)
	}
	for _, r := range c.Topic {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("serde: topic %q has %q, not legal in a Kafka topic name", c.Topic, r)
		}
	}
	return nil
}

// Serializer turns typed events into Confluent wire-format Avro. It is safe for concurrent use.
type Serializer struct {
	reg     Registry
	cfg     SerializerConfig
	readers map[string]*readerSchema

	mu    sync.RWMutex
	ids   map[string]int // record name -> schema id under the topic's subject
	group singleflight.Group
}

// NewSerializer returns a serializer that writes with the embedded schemas (parsed here, once) and
// learns their ids from reg on first use.
func NewSerializer(reg Registry, cfg SerializerConfig) (*Serializer, error) {
	if reg == nil {
		return nil, errors.New("serde: NewSerializer needs a registry")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	readers, err := readerSchemas()
	if err != nil {
		return nil, err
	}
	return &Serializer{reg: reg, cfg: cfg, readers: readers, ids: make(map[string]int)}, nil
}

// Serialize encodes ev (events.TodoCreated, TodoCompleted or TodoDeleted, or a pointer to one) in
// the wire format. The first call per record type looks the schema up in the registry (or registers
// it, with AutoRegister) under events.Subject(topic, ev.RecordName()); later calls use the cached id
// and make no registry call.
func (s *Serializer) Serialize(ctx context.Context, ev events.Event) ([]byte, error) {
	ev, err := deref(ev)
	if err != nil {
		return nil, err
	}
	rs, ok := s.readers[ev.RecordName()]
	if !ok {
		return nil, fmt.Errorf("%w: cannot serialize %T (record %q)", ErrUnknownRecord, ev, ev.RecordName())
	}
	native, ok := rs.rec.toNative(ev)
	if !ok {
		return nil, fmt.Errorf("%w: cannot serialize %T as record %q", ErrUnknownRecord, ev, rs.rec.name)
	}
	id, err := s.schemaID(ctx, rs)
	if err != nil {
		return nil, err
	}
	buf, err := appendHeader(make([]byte, 0, headerLen+64), id)
	if err != nil {
		return nil, err
	}
	buf, err = rs.codec.BinaryFromNative(buf, native)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (todo %q, schema id %d): %v", ErrEncode, rs.rec.name, ev.AggregateID(), id, err)
	}
	return buf, nil
}

// schemaID is the registry id of rs under the serializer's topic, from the cache or the registry.
func (s *Serializer) schemaID(ctx context.Context, rs *readerSchema) (int, error) {
	s.mu.RLock()
	id, ok := s.ids[rs.rec.name]
	s.mu.RUnlock()
	if ok {
		return id, nil
	}
	subject := events.Subject(s.cfg.Topic, rs.rec.name)
	id, err := await(ctx, &s.group, subject, func() (int, error) {
		op, call := opLookup, s.reg.LookupSchema
		if s.cfg.AutoRegister {
			op, call = opRegister, s.reg.CreateSchema
		}
		sch, err := call(subject, rs.text, srclient.Avro)
		if err != nil {
			return 0, registryError(op, subject, 0, err)
		}
		if sch == nil {
			return 0, &RegistryError{Op: op, Subject: subject, class: ErrRegistryUnavailable,
				Err: errors.New("registry answered without a schema")}
		}
		s.mu.Lock()
		s.ids[rs.rec.name] = sch.ID()
		s.mu.Unlock()
		return sch.ID(), nil
	})
	if err != nil {
		if errors.As(err, new(*RegistryError)) {
			return 0, err
		}
		return 0, fmt.Errorf("serde: schema id for subject %q: %w", subject, err) // ctx ended
	}
	return id, nil
}

// deref turns a pointer to a known event into its value, so both forms serialize.
func deref(ev events.Event) (events.Event, error) {
	switch e := ev.(type) {
	case *events.TodoCreated:
		if e != nil {
			return *e, nil
		}
	case *events.TodoCompleted:
		if e != nil {
			return *e, nil
		}
	case *events.TodoDeleted:
		if e != nil {
			return *e, nil
		}
	case nil:
	default:
		return ev, nil
	}
	return nil, fmt.Errorf("%w: nil event", ErrEncode)
}
