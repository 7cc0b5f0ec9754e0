//go:build e2e

package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/consumertest"
	"github.com/todocdc/pipeline/internal/migrate"
	"github.com/todocdc/pipeline/internal/outbox"
	"github.com/todocdc/pipeline/internal/outbox/outboxtest"
	"github.com/todocdc/pipeline/internal/todo"
)

const constraintsMigration = "00003_outbox_constraints.sql"

// TestConstraintsRefuseWhatTheRelayCannotDeliver applies the constraints migration to an outbox
// table (same columns as todo-api's) that already holds a row breaking them, then inserts each
// case of outboxtest.Cases(): PostgreSQL must refuse exactly the rows Validate refuses, with SQLSTATE 23514
// and the constraint the case names, and accept todo-api's own write (outbox.Write of an event
// serialized with the registered schema).
func TestConstraintsRefuseWhatTheRelayCannotDeliver(t *testing.T) {
	tb := outboxtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	insert := func(db interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, m outbox.Message) error {
		_, err := db.ExecContext(ctx, `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, m.ID, m.AggregateType, m.AggregateID, m.EventType, m.Payload, m.CreatedAt)
		return err
	}
	// a row written before the constraints: the migration must still apply
	old := outboxtest.Good()
	old.AggregateType = "bad topic"
	if err := insert(tb.DB, old); err != nil {
		t.Fatalf("row before the migration: %v", err)
	}
	src, err := fs.ReadFile(todo.Migrations, "migrations/"+constraintsMigration)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.Up(ctx, tb.DB, fstest.MapFS{"m/" + constraintsMigration: {Data: src}}, "m", nil); err != nil {
		t.Fatalf("constraints migration on a table holding a row that breaks them: %v", err)
	}

	for _, c := range outboxtest.Cases() {
		err := insert(tb.DB, c.Msg)
		var pgErr *pgconn.PgError
		switch {
		case c.Constraint == "" && err != nil:
			t.Errorf("%s: refused: %v", c.Name, err)
		case c.Constraint == "":
		case !errors.As(err, &pgErr):
			t.Errorf("%s: want SQLSTATE 23514 from %s, got %v", c.Name, c.Constraint, err)
		case pgErr.Code != "23514" || pgErr.ConstraintName != c.Constraint:
			t.Errorf("%s: SQLSTATE %s constraint %q (%s), want 23514 %s", c.Name, pgErr.Code, pgErr.ConstraintName, pgErr.Message, c.Constraint)
		}
		if verr := outbox.Validate(c.Msg); (verr == nil) != (err == nil) {
			t.Errorf("%s: Validate says %v, PostgreSQL says %v: the two rule sets differ", c.Name, verr, err)
		}
	}

	// todo-api's write path: a registered schema's wire format, inserted and deleted in one tx
	ser := consumertest.Serializer(t, consumertest.LoadEnv(t))
	ev := events.TodoCreated{TodoID: uuid.NewString(), UserID: "outbox-e2e", Title: "constraints", Status: events.StatusPending,
		Priority: events.PriorityNormal, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	tx, err := tb.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := outbox.Write(ctx, tx, outbox.Message{ID: uuid.New(), AggregateType: events.AggregateType, AggregateID: ev.TodoID,
		EventType: ev.EventType(), Payload: consumertest.Encode(t, ser, ev), CreatedAt: ev.CreatedAt}); err != nil {
		t.Fatalf("todo-api's outbox write under the constraints: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit todo-api's outbox write: %v", err)
	}
}
