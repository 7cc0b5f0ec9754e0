//go:build e2e

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/connect"
	"github.com/todocdc/pipeline/internal/consumertest"
	"github.com/todocdc/pipeline/internal/status"
	"github.com/todocdc/pipeline/serde"
)

// detectWithin is the bound: each fault is detected and named by status within 60 s.
const detectWithin = 60 * time.Second

// statusReport runs pipelinectl status -o json with argv and returns its report and exit code.
func statusReport(t *testing.T, env map[string]string, argv ...string) (status.Report, int) {
	t.Helper()
	code, out, stderr := runCLI(t, env, append([]string{"status", "-o", "json"}, argv...)...)
	var r status.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status -o json: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	if (code == exitOK) != (r.Verdict == status.OK) {
		t.Fatalf("exit %d with verdict %s", code, r.Verdict)
	}
	return r, code
}

func hopOf(r status.Report, name string) (status.Hop, bool) {
	for _, h := range r.Hops {
		if h.Name == name {
			return h, true
		}
	}
	return status.Hop{}, false
}

// waitHop runs status until hop name satisfies want, and returns it with the time it took.
func waitHop(t *testing.T, env map[string]string, name string, timeout time.Duration, what string,
	want func(status.Hop) bool, argv ...string) (status.Hop, status.Report, time.Duration) {
	t.Helper()
	start := time.Now()
	var last status.Hop
	var lastReport status.Report
	for {
		r, _ := statusReport(t, env, argv...)
		h, ok := hopOf(r, name)
		if ok && want(h) {
			return h, r, time.Since(start)
		}
		last, lastReport = h, r
		if time.Since(start) > timeout {
			b, _ := json.MarshalIndent(lastReport, "", "  ")
			t.Fatalf("%s: hop %q not %s within %s; last: %s %q %q\nreport:\n%s", t.Name(), name, what, timeout, last.Verdict, last.Summary, last.Details, b)
		}
		time.Sleep(time.Second)
	}
}

func mustHop(t *testing.T, r status.Report, name string) status.Hop {
	t.Helper()
	h, ok := hopOf(r, name)
	if !ok {
		t.Fatalf("no hop %q in the report", name)
	}
	return h
}

func verdictIs(v status.Verdict, contains ...string) func(status.Hop) bool {
	return func(h status.Hop) bool {
		if h.Verdict != v {
			return false
		}
		text := h.Summary + "\n" + strings.Join(h.Details, "\n")
		for _, c := range contains {
			if !strings.Contains(text, c) {
				return false
			}
		}
		return true
	}
}

// adminSQL runs SQL as PostgreSQL's superuser over the stack's unix socket (peer authentication
// as the postgres OS user), the SQL on stdin.
func adminSQL(t *testing.T, env map[string]string, db, sqlText string) string {
	t.Helper()
	sock := env["PG_ADMIN_SOCKET_DIR"]
	if sock == "" {
		t.Fatal("PG_ADMIN_SOCKET_DIR is not set: load .state/env")
	}
	cmd := exec.Command("runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/psql", "-X", "-q", "-At",
		"-v", "ON_ERROR_STOP=1", "-h", sock, "-p", envOr(env, "PGPORT", "5432"), "-U", "postgres", "-d", db)
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader(sqlText)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql as postgres on %s: %v\n%s", db, err, out)
	}
	return strings.TrimSpace(string(out))
}

// ownRelay is a connector of the test's own: its role, schema, outbox table, publication, slot and
// topic prefix, so that its faults never touch the shared pipeline.
type ownRelay struct {
	name, role, schema, slot, prefix string
	c                                *connect.Client
	env                              map[string]string
}

