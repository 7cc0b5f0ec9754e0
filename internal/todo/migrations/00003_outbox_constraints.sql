-- The outbox refuses a row the relay could not deliver. Debezium's Outbox Event Router sends a row
-- to the topic "<aggregate_type>.events", keyed by aggregate_id, with payload as the record value
-- and event_type as the ce_type header; a row Kafka refuses stops the connector's task, and every
-- later event waits behind it (see README, "A stuck relay"). internal/outbox.Validate holds the
-- same rules in Go (a test checks that both agree); keep them together.
--
-- aggregate_type: Kafka's topic rule (org.apache.kafka.common.internals.Topic.validate): the
--   characters [a-zA-Z0-9._-], at most 249 characters, so at most 242 before ".events". '_' is
--   refused too: Kafka maps '.' and '_' to the same metric name and refuses to create a topic
--   whose name collides with an existing one that way (Topic.hasCollisionChars), and every topic
--   of this pipeline uses '.'.
-- aggregate_id: the record key; not empty, at most 255 bytes.
-- event_type: a CloudEvents type ("MUST be a non-empty string", "SHOULD be prefixed with a
--   reverse-DNS name"): two or more dot-separated segments of lowercase letters, digits and
--   inner '-', e.g. todos.task.created; at most 255 characters.
-- payload: the Confluent wire format header (magic byte 0, 4-byte schema id) and at least that
--   many bytes; at most 1,000,000 bytes. The bound comes from Kafka's defaults: the producer's
--   max.request.size (1,048,576) is the smallest of the limits a record meets (broker
--   message.max.bytes 1,048,588, topic max.message.bytes unset, so the broker's); the rest
--   (48,576 bytes) is for the key, the headers and the record batch's framing.
--
-- NOT VALID: rows already in the table are not checked, so the migration applies wherever it
-- runs. Such rows were streamed (or not) when they were inserted: the WAL, not the table, is what
-- the relay reads, and a constraint cannot reach it.

-- +goose Up
ALTER TABLE outbox ADD CONSTRAINT outbox_aggregate_type_topic
    CHECK (aggregate_type ~ '^[a-zA-Z0-9.-]+$' AND length(aggregate_type) <= 242) NOT VALID;
ALTER TABLE outbox ADD CONSTRAINT outbox_aggregate_id_key
    CHECK (octet_length(aggregate_id) BETWEEN 1 AND 255) NOT VALID;
ALTER TABLE outbox ADD CONSTRAINT outbox_event_type_cloudevents
    CHECK (event_type ~ '^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)+$' AND length(event_type) <= 255) NOT VALID;
ALTER TABLE outbox ADD CONSTRAINT outbox_payload_wire_format
    CHECK (octet_length(payload) >= 5 AND substring(payload FROM 1 FOR 1) = '\x00'::bytea) NOT VALID;
ALTER TABLE outbox ADD CONSTRAINT outbox_payload_size
    CHECK (octet_length(payload) <= 1000000) NOT VALID;

-- +goose Down
ALTER TABLE outbox DROP CONSTRAINT outbox_payload_size;
ALTER TABLE outbox DROP CONSTRAINT outbox_payload_wire_format;
ALTER TABLE outbox DROP CONSTRAINT outbox_event_type_cloudevents;
ALTER TABLE outbox DROP CONSTRAINT outbox_aggregate_id_key;
ALTER TABLE outbox DROP CONSTRAINT outbox_aggregate_type_topic;
