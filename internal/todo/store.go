package todo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/todocdc/pipeline/internal/events"
	"github.com/todocdc/pipeline/internal/outbox"
)

// Serializer encodes an event into the bytes stored in the outbox (the Confluent wire format).
type Serializer interface {
	Serialize(ctx context.Context, ev events.Event) ([]byte, error)
}

// Store keeps todos in PostgreSQL. Every change writes the todo row and its outbox event in one
// transaction.
type Store struct {
	db  *sqlx.DB
	ser Serializer
	now func() time.Time
}

// NewStore returns a Store on db that encodes events with ser.
func NewStore(db *sqlx.DB, ser Serializer) *Store {
	return &Store{db: db, ser: ser, now: time.Now}
}

// clock returns now in UTC at millisecond precision: events carry timestamp-millis, and the row
// must hold the same instant as its event.
func (s *Store) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

const todoColumns = `id, user_id, title, status, priority, created_at, updated_at, completed_at`

// Create stores a new pending todo for userID and its TodoCreated event. priority is checked by
// ParsePriority: empty is NORMAL.
func (s *Store) Create(ctx context.Context, userID, title, priority string) (Todo, error) {
	title, err := NormalizeTitle(title)
	if err != nil {
		return Todo{}, err
	}
	prio, err := ParsePriority(priority)
	if err != nil {
		return Todo{}, err
	}
	now := s.clock()
	id, err := uuid.NewV7()
	if err != nil {
		return Todo{}, fmt.Errorf("new todo id: %w", err)
	}
	t := Todo{ID: id, UserID: userID, Title: title, Status: events.StatusPending, Priority: prio, CreatedAt: now, UpdatedAt: now}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.NamedExecContext(ctx, `INSERT INTO todos (`+todoColumns+`)
			VALUES (:id, :user_id, :title, :status, :priority, :created_at, :updated_at, :completed_at)`, t); err != nil {
			return fmt.Errorf("insert todo: %w", err)
		}
		return s.publish(ctx, tx, t.Created(), now)
	})
	if err != nil {
		return Todo{}, err
	}
	return t, nil
}

// Get returns userID's todo id.
func (s *Store) Get(ctx context.Context, userID string, id uuid.UUID) (Todo, error) {
	var t Todo
	err := s.db.GetContext(ctx, &t, `SELECT `+todoColumns+` FROM todos WHERE id = $1 AND user_id = $2`, id, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return Todo{}, ErrNotFound
	}
	if err != nil {
		return Todo{}, fmt.Errorf("get todo %s: %w", id, err)
	}
	return t, nil
}

// List returns userID's todos, oldest first, at most limit of them.
func (s *Store) List(ctx context.Context, userID string, limit int) ([]Todo, error) {
	todos := []Todo{}
	err := s.db.SelectContext(ctx, &todos, `SELECT `+todoColumns+` FROM todos
		WHERE user_id = $1 ORDER BY created_at, id LIMIT $2`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("list todos: %w", err)
	}
	return todos, nil
}

// Complete marks userID's todo id completed and records TodoCompleted.
func (s *Store) Complete(ctx context.Context, userID string, id uuid.UUID) (Todo, error) {
	var t Todo
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if t, err = lockTodo(ctx, tx, userID, id); err != nil {
			return err
		}
		if t.Status == events.StatusCompleted {
			return ErrAlreadyCompleted
		}
		now := s.clock()
		t.Status, t.UpdatedAt, t.CompletedAt = events.StatusCompleted, now, &now
		if _, err := tx.ExecContext(ctx, `UPDATE todos SET status = $1, updated_at = $2, completed_at = $2 WHERE id = $3`,
			t.Status, now, id); err != nil {
			return fmt.Errorf("complete todo %s: %w", id, err)
		}
		return s.publish(ctx, tx, events.TodoCompleted{TodoID: id.String(), UserID: userID, CompletedAt: now}, now)
	})
	if err != nil {
		return Todo{}, err
	}
	return t, nil
}

// Delete removes userID's todo id and records TodoDeleted.
func (s *Store) Delete(ctx context.Context, userID string, id uuid.UUID) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := lockTodo(ctx, tx, userID, id); err != nil {
			return err
		}
		now := s.clock()
		if _, err := tx.ExecContext(ctx, `DELETE FROM todos WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete todo %s: %w", id, err)
		}
		return s.publish(ctx, tx, events.TodoDeleted{TodoID: id.String(), UserID: userID, DeletedAt: now}, now)
	})
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func lockTodo(ctx context.Context, tx *sqlx.Tx, userID string, id uuid.UUID) (Todo, error) {
	var t Todo
	err := tx.GetContext(ctx, &t, `SELECT `+todoColumns+` FROM todos WHERE id = $1 AND user_id = $2 FOR UPDATE`, id, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return Todo{}, ErrNotFound
	}
	if err != nil {
		return Todo{}, fmt.Errorf("lock todo %s: %w", id, err)
	}
	return t, nil
}

// publish encodes ev and writes it to the outbox inside tx.
func (s *Store) publish(ctx context.Context, tx *sqlx.Tx, ev events.Event, at time.Time) error {
	payload, err := s.ser.Serialize(ctx, ev)
	if err != nil {
		return fmt.Errorf("encode %s: %w", ev.EventType(), err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new event id: %w", err)
	}
	return outbox.Write(ctx, tx, outbox.Message{
		ID:            id,
		AggregateType: events.AggregateType,
		AggregateID:   ev.AggregateID(),
		EventType:     ev.EventType(),
		Payload:       payload,
		CreatedAt:     at,
	})
}

// inTx runs fn in a transaction, committing when it returns nil and rolling back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