// newRelay creates the database objects and the connector, waits until it runs, and removes it
// all when the test ends.
func newRelay(t *testing.T, env map[string]string) *ownRelay {
	t.Helper()
	id := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	r := &ownRelay{name: "e2e-status-" + id, role: "e2e_status_" + id, schema: "e2e_status_" + id, slot: "e2e_status_" + id,
		prefix: "e2estatus" + id, env: env}
	pw := env["DEBEZIUM_DB_PASSWORD"]
	if pw == "" {
		t.Fatal("DEBEZIUM_DB_PASSWORD is not set: load .state/env")
	}
	r.c = connectClient(t, env)
	// The role shares the debezium role's password: the worker's config provider knows only
	// DEBEZIUM_* variables.
	adminSQL(t, env, "postgres", fmt.Sprintf(`CREATE ROLE %s LOGIN REPLICATION PASSWORD '%s';
GRANT CONNECT ON DATABASE todos TO %s;`, r.role, pw, r.role))
	adminSQL(t, env, "todos", fmt.Sprintf(`CREATE SCHEMA %[1]s AUTHORIZATION %[2]s;
CREATE TABLE %[1]s.outbox (id uuid PRIMARY KEY, aggregate_type text NOT NULL, aggregate_id text NOT NULL,
  event_type text NOT NULL, payload bytea, created_at timestamptz NOT NULL DEFAULT now());
ALTER TABLE %[1]s.outbox OWNER TO %[2]s;
CREATE PUBLICATION %[3]s FOR TABLE %[1]s.outbox WITH (publish = 'insert');
SELECT 1 FROM pg_create_logical_replication_slot('%[3]s', 'pgoutput');`, r.schema, r.role, r.slot))
	t.Cleanup(r.remove)

	cfg := outboxConfig(t, map[string]string{
		"name": r.name, "database.user": r.role, "slot.name": r.slot, "publication.name": r.slot,
		"table.include.list":          r.schema + ".outbox",
		"topic.prefix":                r.prefix,
		"predicates.isOutbox.pattern": r.prefix + `\.` + r.schema + `\.outbox`,
		"predicates.isEvent.pattern":  `e2estatus\..+\.events`,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := r.c.PutConfig(ctx, r.name, cfg); err != nil {
		t.Fatalf("create connector %s: %v", r.name, err)
	}
	if _, err := r.c.WaitRunning(ctx, r.name, 90*time.Second); err != nil {
		t.Fatalf("connector %s: %v", r.name, err)
	}
	return r
}

// args are status's flags that point it at this ownRelay only (no groups, no DLQ, no todo-api).
func (r *ownRelay) args() []string {
	return []string{"--connector", r.name, "--group", "", "--dlq-topic", "", "--api-url", "",
		"--state-file", filepath.Join(os.TempDir(), "pipelinectl-e2e-"+r.name+".json")}
}

func (r *ownRelay) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = r.c.Delete(ctx, r.name)
	if admin, err := kafka.NewAdminClient(adminKafka(r.env).ConfigMap(nil)); err == nil {
		_, _ = admin.DeleteTopics(ctx, []string{"__debezium-heartbeat." + r.prefix})
		admin.Close()
	}
	os.Remove(filepath.Join(os.TempDir(), "pipelinectl-e2e-"+r.name+".json"))
	// The slot can be dropped once its walsender is gone (a moment after the task stopped).
	sqlText := fmt.Sprintf(`DO $$
BEGIN
  FOR i IN 1..60 LOOP
    EXIT WHEN NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '%[1]s' AND active);
    PERFORM pg_sleep(0.5);
  END LOOP;
  PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '%[1]s' AND active;
  PERFORM pg_sleep(0.5);
  PERFORM pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '%[1]s';
END $$;
DROP PUBLICATION IF EXISTS %[1]s;
DROP SCHEMA IF EXISTS %[2]s CASCADE;`, r.slot, r.schema)
	cmdSQL(r.env, "todos", sqlText)
	cmdSQL(r.env, "postgres", fmt.Sprintf("REVOKE CONNECT ON DATABASE todos FROM %[1]s; DROP ROLE IF EXISTS %[1]s;", r.role))
}

// cmdSQL is adminSQL for cleanups (no test to fail: errors are printed).
func cmdSQL(env map[string]string, db, sqlText string) {
	cmd := exec.Command("runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/psql", "-X", "-q", "-At",
		"-v", "ON_ERROR_STOP=1", "-h", env["PG_ADMIN_SOCKET_DIR"], "-p", envOr(env, "PGPORT", "5432"), "-U", "postgres", "-d", db)
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader(sqlText)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cleanup SQL on %s: %v\n%s\n", db, err, out)
	}
}

