-- +goose Up
-- The runtime's record of applied events: its primary key (group, event id) makes a second
-- delivery a no-op. IF NOT EXISTS: databases set up before this migration already have it.
CREATE TABLE IF NOT EXISTS consumer_processed_events (
    group_id     text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, event_id)
);

-- +goose Down
DROP TABLE IF EXISTS consumer_processed_events;
