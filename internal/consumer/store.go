package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Store runs a handler's effect and the processed-event mark in one transaction.
type Store interface {
	// Apply records eventID as processed by group and runs fn in the same transaction, committing
	// both or neither. If the event was already recorded it runs nothing and reports duplicate.
	Apply(ctx context.Context, group string, m *Message, fn func(tx *sql.Tx) error) (duplicate bool, err error)
}

// SQLStore is the Store on PostgreSQL: table consumer_processed_events, in the schema the
// connection's search_path names first.
type SQLStore struct{ DB *sql.DB }

// SetupSQL creates the processed-events table if it is missing. The table belongs to the runtime,
// not to a service's migrations, so every consumer gets the same one; its primary key (group,
// event id) is what makes a second delivery a no-op.
func SetupSQL(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `
CREATE TABLE IF NOT EXISTS consumer_processed_events (
    group_id     text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, event_id)
)`)
	if err != nil {
		return fmt.Errorf("consumer: create consumer_processed_events: %w", err)
	}
	return nil
}

// Apply implements Store.
func (s SQLStore) Apply(ctx context.Context, group string, m *Message, fn func(tx *sql.Tx) error) (bool, error) {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return false, TransientError(fmt.Errorf("consumer: begin transaction: %w", err))
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	res, err := tx.ExecContext(ctx, `INSERT INTO consumer_processed_events
        (group_id, event_id, event_type, topic, partition, "offset") VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT DO NOTHING`, group, m.EventID, m.Type, m.Topic, m.Partition, m.Offset)
	if err != nil {
		return false, fmt.Errorf("consumer: record event %s as processed: %w", m.EventID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("consumer: record event %s as processed: %w", m.EventID, err)
	} else if n == 0 {
		return true, nil
	}
	if err := fn(tx); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, commitError(m.EventID, err)
	}
	return false, nil
}

// commitError classifies a failed COMMIT. If its outcome is unknown (the connection was lost),
// retrying in place is safe (a commit that did happen makes the retry a duplicate): transient.
// A commit the database refused (a deferred constraint, pgx.ErrTxCommitRollback after a handler
// swallowed a failed statement) fails the same way every time: it is an ordinary error, retried
// a few times, then through the retry topic to the DLQ, instead of blocking the partition.
func commitError(eventID string, err error) error {
	err = fmt.Errorf("consumer: commit event %s: %w", eventID, err)
	if !errors.Is(err, pgx.ErrTxCommitRollback) && isInfrastructure(err) {
		return TransientError(err)
	}
	return err
}
