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

-- The platform creates the (empty) publication before the replication slot, because pgoutput fails
-- on changes made between a slot's creation and its publication's (scripts/stack.sh does; so must
-- any other deployment). Where it does not exist yet, it is created here.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'todos_outbox') THEN
        CREATE PUBLICATION todos_outbox WITH (publish = 'insert');
    END IF;
END
$$;
-- +goose StatementEnd
ALTER PUBLICATION todos_outbox ADD TABLE outbox;

-- +goose Down
ALTER PUBLICATION todos_outbox DROP TABLE outbox;
DROP TABLE outbox;
DROP TABLE todos;
