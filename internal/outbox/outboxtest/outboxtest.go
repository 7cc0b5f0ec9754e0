// Package outboxtest gives end-to-end tests a throwaway outbox table in the todos database: same
// columns as public.outbox, none of its CHECK constraints, in a schema of its own that is dropped
// when the test ends. It fails the test, never skips it, when the stack is not there.
package outboxtest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/todocdc/pipeline/internal/consumertest"
	"github.com/todocdc/pipeline/internal/outbox"
)

// Table is a throwaway outbox table.
type Table struct {
	Schema string  // the schema's name; the table is Schema + ".outbox"
	URL    string  // TODO_API_DATABASE_URL with search_path = Schema
	DB     *sql.DB // connected as todo_api, search_path = Schema
}

// Qualified is the table's schema-qualified name, e.g. for Debezium's table.include.list.
func (tb Table) Qualified() string { return tb.Schema + ".outbox" }

// New creates schema e2e_<test>_<random> in the todos database, owned by todo_api, holding a table
// outbox LIKE public.outbox INCLUDING DEFAULTS (the columns, NOT NULL and defaults, no CHECK
// constraint) that todo_api owns. todo_api may not create schemas (scripts/sql/bootstrap.sql), so
// the superuser does (Superuser); the schema is dropped when the test ends.
func New(t testing.TB) Table {
	t.Helper()
	dbURL := os.Getenv("TODO_API_DATABASE_URL")
	if dbURL == "" {
		t.Fatal("TODO_API_DATABASE_URL must be set: run with make e2e, or `set -a; . .state/env; set +a` after make run")
	}
	name := consumertest.Name(t, "e2e")
	Superuser(t, `CREATE SCHEMA `+name+` AUTHORIZATION todo_api;
CREATE TABLE `+name+`.outbox (LIKE public.outbox INCLUDING DEFAULTS);
ALTER TABLE `+name+`.outbox OWNER TO todo_api;`)
	t.Cleanup(func() { Superuser(t, `DROP SCHEMA IF EXISTS `+name+` CASCADE`) })
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return Table{Schema: name, URL: u.String(), DB: db}
}

// Superuser runs SQL statements in the todos database as the postgres superuser, the way
// scripts/stack.sh does: psql over the cluster's unix socket (PG_ADMIN_SOCKET_DIR) as the OS user
// postgres (peer authentication), statements on standard input. It fails the test on any error.
func Superuser(t testing.TB, statements string) string {
	t.Helper()
	dir, port := os.Getenv("PG_ADMIN_SOCKET_DIR"), os.Getenv("PGPORT")
	if dir == "" || port == "" {
		t.Fatal("PG_ADMIN_SOCKET_DIR and PGPORT must be set: run with make e2e, or `set -a; . .state/env; set +a` after make run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
		"-h", dir, "-p", port, "-U", "postgres", "-d", "todos")
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader(statements)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql as postgres: %v\n%s\nstatements:\n%s", err, out, statements)
	}
	return strings.TrimSpace(string(out))
}

// Case is one outbox row for the tests of the outbox rules: the unit test of outbox.Validate and the
// end-to-end test, which checks that PostgreSQL's constraints refuse
// exactly the rows Validate refuses.
type Case struct {
	Name       string
	Msg        outbox.Message
	Constraint string // the CHECK constraint that refuses it; "" for a valid row
}

// Good is a valid message: the shape todo-api writes.
func Good() outbox.Message {
	return outbox.Message{ID: uuid.New(), AggregateType: "todos.task", AggregateID: uuid.NewString(), EventType: "todos.task.created",
		Payload: []byte{0, 0, 0, 0, 7, 2, 'x'}, CreatedAt: time.Now().UTC()}
}

// Cases lists one valid row or one broken rule per case.
func Cases() []Case {
	with := func(f func(*outbox.Message)) outbox.Message { m := Good(); f(&m); return m }
	return []Case{
		{"todo-api's row", Good(), ""},
		{"longest topic", with(func(m *outbox.Message) { m.AggregateType = strings.Repeat("a", outbox.MaxAggregateTypeLen) }), ""},
		{"payload at the limit", with(func(m *outbox.Message) {
			m.Payload = append([]byte{0, 0, 0, 0, 1}, make([]byte, outbox.MaxPayloadBytes-5)...)
		}), ""},
		{"header only", with(func(m *outbox.Message) { m.Payload = []byte{0, 0, 0, 0, 1} }), ""},
		{"event type with dashes", with(func(m *outbox.Message) { m.EventType = "com.example.order-line.added" }), ""},
		{"space in aggregate_type", with(func(m *outbox.Message) { m.AggregateType = "bad topic" }), "outbox_aggregate_type_topic"},
		{"empty aggregate_type", with(func(m *outbox.Message) { m.AggregateType = "" }), "outbox_aggregate_type_topic"},
		{"underscore in aggregate_type", with(func(m *outbox.Message) { m.AggregateType = "todos_task" }), "outbox_aggregate_type_topic"},
		{"non-ASCII aggregate_type", with(func(m *outbox.Message) { m.AggregateType = "tâches" }), "outbox_aggregate_type_topic"},
		{"newline in aggregate_type", with(func(m *outbox.Message) { m.AggregateType = "todos\ntask" }), "outbox_aggregate_type_topic"},
		{"topic over 249", with(func(m *outbox.Message) { m.AggregateType = strings.Repeat("a", outbox.MaxAggregateTypeLen+1) }), "outbox_aggregate_type_topic"},
		{"empty aggregate_id", with(func(m *outbox.Message) { m.AggregateID = "" }), "outbox_aggregate_id_key"},
		{"aggregate_id over 255 bytes", with(func(m *outbox.Message) { m.AggregateID = strings.Repeat("é", 128) }), "outbox_aggregate_id_key"},
		{"one-word event_type", with(func(m *outbox.Message) { m.EventType = "created" }), "outbox_event_type_cloudevents"},
		{"uppercase event_type", with(func(m *outbox.Message) { m.EventType = "Todos.Task.Created" }), "outbox_event_type_cloudevents"},
		{"empty segment in event_type", with(func(m *outbox.Message) { m.EventType = "todos..created" }), "outbox_event_type_cloudevents"},
		{"empty payload", with(func(m *outbox.Message) { m.Payload = []byte{} }), "outbox_payload_wire_format"},
		{"issue 9's payload", with(func(m *outbox.Message) { m.Payload = []byte{0} }), "outbox_payload_wire_format"},
		{"magic byte 1", with(func(m *outbox.Message) { m.Payload = []byte{1, 0, 0, 0, 7, 2} }), "outbox_payload_wire_format"},
		{"JSON payload", with(func(m *outbox.Message) { m.Payload = []byte(`{"todo_id":"x"}`) }), "outbox_payload_wire_format"},
		{"payload over the limit", with(func(m *outbox.Message) {
			m.Payload = append([]byte{0, 0, 0, 0, 1}, make([]byte, outbox.MaxPayloadBytes-4)...)
		}), "outbox_payload_size"},
	}
}
