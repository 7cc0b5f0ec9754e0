-- Idempotency-Key records of todo-api (internal/idempotency): the response of a POST that carried
-- the key, written in the same transaction as the todo row and its outbox row, so that a retry with
-- the same key gets the same response and writes nothing. A key belongs to one user; its row is
-- replayable until expires_at, then overwritten by a new use of the key or deleted by todo-api.

-- +goose Up
CREATE TABLE idempotency_keys (
    user_id      text        NOT NULL,
    key          text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea       NOT NULL CHECK (length(request_hash) = 32), -- SHA-256 of method, path, user, body
    status       smallint    NOT NULL CHECK (status BETWEEN 200 AND 299),
    headers      jsonb       NOT NULL,                                     -- replayed response headers
    body         bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