// TestE2EStatusNamesALostLogin: ALTER ROLE ... NOLOGIN and a task restart. Connect keeps saying
// RUNNING (Debezium retries for ever); status says the streaming is down and names the login
// failure within 60 s; LOGIN again brings it back to ok.
func TestE2EStatusNamesALostLogin(t *testing.T) {
	env := e2eEnv(t)
	r := newRelay(t, env)
	streaming := "streaming " + r.name
	waitHop(t, env, streaming, detectWithin, "ok, moving", verdictIs(status.OK, "s ago), WAL"), r.args()...)

	adminSQL(t, env, "postgres", "ALTER ROLE "+r.role+" NOLOGIN")
	t.Cleanup(func() { cmdSQL(env, "postgres", "ALTER ROLE "+r.role+" LOGIN") })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	restarted := time.Now()
	if err := r.c.Restart(ctx, r.name, false); err != nil {
		t.Fatal(err)
	}
	// The silent failure the issue is about: Connect says RUNNING again once the restart is done...
	waitHop(t, env, "connector "+r.name, detectWithin, "RUNNING again after the restart",
		verdictIs(status.OK, "connector RUNNING", "task 0 RUNNING"), r.args()...)
	// ...and keeps saying so while Debezium retries the refused login; status names it.
	h, rep, _ := waitHop(t, env, streaming, detectWithin, "down with the login failure named",
		verdictIs(status.Down, "login failure", "NOLOGIN", r.role, "is inactive although Connect says the task is RUNNING"), r.args()...)
	took := time.Since(restarted)
	if took > detectWithin {
		t.Errorf("the lost login took %s to be named, more than %s", took, detectWithin)
	}
	t.Logf("lost login named %s after the task restart: %s", took.Round(time.Millisecond), h.Summary)
	if c, _ := hopOf(rep, "connector "+r.name); c.Verdict != status.OK {
		t.Errorf("connector hop %s %q: Connect no longer says RUNNING, not the silent case", c.Verdict, c.Summary)
	}
	// Stays so: Debezium retries every 10 s for ever.
	time.Sleep(12 * time.Second)
	if rep, _ := statusReport(t, env, r.args()...); !verdictIs(status.Down, "login failure")(mustHop(t, rep, streaming)) ||
		mustHop(t, rep, "connector "+r.name).Verdict != status.OK {
		t.Errorf("12 s later: streaming %+v, connector %+v", mustHop(t, rep, streaming), mustHop(t, rep, "connector "+r.name))
	}

	adminSQL(t, env, "postgres", "ALTER ROLE "+r.role+" LOGIN")
	_, _, took = waitHop(t, env, streaming, 2*detectWithin, "ok again", verdictIs(status.OK), r.args()...)
	t.Logf("ok again %s after LOGIN", took.Round(time.Millisecond))
}

// TestE2EStatusSlotInactive: the connector stopped (its task shut down: a PAUSED task keeps its
// replication connection): nothing streams from the slot, status says the streaming is down
// (slot inactive) and the connector STOPPED; resumed, ok again.
func TestE2EStatusSlotInactive(t *testing.T) {
	env := e2eEnv(t)
	r := newRelay(t, env)
	streaming := "streaming " + r.name
	waitHop(t, env, streaming, detectWithin, "ok, moving", verdictIs(status.OK, "s ago), WAL"), r.args()...)

	mustRun(t, env, exitOK, "connectors", "stop", r.name)
	h, rep, took := waitHop(t, env, streaming, detectWithin, "down, slot inactive",
		verdictIs(status.Down, "replication slot \""+r.slot+"\" is inactive"), r.args()...)
	t.Logf("inactive slot detected in %s: %s", took.Round(time.Millisecond), h.Summary)
	if c, _ := hopOf(rep, "connector "+r.name); c.Verdict != status.Degraded || !strings.Contains(c.Summary, "STOPPED") {
		t.Errorf("connector hop: %s %q, want degraded, STOPPED", c.Verdict, c.Summary)
	}
	if _, code := statusReport(t, env, r.args()...); code != exitFailure {
		t.Errorf("exit %d with a hop down, want %d", code, exitFailure)
	}

	mustRun(t, env, exitOK, "connectors", "resume", r.name)
	waitHop(t, env, streaming, detectWithin, "ok again", verdictIs(status.OK), r.args()...)
	waitHop(t, env, "connector "+r.name, detectWithin, "ok again", verdictIs(status.OK), r.args()...)
}

