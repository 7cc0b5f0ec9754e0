// Package serde is the pipeline's Avro serializer and deserializer: typed events (package events)
// to and from the Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro binary
// body), with schemas registered in and fetched from a Confluent-compatible Schema Registry (the
// local stack's Apicurio answers the Confluent API under /apis/ccompat/v7).
//
// A consumer decodes with a Deserializer: it fetches the writer schema by the id in the header
// (cached: ids never change meaning) and resolves it against the reader schema this package was
// built with, so events written with a newer or older compatible schema decode into the same Go
// types. Every error is one of the Err* sentinels (errors.Is); IsRetriable tells the one class a
// retry can fix (ErrRegistryUnavailable) from the permanent ones (the record itself is bad).
//
// Producing is todo-api's job in this pipeline; the Serializer is public for tests and tools that
// write events, and by default it only looks schemas up: they reach the registry through the
// compatibility gate (pipelinectl schemas register), not as a side effect of a write.
package serde
