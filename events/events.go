package events

import "time"

// Topics, fixed by the design.
const (
	Topic      = "todos.task.events"
	RetryTopic = "todos.task.events.retry"
	DLQTopic   = "todos.task.events.dlq"
)

// AggregateType is the outbox aggregate_type of every todo event; the Outbox Event Router routes it
// to "<aggregate_type>.events", which is Topic.
const AggregateType = "todos.task"

// Event types (CloudEvents "type", the outbox event_type column, the ce_type header).
const (
	TypeCreated   = "todos.task.created"
	TypeCompleted = "todos.task.completed"
	TypeDeleted   = "todos.task.deleted"
)

// CloudEvents envelope constants (Kafka protocol binding, binary content mode).
const (
	SpecVersion = "1.0"
	Source      = "/todos/api"
	ContentType = "application/avro"
)

// Kafka header names carrying the CloudEvents attributes.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderContentType = "content-type"
)

// Namespace is the Avro namespace of every event record.
const Namespace = "com.todos.events"

// Status is the Avro enum Status of TodoCreated.
type Status string

// Status symbols, in the order of the schema.
const (
	StatusPending   Status = "PENDING"
	StatusCompleted Status = "COMPLETED"
	StatusArchived  Status = "ARCHIVED"
)

// Symbols are the enum's symbols, in the order of the schema.
func (Status) Symbols() []string {
	return []string{string(StatusPending), string(StatusCompleted), string(StatusArchived)}
}

// Priority is the Avro enum Priority of TodoCreated (added in its version 2).
type Priority string

// Priority symbols, in the order of the schema. PriorityNormal is the schema's default: of the
// field, for events written before it existed, and of the enum, for symbols added later.
const (
	PriorityLow    Priority = "LOW"
	PriorityNormal Priority = "NORMAL"
	PriorityHigh   Priority = "HIGH"
)

// Symbols are the enum's symbols, in the order of the schema.
func (Priority) Symbols() []string {
	return []string{string(PriorityLow), string(PriorityNormal), string(PriorityHigh)}
}

// Event is implemented by every typed event.
type Event interface {
	// EventType is the CloudEvents type, e.g. TypeCreated.
	EventType() string
	// RecordName is the Avro record's full name, e.g. com.todos.events.TodoCreated.
	RecordName() string
	// AggregateID is the todo id: the outbox aggregate_id and the Kafka record key.
	AggregateID() string
}

// TodoCreated is the Avro record com.todos.events.TodoCreated.
type TodoCreated struct {
	TodoID    string    `avro:"todo_id"`
	UserID    string    `avro:"user_id"`
	Title     string    `avro:"title"`
	Status    Status    `avro:"status"`
	CreatedAt time.Time `avro:"created_at"`
	// Priority is written as PriorityNormal, the schema's default, when empty. A consumer built
	// with version 1 of the schema reads it empty: version 1 has no such field.
	Priority Priority `avro:"priority"`
}

// TodoCompleted is the Avro record com.todos.events.TodoCompleted.
type TodoCompleted struct {
	TodoID      string    `avro:"todo_id"`
	UserID      string    `avro:"user_id"`
	CompletedAt time.Time `avro:"completed_at"`
}

// TodoDeleted is the Avro record com.todos.events.TodoDeleted.
type TodoDeleted struct {
	TodoID    string    `avro:"todo_id"`
	UserID    string    `avro:"user_id"`
	DeletedAt time.Time `avro:"deleted_at"`
}

func (TodoCreated) EventType() string   { return TypeCreated }
func (TodoCompleted) EventType() string { return TypeCompleted }
func (TodoDeleted) EventType() string   { return TypeDeleted }

func (TodoCreated) RecordName() string   { return Namespace + ".TodoCreated" }
func (TodoCompleted) RecordName() string { return Namespace + ".TodoCompleted" }
func (TodoDeleted) RecordName() string   { return Namespace + ".TodoDeleted" }

func (e TodoCreated) AggregateID() string   { return e.TodoID }
func (e TodoCompleted) AggregateID() string { return e.TodoID }
func (e TodoDeleted) AggregateID() string   { return e.TodoID }

// Subject is the Schema Registry subject of a record on a topic (TopicRecordNameStrategy):
// "todos.task.events-com.todos.events.TodoCreated".
func Subject(topic, recordName string) string { return topic + "-" + recordName }