// TestE2EStatusFailedTask: an outbox row Kafka refuses (a 1.5 MB payload, over the producer's
// max.request.size; a row with an invalid topic name no longer fails the task: the connector's
// guard sends it to the DLQ) kills the task; status says the connector is down with the trace's
// first line. Restored by moving the slot past the row while the connector is stopped.
func TestE2EStatusFailedTask(t *testing.T) {
	env := e2eEnv(t)
	r := newRelay(t, env)
	connector := "connector " + r.name
	waitHop(t, env, connector, detectWithin, "ok", verdictIs(status.OK), r.args()...)

	adminSQL(t, env, "todos", fmt.Sprintf(`INSERT INTO %s.outbox (id, aggregate_type, aggregate_id, event_type, payload)
SELECT '%s', 'e2estatus.task', 'x', 'todos.task.created',
  decode(string_agg(md5(random()::text), ''), 'hex') FROM generate_series(1, 98304);`, r.schema, uuid.NewString()))
	inserted := time.Now()
	// The relay stops at once, Connect says FAILED only ~30 s later (after the transactional
	// producer's close): the streaming hop says down meanwhile (the slot inactive while Connect
	// says RUNNING).
	sh, srep, _ := waitHop(t, env, "streaming "+r.name, 2*detectWithin, "down", verdictIs(status.Down), r.args()...)
	t.Logf("streaming down %s after the row: %s (connector meanwhile: %s)", time.Since(inserted).Round(time.Millisecond), sh.Summary,
		mustHop(t, srep, connector).Summary)
	if c := mustHop(t, srep, connector); c.Verdict != status.OK {
		t.Logf("Connect already said %s when the streaming went down: the early detection was not shown this time", c.Summary)
	}
	h, _, _ := waitHop(t, env, connector, 2*detectWithin, "down, task FAILED",
		verdictIs(status.Down, "task 0 FAILED: "), r.args()...)
	took := time.Since(inserted)
	if took > detectWithin {
		t.Errorf("the failed task took %s to be named, more than %s", took, detectWithin)
	}
	t.Logf("failed task named %s after the row: %s", took.Round(time.Millisecond), h.Summary)
	if strings.Contains(h.Summary, "\n") || strings.Contains(h.Summary, "\tat ") {
		t.Errorf("summary is not the trace's first line: %q", h.Summary)
	}

	// Restore: stop it, move the slot past the row, reset the connector's offsets (they point
	// before the row), start it again.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.c.Stop(ctx, r.name); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := r.c.Status(ctx, r.name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Connector.State == connect.StateStopped && len(st.Tasks) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("connector not STOPPED: %+v", st)
		}
		time.Sleep(500 * time.Millisecond)
	}
	adminSQL(t, env, "todos", fmt.Sprintf(`DO $$
BEGIN
  FOR i IN 1..60 LOOP
    EXIT WHEN NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '%[1]s' AND active);
    PERFORM pg_sleep(0.5);
  END LOOP;
END $$;
-- (seen twice: the slot gone after the failure; it is then made again, from now)
SELECT CASE WHEN EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '%[1]s')
  THEN (SELECT 1 FROM pg_replication_slot_advance('%[1]s', pg_current_wal_lsn()))
  ELSE (SELECT 1 FROM pg_create_logical_replication_slot('%[1]s', 'pgoutput')) END;`, r.slot))
	mustRun(t, env, exitOK, "connectors", "offsets", r.name, "--reset", "--yes")
	mustRun(t, env, exitOK, "connectors", "resume", r.name)
	waitHop(t, env, connector, 2*detectWithin, "ok again", verdictIs(status.OK), r.args()...)
	waitHop(t, env, "streaming "+r.name, detectWithin, "ok again", verdictIs(status.OK), r.args()...)
}

