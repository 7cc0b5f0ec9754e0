// Package consumer is the runtime consumer teams build on: a Kafka consumer group that routes each
// event by type to a typed handler, applies it exactly once in effect (the handler's database
// effect and the event id commit in one PostgreSQL transaction, so a redelivery is a no-op),
// retries what may pass later, dead-letters what never will, and serves Prometheus metrics and
// health checks.
//
// A consumer program is: a Router with one handler per event type it cares about (Handle, typed
// by the events it takes), and OpenService with a ServiceConfig, usually from EnvConfig (the
// environment variables every consumer shares, read with github.com/caarlos0/env/v11). The
// runtime creates its own table (consumer_processed_events, keyed by group and event id) in the
// service's database; the service's own tables are its business (OpenService's setup runs its
// migrations). A minimal consumer, outside this repository, is examples/go-consumer.
//
// Delivery: records are read with isolation.level=read_committed, offsets are committed only
// after the effect has committed, and a record is retried in place (Config.InPlaceAttempts, with
// Backoff), then through the retry topic (Config.MaxRetries rounds), then written to the DLQ with
// failure headers. PermanentError sends a record straight to the DLQ; TransientError (and any
// database connection failure) retries in place without end, never dead-lettering a good record
// because the infrastructure is down. Classify says which applies to an error.
//
// The runtime uses confluent-kafka-go (cgo, librdkafka) and PostgreSQL through pgx; the registry
// client is serde's. Config.Kafka takes further librdkafka settings (e.g. security), except those
// the runtime's guarantees rest on.
package consumer
