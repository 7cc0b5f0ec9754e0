//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/connect"
	"github.com/todocdc/pipeline/internal/consumertest"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/outbox"
	"github.com/todocdc/pipeline/internal/outbox/outboxtest"
)

// stuckRelay is a Debezium outbox connector of the test's own: a copy of
// connectors/todos-outbox.json reading a throwaway outbox table (no constraints) through its own
// publication and replication slot, routing every event to a test topic. The shared pipeline is
// not touched.
type stuckRelay struct {
	name  string // connector, slot, publication, schema and topic prefix
	topic string // where the events go: aggregate_type is the topic's name
	dlq   string
	table outboxtest.Table
	c     *connect.Client
}

func newStuckRelay(t *testing.T, env map[string]string) *stuckRelay {
	t.Helper()
	ce := consumertest.LoadEnv(t)
	tb := outboxtest.New(t)
	r := &stuckRelay{name: tb.Schema, table: tb, topic: consumertest.TopicWith(t, ce, 1, nil), dlq: consumertest.Topic(t, ce, 1)}
	c := connectClient(t, env)
	r.c = c
	// the publication before the slot: pgoutput fails on changes made between the two
	outboxtest.Superuser(t, fmt.Sprintf(`GRANT USAGE ON SCHEMA %[1]s TO debezium;
CREATE PUBLICATION %[1]s FOR TABLE %[1]s.outbox WITH (publish = 'insert');
SELECT 'slot ' || slot_name FROM pg_create_logical_replication_slot('%[1]s', 'pgoutput');`, r.name))
	t.Cleanup(func() { r.dropSlot(t) })

	cfg := outboxConfig(t, map[string]string{
		"name": r.name, "slot.name": r.name, "publication.name": r.name, "topic.prefix": r.name,
		"table.include.list":                        r.name + `\.outbox`,
		"predicates.isOutbox.pattern":               r.name + `\.` + r.name + `\.outbox`,
		"transforms.outbox.route.topic.replacement": "${routedByValue}",
		"predicates.isEvent.pattern":                strings.ReplaceAll(r.topic, ".", `\.`),
		"transforms.unroutable.replacement":         r.dlq,
		"predicates.isGuarded.pattern":              strings.ReplaceAll(r.dlq, ".", `\.`),
		"transforms.unroutablegroup.value.literal":  "connector:" + r.name,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.PutConfig(ctx, r.name, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.deleteConnector(t, ce) })
	if _, err := c.WaitRunning(ctx, r.name, 2*time.Minute); err != nil {
		t.Fatalf("test connector: %v", err)
	}
	return r
}

func (r *stuckRelay) deleteConnector(t *testing.T, ce consumertest.Env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.c.Delete(ctx, r.name); err != nil {
		t.Logf("delete connector %s: %v", r.name, err)
	}
	admin, err := kafka.NewAdminClient(ce.Kafka.ConfigMap(nil))
	if err != nil {
		return
	}
	defer admin.Close()
	_, _ = admin.DeleteTopics(ctx, []string{"__debezium-heartbeat." + r.name})
}

// dropSlot drops the publication and, once the deleted connector's task has let go of it, the slot.
func (r *stuckRelay) dropSlot(t *testing.T) {
	deadline := time.Now().Add(time.Minute)
	for {
		out := outboxtest.Superuser(t, fmt.Sprintf(`DROP PUBLICATION IF EXISTS %[1]s;
SELECT 'dropped' FROM pg_replication_slots WHERE slot_name = '%[1]s' AND NOT active AND pg_drop_replication_slot(slot_name) IS NOT NULL;
SELECT 'left' FROM pg_replication_slots WHERE slot_name = '%[1]s';`, r.name))
		if !strings.Contains(out, "left") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("replication slot %s still active a minute after its connector was deleted: drop it by hand", r.name)
			return
		}
		time.Sleep(time.Second)
	}
}

// event is a good outbox event the test wrote.
type event struct{ id, key string }

