-- Version 2 of the TodoCreated event carries a priority; the todo keeps it. Rows written before
-- it existed are NORMAL, the event schema's default for events written before version 2.

-- +goose Up
ALTER TABLE todos ADD COLUMN priority text NOT NULL DEFAULT 'NORMAL'
    CHECK (priority IN ('LOW', 'NORMAL', 'HIGH'));

-- +goose Down
ALTER TABLE todos DROP COLUMN priority;
