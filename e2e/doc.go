// Package e2e holds the end-to-end tests of the whole pipeline against the running local stack
// (make run): todo-api over HTTP, PostgreSQL, Debezium in Kafka Connect, Kafka, the registry and
// the consumers. They build only with the e2e tag (make e2e / make test), and they fail, never
// skip, when a part of the stack does not answer.
package e2e
