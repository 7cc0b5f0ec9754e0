// Package outbox writes events to the transactional outbox table inside the caller's transaction,
// so that a business change and the event announcing it commit together or not at all.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

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

// Limits of an outbox row, the same as the CHECK constraints of migration
// internal/todo/migrations/00003_outbox_constraints.sql (which says where each comes from).
const (
	// MaxAggregateTypeLen is Kafka's topic name limit (249, Topic.validate) minus ".events".
	MaxAggregateTypeLen = 249 - len(".events")
	// MaxAggregateIDBytes bounds the record key.
	MaxAggregateIDBytes = 255
	// MaxEventTypeLen bounds the CloudEvents type (the column is varchar(255)).
	MaxEventTypeLen = 255
	// MaxPayloadBytes bounds the record value: below the producer's default max.request.size
	// (1,048,576 bytes), leaving room for the key, the headers and the batch framing.
	MaxPayloadBytes = 1_000_000
	// wireHeaderLen is the Confluent wire format header: magic byte 0 and a 4-byte schema id.
	wireHeaderLen = 5
)

var (
	// aggregateTypeRe: Kafka's topic characters [a-zA-Z0-9._-] without '_', which Kafka's metric
	// names confuse with '.' (a topic colliding that way with an existing one is refused).
	aggregateTypeRe = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)
	// eventTypeRe: two or more dot-separated lowercase segments, '-' inside a segment.
	eventTypeRe = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)+$`)
)

// ErrInvalid is wrapped by every error of Validate.
var ErrInvalid = errors.New("invalid outbox message")

// Validate checks m against the rules the outbox table enforces (the relay could not deliver a
// row that breaks them): the id is set; AggregateType makes a valid Kafka topic name once
// ".events" is appended; AggregateID is 1..255 bytes; EventType has the CloudEvents type shape;
// Payload starts with the Confluent wire format header and is at most MaxPayloadBytes. The
// error wraps ErrInvalid and names the rule.
func Validate(m Message) error {
	var problems []error
	if m.ID == uuid.Nil {
		problems = append(problems, errors.New("id is not set"))
	}
	if !aggregateTypeRe.MatchString(m.AggregateType) || len(m.AggregateType) > MaxAggregateTypeLen {
		problems = append(problems, fmt.Errorf("aggregate_type %q: want 1 to %d of [a-zA-Z0-9.-] (the topic is %q)",
			truncate(m.AggregateType, 60), MaxAggregateTypeLen, truncate(m.AggregateType, 60)+".events"))
	}
	if n := len(m.AggregateID); n < 1 || n > MaxAggregateIDBytes {
		problems = append(problems, fmt.Errorf("aggregate_id: want 1 to %d bytes, got %d", MaxAggregateIDBytes, n))
	}
	if !eventTypeRe.MatchString(m.EventType) || len(m.EventType) > MaxEventTypeLen {
		problems = append(problems, fmt.Errorf("event_type %q: want a CloudEvents type such as todos.task.created", truncate(m.EventType, 60)))
	}
	switch n := len(m.Payload); {
	case n < wireHeaderLen || m.Payload[0] != 0:
		problems = append(problems, fmt.Errorf("payload: not the Confluent wire format (magic byte 0, 4-byte schema id), %d bytes", n))
	case n > MaxPayloadBytes:
		problems = append(problems, fmt.Errorf("payload: %d bytes, over the limit of %d", n, MaxPayloadBytes))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w %v: %w", ErrInvalid, m.ID, errors.Join(problems...))
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// InsertSQL inserts one outbox row; its parameters are InsertColumns, from Message.InsertArgs.
const InsertSQL = `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, created_at)
	VALUES ($1, $2, $3, $4, $5, $6)`

// InsertColumns names InsertSQL's parameters, in order.
var InsertColumns = []string{"id", "aggregate_type", "aggregate_id", "event_type", "payload", "created_at"}

// DeleteSQL deletes the row again; $1 is its id.
const DeleteSQL = `DELETE FROM outbox WHERE id = $1`

// InsertArgs returns m's values for InsertSQL.
func (m Message) InsertArgs() []any {
	return []any{m.ID, m.AggregateType, m.AggregateID, m.EventType, m.Payload, m.CreatedAt}
}

// Write validates m (Validate), inserts it into the outbox and deletes it again in the same transaction. Debezium reads the
// insert from the WAL (the publication publishes inserts only, and the router drops deletes), so
// the table stays empty without a cleanup job.
func Write(ctx context.Context, tx Execer, m Message) error {
	if err := Validate(m); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, InsertSQL, m.InsertArgs()...); err != nil {
		return fmt.Errorf("insert outbox event %s: %w", m.ID, err)
	}
	if _, err := tx.ExecContext(ctx, DeleteSQL, m.ID); err != nil {
		return fmt.Errorf("delete outbox event %s: %w", m.ID, err)
	}
	return nil
}
