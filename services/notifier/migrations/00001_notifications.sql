-- +goose Up
-- One notification per TodoCreated event: the message a mail sender would send. event_id is the
-- CloudEvents id; its primary key is a second guard behind the runtime's processed-events table.
CREATE TABLE notifications (
    event_id    text        PRIMARY KEY,
    user_id     text        NOT NULL,
    todo_id     text        NOT NULL,
    message     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user ON notifications (user_id, created_at);

-- +goose Down
DROP TABLE notifications;
