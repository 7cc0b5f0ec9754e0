package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
)

// routes applies each event to the projection inside the runtime's transaction.
func routes() *consumer.Router {
	r := consumer.NewRouter()
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, _ *consumer.Message, ev events.TodoCreated) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO analytics_todos (todo_id, user_id) VALUES ($1, $2)
            ON CONFLICT DO NOTHING`, ev.TodoID, ev.UserID)
		if err != nil {
			return fmt.Errorf("todo %s: %w", ev.TodoID, err)
		}
		opened, _ := res.RowsAffected()
		return bump(ctx, tx, ev.UserID, 1, 0, 0, opened)
	})
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, _ *consumer.Message, ev events.TodoCompleted) error {
		closed, err := transition(ctx, tx, ev.TodoID, ev.UserID, `UPDATE analytics_todos SET completed = true
            WHERE todo_id = $1 AND NOT completed AND NOT deleted`, `INSERT INTO analytics_todos (todo_id, user_id, completed)
            VALUES ($1, $2, true) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		return bump(ctx, tx, ev.UserID, 0, 1, 0, -closed)
	})
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, _ *consumer.Message, ev events.TodoDeleted) error {
		var wasCompleted bool
		err := tx.QueryRowContext(ctx, `UPDATE analytics_todos SET deleted = true
            WHERE todo_id = $1 AND NOT deleted RETURNING completed`, ev.TodoID).Scan(&wasCompleted)
		var closed int64
		switch {
		case err == nil:
			if !wasCompleted {
				closed = 1
			}
		case errors.Is(err, sql.ErrNoRows):
			// never saw it created (or deleted twice): remember it as deleted; open does not move
			if _, err := tx.ExecContext(ctx, `INSERT INTO analytics_todos (todo_id, user_id, deleted) VALUES ($1, $2, true)
                ON CONFLICT DO NOTHING`, ev.TodoID, ev.UserID); err != nil {
				return fmt.Errorf("todo %s: %w", ev.TodoID, err)
			}
		default:
			return fmt.Errorf("todo %s: %w", ev.TodoID, err)
		}
		return bump(ctx, tx, ev.UserID, 0, 0, 1, -closed)
	})
	return r
}

// transition runs update; if it touched no open todo, it runs insertUnknown for a todo never seen.
// It returns 1 when an open todo was closed.
func transition(ctx context.Context, tx *sql.Tx, todoID, userID, update, insertUnknown string) (int64, error) {
	res, err := tx.ExecContext(ctx, update, todoID)
	if err != nil {
		return 0, fmt.Errorf("todo %s: %w", todoID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return 1, nil
	}
	if _, err := tx.ExecContext(ctx, insertUnknown, todoID, userID); err != nil {
		return 0, fmt.Errorf("todo %s: %w", todoID, err)
	}
	return 0, nil
}

func bump(ctx context.Context, tx *sql.Tx, user string, created, completed, deleted, open int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO user_stats AS s (user_id, created, completed, deleted, open)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (user_id) DO UPDATE SET created = s.created + $2, completed = s.completed + $3,
            deleted = s.deleted + $4, open = s.open + $5, updated_at = now()`, user, created, completed, deleted, open)
	if err != nil {
		return fmt.Errorf("stats of %s: %w", user, err)
	}
	return nil
}

// Stats is a user's figures, as GET /v1/stats returns them.
type Stats struct {
	UserID         string  `json:"user_id"`
	Created        int64   `json:"created"`
	Completed      int64   `json:"completed"`
	Deleted        int64   `json:"deleted"`
	Open           int64   `json:"open"`
	CompletionRate float64 `json:"completion_rate"` // completed / created, 0 when nothing was created
}

func statsOf(ctx context.Context, db *sql.DB, user string) (Stats, error) {
	s := Stats{UserID: user}
	err := db.QueryRowContext(ctx, `SELECT created, completed, deleted, open FROM user_stats WHERE user_id = $1`, user).
		Scan(&s.Created, &s.Completed, &s.Deleted, &s.Open)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s, err
	}
	if s.Created > 0 {
		s.CompletionRate = float64(s.Completed) / float64(s.Created)
	}
	return s, nil
}
