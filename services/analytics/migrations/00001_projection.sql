-- +goose Up
-- The per-user projection of the todo events. todos remembers each todo's state, so "open now"
-- moves only on a real transition (a completed todo that is then deleted was not open).
CREATE TABLE analytics_todos (
    todo_id    text    PRIMARY KEY,
    user_id    text    NOT NULL,
    completed  boolean NOT NULL DEFAULT false,
    deleted    boolean NOT NULL DEFAULT false
);
CREATE TABLE user_stats (
    user_id     text        PRIMARY KEY,
    created     bigint      NOT NULL DEFAULT 0,
    completed   bigint      NOT NULL DEFAULT 0,
    deleted     bigint      NOT NULL DEFAULT 0,
    open        bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE user_stats;
DROP TABLE analytics_todos;
