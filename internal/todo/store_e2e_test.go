//go:build e2e

package todo

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/outbox"
	"github.com/todocdc/pipeline/serde"
)

func openStore(t *testing.T) (*Store, *sqlx.DB) {
	t.Helper()
	url := os.Getenv("TODO_API_DATABASE_URL")
	if url == "" || os.Getenv("SCHEMA_REGISTRY_URL") == "" {
		t.Fatal("TODO_API_DATABASE_URL and SCHEMA_REGISTRY_URL must be set: run with make e2e, or `set -a; . .state/env; set +a` after make run")
	}
	db, err := sqlx.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// the real serializer: the event reaches the running consumers, which apply it like any other
	ser, err := serde.NewSerializer(serde.NewRegistryClient(os.Getenv("SCHEMA_REGISTRY_URL"), 10*time.Second), serde.SerializerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return NewStore(db, ser), db
}

// TestCreateIsOneRoundTripAndAtomic: a todo created without an Idempotency-Key goes as one pgx
// batch (its row is there, its outbox row inserted and deleted); and such a batch is one
// transaction: when its last statement fails, the statements before it leave nothing.
func TestCreateIsOneRoundTripAndAtomic(t *testing.T) {
	s, db := openStore(t)
	ctx := context.Background()
	todo, err := s.Create(ctx, "store-e2e", "pipelined", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var n, left int
	if err := db.Get(&n, `SELECT count(*) FROM todos WHERE id = $1 AND version = 1 AND status = 'PENDING'`, todo.ID); err != nil || n != 1 {
		t.Fatalf("todo row: %d (%v)", n, err)
	}
	if err := db.Get(&left, `SELECT count(*) FROM outbox WHERE aggregate_id = $1`, todo.ID.String()); err != nil || left != 0 {
		t.Fatalf("outbox rows left: %d (%v)", left, err)
	}

	other := Todo{ID: uuid.Must(uuid.NewV7()), UserID: "store-e2e", Title: "rolled back", Status: events.StatusPending,
		Priority: "NORMAL", CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(), Version: 1}
	m := outbox.Message{ID: uuid.Must(uuid.NewV7()), AggregateType: "bench.store-e2e", AggregateID: other.ID.String(),
		EventType: events.TypeCreated, Payload: []byte{0, 0, 0, 0, 1, 2}, CreatedAt: other.CreatedAt}
	b := &pgx.Batch{}
	b.Queue(insertTodoSQL, todoInsertArgs(other)...)
	b.Queue(outbox.InsertSQL, m.InsertArgs()...)
	b.Queue(`SELECT 1/0`)
	if done, err := s.sendBatch(ctx, b, created(other.ID)); !done || err == nil {
		t.Fatalf("a batch ending in a failing statement: done %v, err %v", done, err)
	}
	if err := db.Get(&n, `SELECT count(*) FROM todos WHERE id = $1`, other.ID); err != nil || n != 0 {
		t.Fatalf("the failed batch left %d todo rows (%v)", n, err)
	}
}
