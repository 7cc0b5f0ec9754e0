//go:build e2e

package consumer_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/todocdc/pipeline/consumer"
	ct "github.com/todocdc/pipeline/internal/consumertest"
)

// TestRuntimeMigration: the runtime's goose migration creates consumer_processed_events in a new
// schema, leaves a table made before it existed (and its rows) as it is, runs once (its own
// version table, apart from the service's goose_db_version), and is a no-op the second time.
func TestRuntimeMigration(t *testing.T) {
	e := ct.LoadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	open := func(url string) *sql.DB {
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		db.SetMaxOpenConns(1)
		return db
	}
	count := func(db *sql.DB, q string) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}

	_, freshURL := ct.Schema(t, e)
	fresh := open(freshURL)
	for range 2 {
		if err := consumer.SetupSQL(ctx, fresh, nil); err != nil {
			t.Fatalf("SetupSQL on a new schema: %v", err)
		}
	}
	if n := count(fresh, `SELECT count(*) FROM consumer_processed_events`); n != 0 {
		t.Fatalf("new table has %d rows", n)
	}
	if n := count(fresh, `SELECT count(*) FROM `+"consumer_goose_db_version"+` WHERE version_id = 1 AND is_applied`); n != 1 {
		t.Fatalf("migration 1 recorded %d times in %s, want once", n, "consumer_goose_db_version")
	}
	if n := count(fresh, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'goose_db_version'`); n != 0 {
		t.Fatal("the runtime's migration wrote to the service's version table goose_db_version")
	}

	_, oldURL := ct.Schema(t, e)
	old := open(oldURL)
	if _, err := old.ExecContext(ctx, `CREATE TABLE consumer_processed_events (
    group_id text NOT NULL, event_id text NOT NULL, event_type text NOT NULL, topic text NOT NULL,
    partition integer NOT NULL, "offset" bigint NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, event_id));
INSERT INTO consumer_processed_events (group_id, event_id, event_type, topic, partition, "offset")
VALUES ('g', 'e1', 'todos.task.created', 'todos.task.events', 0, 1)`); err != nil {
		t.Fatal(err)
	}
	if err := consumer.SetupSQL(ctx, old, nil); err != nil {
		t.Fatalf("SetupSQL where the table already exists: %v", err)
	}
	if n := count(old, `SELECT count(*) FROM consumer_processed_events WHERE event_id = 'e1'`); n != 1 {
		t.Fatalf("the existing row: %d, want kept", n)
	}
}
