// Package contracts holds the topic's contract for consumers outside this repository,
// asyncapi.yaml (AsyncAPI 3.0), and the test that keeps it equal to what the pipeline does: the
// Avro schemas of schemas/, the names of events, the failure and replay headers of
// internal/dlq (what the consumer runtime and pipelinectl write) and the topics of
// topics/topics.yaml. `make contract` validates it with the AsyncAPI CLI.
package contracts
