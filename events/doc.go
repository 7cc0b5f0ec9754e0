// Package events is the contract of the topic todos.task.events in Go: the topic names, the
// CloudEvents attributes and the Kafka headers that carry them, and one struct per Avro record of
// schemas/ (TodoCreated, TodoCompleted, TodoDeleted, namespace com.todos.events).
//
// A consumer team reads these types from the consumer runtime (package consumer) or decodes them
// itself with package serde. The same contract, outside Go, is contracts/asyncapi.yaml, which a
// test of this repository checks against this package and the .avsc files so the two cannot drift.
//
// The structs follow the schemas' evolution under the subject's compatibility rule (FULL_TRANSITIVE
// by default): fields are added with defaults, never removed or renamed, so code written against
// an older version of this package keeps compiling and keeps decoding newer events.
package events