// TestE2EStatusConsumerStopped: a consumer of the test's own group and topic, running, then
// stopped: status says the group is down (no member, not ready); started again, ok.
func TestE2EStatusConsumerStopped(t *testing.T) {
	env := e2eEnv(t)
	g := newOwnGroup(t, 2)
	p := consumertest.Producer(t, g.ce)
	for i := range 4 {
		ev := events.TodoCreated{TodoID: uuid.NewString(), UserID: "status-e2e", Title: fmt.Sprint("t", i), Status: events.StatusPending,
			CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
		consumertest.Publish(t, p, consumertest.Record(g.topic, uuid.NewString(), ev, consumertest.Encode(t, g.ser, ev)))
	}
	addr, stop := g.start(t)
	t.Cleanup(func() { stop() })
	hop := "group " + g.group
	argv := func(addr string) []string {
		return []string{"--connector", "todos-outbox", "--group", g.group + "=http://" + addr, "--dlq-topic", "", "--api-url", ""}
	}
	h, _, _ := waitHop(t, env, hop, detectWithin, "ok, caught up", verdictIs(status.OK, "lag 0"), argv(addr)...)
	t.Logf("running: %s", h.Summary)

	stop()
	stop = func() {}
	h, _, took := waitHop(t, env, hop, detectWithin, "down, no member",
		verdictIs(status.Down, "no member in the group", "does not answer ready"), argv(addr)...)
	t.Logf("stopped consumer detected in %s: %s", took.Round(time.Millisecond), h.Summary)

	addr, stop = g.start(t)
	waitHop(t, env, hop, detectWithin, "ok again", verdictIs(status.OK), argv(addr)...)
}

// TestE2EStatusRegistryStopped: the registry stopped (a short outage, restarted in a cleanup):
// status says it is down; back, ok.
func TestE2EStatusRegistryStopped(t *testing.T) {
	env := e2eEnv(t)
	argv := []string{"--connector", "todos-outbox", "--group", "", "--dlq-topic", "", "--api-url", ""}
	waitHop(t, env, "registry", detectWithin, "ok", verdictIs(status.OK), argv...)
	stackCmd(t, "stop", "apicurio")
	t.Cleanup(func() { stackCmd(t, "start", "apicurio") })
	h, _, took := waitHop(t, env, "registry", detectWithin, "down", verdictIs(status.Down, "not answering"), argv...)
	t.Logf("registry outage detected in %s: %s", took.Round(time.Millisecond), h.Summary)
	stackCmd(t, "start", "apicurio")
	waitHop(t, env, "registry", detectWithin, "ok again", verdictIs(status.OK), argv...)
}

// ownGroup is a consumer group of the test's own on a topic of its own (retry and DLQ topics
// named after it), with a database schema for its consumer and a serializer for the test's events.
type ownGroup struct {
	ce                  consumertest.Env
	topic, dbURL, group string
	ser                 *serde.Serializer
}

func newOwnGroup(t *testing.T, partitions int) ownGroup {
	t.Helper()
	g := ownGroup{ce: consumertest.LoadEnv(t)}
	g.topic = consumertest.Topic(t, g.ce, partitions)
	_, g.dbURL = consumertest.Schema(t, g.ce)
	g.group, g.ser = consumertest.Name(t, "e2e"), consumertest.Serializer(t, g.ce)
	return g
}

// start runs a consumer service of the group (a handler for TodoCreated that does nothing but be
// applied) with its metrics on a free port; stop ends it and waits.
func (g ownGroup) start(t *testing.T) (addr string, stop func()) {
	t.Helper()
	svc, stop := consumertest.StartService(t, consumer.ServiceConfig{
		Config: consumer.Config{BootstrapServers: g.ce.Kafka.BootstrapServers, Security: g.ce.Kafka.Security, GroupID: g.group,
			Topic: g.topic, RetryTopic: g.topic + ".retry", DLQTopic: g.topic + ".dlq"},
		DatabaseURL: g.dbURL, RegistryURL: g.ce.RegistryURL, MetricsAddr: "127.0.0.1:0"},
		func(context.Context, *sql.DB) error { return nil },
		func(*sql.DB) *consumer.Router {
			r := consumer.NewRouter()
			consumer.Handle(r, func(context.Context, *sql.Tx, *consumer.Message, events.TodoCreated) error { return nil })
			return r
		})
	return svc.MetricsAddr(), stop
}

func stackCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("../../scripts/stack.sh", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/stack.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestE2ELagReadsZeroWhenCaughtUp: events written in Kafka transactions (as Debezium's
// exactly-once relay writes them) leave a commit marker after each transaction. Once the consumer
// has applied them all, consumer_lag_records reads 0 on every partition and status says lag 0,
// although the committed offsets stay below the end (by the markers).
func TestE2ELagReadsZeroWhenCaughtUp(t *testing.T) {
	env := e2eEnv(t)
	g := newOwnGroup(t, 3)

	p, err := kafka.NewProducer(g.ce.Kafka.ConfigMap(kafka.ConfigMap{"transactional.id": g.group}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	const txs, perTx = 5, 4
	for range txs {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for range perTx {
			ev := events.TodoCreated{TodoID: uuid.NewString(), UserID: "lag-e2e", Title: "t", Status: events.StatusPending,
				CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
			if err := p.Produce(consumertest.Record(g.topic, uuid.NewString(), ev, consumertest.Encode(t, g.ser, ev)), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.CommitTransaction(ctx); err != nil {
			t.Fatal(err)
		}
	}

	addr, stop := g.start(t)
	t.Cleanup(stop)
	hc := &http.Client{Timeout: 5 * time.Second}
	consumertest.Eventually(t, time.Minute, "every event applied and consumer_lag_records 0 on each partition", func() (bool, string) {
		fams, err := status.Scrape(ctx, hc, "http://"+addr+"/metrics")
		if err != nil {
			return false, err.Error()
		}
		var handled float64
		fams.Each("consumer_events_handled_total", func(_ map[string]string, v float64) { handled += v })
		lags := map[string]float64{}
		fams.Each("consumer_lag_records", func(l map[string]string, v float64) {
			if l["topic"] == g.topic {
				lags[l["partition"]] = v
			}
		})
		if handled != txs*perTx || len(lags) != 3 {
			return false, fmt.Sprintf("handled %v, lag series %v", handled, lags)
		}
		for _, v := range lags {
			if v != 0 {
				return false, fmt.Sprintf("lag %v", lags)
			}
		}
		return true, ""
	})

	h, _, _ := waitHop(t, env, "group "+g.group, detectWithin, "ok with lag 0", verdictIs(status.OK, "lag 0"),
		"--connector", "todos-outbox", "--group", g.group+"=http://"+addr, "--dlq-topic", "", "--api-url", "")
	data, _ := json.Marshal(h.Data)
	var facts status.GroupFacts
	if err := json.Unmarshal(data, &facts); err != nil {
		t.Fatal(err)
	}
	markers, written := int64(0), 0
	for _, pl := range facts.Partitions {
		if pl.Topic != g.topic {
			continue
		}
		if pl.Lag != 0 || !pl.Exact {
			t.Errorf("%s[%d]: lag %d exact %v", pl.Topic, pl.Partition, pl.Lag, pl.Exact)
		}
		if pl.End > 0 {
			written++
			markers += pl.End - pl.Committed
			// The last transaction that wrote to the partition left its marker after the last record.
			if pl.End-pl.Committed < 1 {
				t.Errorf("%s[%d]: committed %d, end %d: no marker behind the committed offset, the test proves nothing", pl.Topic, pl.Partition, pl.Committed, pl.End)
			}
		}
	}
	if written == 0 {
		t.Fatal("no partition of the topic has records")
	}
	t.Logf("caught up: lag 0 on every partition, end - committed = %d over %d partitions (commit markers)", markers, written)
}