// write commits one outbox transaction as another service would: each row inserted and deleted in
// the transaction; bad (when not nil) is inserted after good[:at], raw, past outbox.Write's rules.
// It returns the WAL insert position before and after the bad row's insert.
func (r *stuckRelay) write(t *testing.T, good []event, bad *outbox.Message, at int) (before, after pglogrepl.LSN) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tx, err := r.table.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	walPos := func() pglogrepl.LSN {
		var s string
		if err := tx.QueryRowContext(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		l, err := pglogrepl.ParseLSN(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for i, e := range good {
		if bad != nil && i == at {
			before = walPos()
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, created_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, bad.ID, bad.AggregateType, bad.AggregateID, bad.EventType, bad.Payload, bad.CreatedAt); err != nil {
				t.Fatalf("bad row: %v", err)
			}
			after = walPos()
			if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = $1`, bad.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := outbox.Write(ctx, tx, outbox.Message{ID: uuid.MustParse(e.id), AggregateType: r.topic, AggregateID: e.key,
			EventType: events.TypeCreated, Payload: []byte{0, 0, 0, 0, 1, 2, 'o', 'k'}, CreatedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return before, after
}

func goodEvents(n int) []event {
	out := make([]event, n)
	for i := range out {
		out[i] = event{id: uuid.NewString(), key: fmt.Sprintf("todo-%d-%s", i, uuid.NewString()[:8])}
	}
	return out
}

// TestE2EConnectorsSkipMovesPastOneStuckEventLosingNoOther stops a relay with one event Kafka
// refuses (a 2 MB payload, over the producer's max.request.size) in the middle of a transaction,
// with good events before it in the same transaction and the same poll (the Kafka transaction
// the failure aborts holds them), after it in the same transaction, and in the transactions
// before and after. connectors stuck must name it (outbox id, and an LSN inside its insert);
// skip without --yes must change nothing; skip --yes must isolate it, record it on the DLQ and
// move the connector past it. A read_committed reader must then see every good event exactly
// once, in commit order, and the DLQ the skipped one.
func TestE2EConnectorsSkipMovesPastOneStuckEventLosingNoOther(t *testing.T) {
	// Whether events ahead of the blocking one were in the aborted Kafka transaction depends on
	// how Debezium's polls fell; "isolate" forces the isolation path either way.
	t.Run("as found", func(t *testing.T) { testSkip(t) })
	t.Run("isolate", func(t *testing.T) { testSkip(t, "--isolate") })
}

func testSkip(t *testing.T, flags ...string) {
	env := e2eEnv(t)
	r := newStuckRelay(t, env)
	ce := consumertest.LoadEnv(t)
	reader := consumertest.NewReader(t, ce, r.topic)

	before, inTx, after := goodEvents(2), goodEvents(5), goodEvents(2)
	bad := outbox.Message{ID: uuid.New(), AggregateType: r.topic, AggregateID: "too-large", EventType: events.TypeCreated,
		Payload: append([]byte{0, 0, 0, 0, 1}, make([]byte, 2_000_000)...), CreatedAt: time.Now().UTC()}
	r.write(t, before, nil, 0)
	lo, hi := r.write(t, inTx, &bad, 2) // two good events, the bad one, three good ones
	r.write(t, after, nil, 0)
	want := append(append(append([]event{}, before...), inTx...), after...)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	failedAt := time.Now()
	if err := (&app{}).waitFailed(ctx, r.c, r.name, 2*time.Minute); err != nil {
		t.Fatalf("the relay did not fail on the 2 MB event: %v", err)
	}
	t.Logf("task FAILED %.1fs after the writes", time.Since(failedAt).Seconds())

	// stuck names it
	var st stuckReport
	if err := json.Unmarshal([]byte(mustRun(t, env, exitOK, "connectors", "stuck", r.name, "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Stuck || st.Event == nil || st.Event.ID != bad.ID.String() {
		t.Fatalf("stuck did not name %s: %+v", bad.ID, st)
	}
	if st.Event.LSNValue <= lo || st.Event.LSNValue > hi {
		t.Fatalf("stuck says LSN %s, the bad insert was written between %s and %s", st.Event.LSN, lo, hi)
	}
	t.Logf("stuck: %s at %s, %d pending, %d ahead, isolate %t, because %s", st.Event.ID, st.Event.LSN, st.Pending, len(st.Before), st.Isolate, st.Reason)

	// a dry run changes nothing
	offsBefore, err := r.c.Offsets(ctx, r.name)
	if err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, env, exitOK, "connectors", "skip", r.name)
	if !strings.Contains(out, "would-skip") || !strings.Contains(out, bad.ID.String()) {
		t.Fatalf("dry run:\n%s", out)
	}
	offsAfter, err := r.c.Offsets(ctx, r.name)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(offsBefore) != fmt.Sprint(offsAfter) {
		t.Fatalf("the dry run moved the offsets: %v -> %v", offsBefore, offsAfter)
	}
	if s, err := r.c.Status(ctx, r.name); err != nil || s.Failure() == nil {
		t.Fatalf("after the dry run the task is not FAILED any more: %s %v", s.Summary(), err)
	}

	// skip --yes
	skipped := time.Now()
	out = mustRun(t, env, exitOK, append([]string{"connectors", "skip", r.name, "--yes", "--id", bad.ID.String(), "--dlq-topic", r.dlq}, flags...)...)
	if isolated := strings.Contains(out, "isolating"); isolated != (st.Isolate || len(flags) > 0) {
		t.Fatalf("isolated %t, want %t", isolated, st.Isolate || len(flags) > 0)
	}
	t.Logf("skip --yes took %.1fs:\n%s", time.Since(skipped).Seconds(), out)
	if cfg, err := r.c.Config(ctx, r.name); err != nil || cfg["max.batch.size"] != "" || cfg[isolatingKey] != "" {
		t.Fatalf("the connector's config was not restored: max.batch.size=%q %s=%q %v", cfg["max.batch.size"], isolatingKey, cfg[isolatingKey], err)
	}

	// every good event exactly once, in commit order; then one more transaction still flows
	later := goodEvents(2)
	r.write(t, later, nil, 0)
	want = append(want, later...)
	expectExactlyOnceInOrder(t, reader, want, 2*time.Minute)

	// the skipped event is on the DLQ, in the consumers' DLQ format
	e := onlyDLQEntry(ctx, t, ce, r.dlq)
	if id, _ := dlq.Header(e.Headers, events.HeaderID); id != bad.ID.String() || string(e.Key) != bad.AggregateID ||
		e.Failure.Topic != r.topic || e.Failure.Class != dlq.Permanent || !strings.Contains(e.Failure.Err, st.Event.LSN) {
		t.Fatalf("DLQ record: key %q headers %v failure %+v", e.Key, e.Headers, e.Failure)
	}
	t.Logf("DLQ: %s", e.Failure.Err)
}

// TestE2EOutboxGuardSendsAnUnroutableRowToTheDLQ writes issue 9's row (aggregate_type "bad topic",
// a payload of one zero byte) between good events of the same transaction, as another writer
// could past the constraints: the connector's guard (connectors/todos-outbox.json, predicate
// isUnroutable) must route it to the DLQ with the failure headers, the task must keep running,
// and every good event must arrive once, in order.
func TestE2EOutboxGuardSendsAnUnroutableRowToTheDLQ(t *testing.T) {
	env := e2eEnv(t)
	r := newStuckRelay(t, env)
	ce := consumertest.LoadEnv(t)
	reader := consumertest.NewReader(t, ce, r.topic)

	good, after := goodEvents(4), goodEvents(2)
	bad := outbox.Message{ID: uuid.New(), AggregateType: "bad topic", AggregateID: "x", EventType: events.TypeCreated,
		Payload: []byte{0}, CreatedAt: time.Now().UTC()}
	r.write(t, good, &bad, 2)
	r.write(t, after, nil, 0)
	want := append(append([]event{}, good...), after...)

	expectExactlyOnceInOrder(t, reader, want, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s, err := r.c.Status(ctx, r.name); err != nil || !s.Running() {
		t.Fatalf("the relay does not run after the unroutable row: %s %v", s.Summary(), err)
	}
	e := onlyDLQEntry(ctx, t, ce, r.dlq)
	if id, _ := dlq.Header(e.Headers, events.HeaderID); id != bad.ID.String() || string(e.Key) != "x" || len(e.Value) != 1 ||
		e.Failure.Class != dlq.Permanent || e.Failure.Group != "connector:"+r.name || !strings.Contains(e.Failure.Err, "invalid Kafka topic name") {
		t.Fatalf("DLQ record: key %q value %x headers %v failure %+v", e.Key, e.Value, e.Headers, e.Failure)
	}
	out := mustRun(t, env, exitOK, "dlq", "list", "--topic", r.dlq)
	if !strings.Contains(out, bad.ID.String()) {
		t.Fatalf("dlq list does not show it:\n%s", out)
	}
	t.Logf("dlq list:\n%s", out)
}

// expectExactlyOnceInOrder reads the test topic until it holds as many records as want (then 3 s
// more, for duplicates) and fails unless their ce_id are want's ids, in order.
func expectExactlyOnceInOrder(t *testing.T, reader *consumertest.Reader, want []event, timeout time.Duration) {
	t.Helper()
	all := func(*kafka.Message) bool { return true }
	got := reader.Until(timeout, all, func(ms []*kafka.Message) bool { return len(ms) >= len(want) })
	got = append(got, reader.Collect(3*time.Second, all)...)
	var ids, wantIDs []string
	for _, m := range got {
		id, _ := dlq.Header(m.Headers, events.HeaderID)
		ids = append(ids, id)
	}
	for _, e := range want {
		wantIDs = append(wantIDs, e.id)
	}
	if strings.Join(ids, ",") != strings.Join(wantIDs, ",") {
		t.Fatalf("read_committed reader saw %d events:\n%s\nwant %d, in this order:\n%s", len(ids), strings.Join(ids, "\n"),
			len(wantIDs), strings.Join(wantIDs, "\n"))
	}
}

// onlyDLQEntry is the one record of the test's DLQ topic.
func onlyDLQEntry(ctx context.Context, t *testing.T, ce consumertest.Env, topic string) dlq.Entry {
	t.Helper()
	entries, err := dlq.Read(ctx, ce.Kafka, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("DLQ %s holds %d records, want one", topic, len(entries))
	}
	return entries[0]
}

// TestE2EConnectorsSkipRefusesEventsSharingAnLSN copies three rows into the outbox in one COPY
// (one WAL record: the three events share an LSN), the middle one too large: Debezium 3.6's offset
// cannot point between them (dbz#1554), so skip must refuse, say why, record nothing on the DLQ
// and leave the connector with its own config.
func TestE2EConnectorsSkipRefusesEventsSharingAnLSN(t *testing.T) {
	env := e2eEnv(t)
	r := newStuckRelay(t, env)
	ce := consumertest.LoadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	rows := [][]any{}
	bad := uuid.New()
	for i, id := range []uuid.UUID{uuid.New(), bad, uuid.New()} {
		payload := []byte{0, 0, 0, 0, 1, 2, 'o', 'k'}
		if id == bad {
			payload = append([]byte{0, 0, 0, 0, 1}, make([]byte, 2_000_000)...)
		}
		rows = append(rows, []any{id, r.topic, fmt.Sprintf("copy-%d", i), events.TypeCreated, payload, time.Now().UTC()})
	}
	conn, err := r.table.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error {
		_, err := dc.(*stdlib.Conn).Conn().CopyFrom(ctx, pgx.Identifier{r.table.Schema, "outbox"},
			[]string{"id", "aggregate_type", "aggregate_id", "event_type", "payload", "created_at"}, pgx.CopyFromRows(rows))
		return err
	}); err != nil {
		t.Fatalf("COPY into the outbox: %v", err)
	}
	if err := (&app{}).waitFailed(ctx, r.c, r.name, 2*time.Minute); err != nil {
		t.Fatalf("the relay did not fail on the 2 MB event: %v", err)
	}

	code, out, stderr := runCLI(t, env, "connectors", "skip", r.name, "--yes", "--dlq-topic", r.dlq)
	t.Logf("skip --yes: exit %d\n%s", code, out)
	if code != exitFailure || !strings.Contains(out, "share LSN") || !strings.Contains(out, "dbz#1554") {
		t.Fatalf("skip of an event sharing its LSN: exit %d, want %d and the reason\nstdout:\n%s\nstderr:\n%s", code, exitFailure, out, stderr)
	}
	if entries, err := dlq.Read(ctx, ce.Kafka, r.dlq); err != nil || len(entries) != 0 {
		t.Fatalf("the refused skip recorded %d DLQ records (%v)", len(entries), err)
	}
	if cfg, err := r.c.Config(ctx, r.name); err != nil || cfg["max.batch.size"] != "" || cfg[isolatingKey] != "" {
		t.Fatalf("the connector's config was not restored: max.batch.size=%q %v", cfg["max.batch.size"], err)
	}
}
