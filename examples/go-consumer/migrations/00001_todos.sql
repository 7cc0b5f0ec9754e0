-- +goose Up
-- The example's projection: one row per todo, as its events describe it. events_applied counts the
-- events applied to the row, so a second application of one event would show (the runtime's
-- consumer_processed_events is what prevents it).
CREATE TABLE todos (
    todo_id        text PRIMARY KEY,
    user_id        text NOT NULL,
    title          text NOT NULL,
    status         text NOT NULL,
    priority       text NOT NULL,
    created_at     timestamptz NOT NULL,
    completed_at   timestamptz,
    deleted_at     timestamptz,
    events_applied integer NOT NULL DEFAULT 0
);

-- One row per application of an event, on purpose without a unique key on event_id: if an event
-- were ever applied twice, two rows would say so.
CREATE TABLE applied_events (
    id          bigserial PRIMARY KEY,
    event_id    text NOT NULL,
    event_type  text NOT NULL,
    todo_id     text NOT NULL,
    topic       text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applied_events_todo_id ON applied_events (todo_id);

-- +goose Down
DROP TABLE applied_events;
DROP TABLE todos;
