// Package outbox writes events to the transactional outbox table inside the caller's transaction,
// so that a business change and the event announcing it commit together or not at all.
package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Message is one outbox row. Column names follow the seed's outbox table.
type Message struct {
	ID            uuid.UUID // event id: CloudEvents id, ce_id header
	AggregateType string    // routes to the topic "<AggregateType>.events"
	AggregateID   string    // Kafka record key
	EventType     string    // CloudEvents type, ce_type header
	Payload       []byte    // Confluent wire format
	CreatedAt     time.Time // CloudEvents time, ce_time header
}

// Execer runs a statement; *sqlx.Tx and *sql.Tx satisfy it.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Write inserts m into the outbox and deletes it again in the same transaction. Debezium reads the
// insert from the WAL (the publication publishes inserts only, and the router drops deletes), so
// the table stays empty without a cleanup job.
func Write(ctx context.Context, tx Execer, m Message) error {
	if m.ID == uuid.Nil || m.AggregateType == "" || m.AggregateID == "" || m.EventType == "" || len(m.Payload) == 0 {
		return fmt.Errorf("outbox message %v is incomplete", m.ID)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6)`,
		m.ID, m.AggregateType, m.AggregateID, m.EventType, m.Payload, m.CreatedAt); err != nil {
		return fmt.Errorf("insert outbox event %s: %w", m.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = $1`, m.ID); err != nil {
		return fmt.Errorf("delete outbox event %s: %w", m.ID, err)
	}
	return nil
}
