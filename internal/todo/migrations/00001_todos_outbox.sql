-- The todos table and the transactional outbox (column names from the seed's outbox table).
-- The publication covers the outbox only and publishes inserts only: the API inserts and deletes
-- the outbox row in one transaction, the WAL keeps the insert, and Debezium streams it.

-- +goose Up
CREATE TABLE todos (
    id           uuid        PRIMARY KEY,
    user_id      text        NOT NULL,
    title        text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'ARCHIVED')),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE INDEX todos_user_created ON todos (user_id, created_at, id);

CREATE TABLE outbox (
    id             uuid         PRIMARY KEY,          -- event id = CloudEvents id
    aggregate_type varchar(255) NOT NULL,             -- routes to <aggregate_type>.events
    aggregate_id   varchar(255) NOT NULL,             -- todo id = Kafka record key
    event_type     varchar(255) NOT NULL,             -- CloudEvents type
    payload        bytea        NOT NULL,             -- Confluent wire format: 0 | schema id | Avro body
    created_at     timestamptz  NOT NULL DEFAULT now() -- CloudEvents time
);

CREATE PUBLICATION todos_outbox FOR TABLE outbox WITH (publish = 'insert');

-- +goose Down
DROP PUBLICATION todos_outbox;
DROP TABLE outbox;
DROP TABLE todos;
