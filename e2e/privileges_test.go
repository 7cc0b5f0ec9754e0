//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/todocdc/pipeline/internal/topicreader"
)

// The least-privilege rules of scripts/sql/bootstrap.sql, each refusal proven against the running
// PostgreSQL with the roles' own credentials (from .state/env, as make e2e loads them).

// roleURL is the URL of role's own database with its password, for database db.
func roleURL(t *testing.T, envVar, db string) string {
	t.Helper()
	raw := os.Getenv(envVar)
	if raw == "" {
		t.Fatalf("%s is not set (make e2e loads .state/env)", envVar)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", envVar, err)
	}
	u.Path = "/" + db
	return u.String()
}

// debeziumURL is the connector's login, for database db.
func debeziumURL(t *testing.T, db string) string {
	t.Helper()
	user, pw := os.Getenv("DEBEZIUM_DB_USER"), os.Getenv("DEBEZIUM_DB_PASSWORD")
	if user == "" || pw == "" {
		t.Fatal("DEBEZIUM_DB_USER and DEBEZIUM_DB_PASSWORD are not set (make e2e loads .state/env)")
	}
	u, err := url.Parse(os.Getenv("TODO_API_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, pw)
	u.Path = "/" + db
	return u.String()
}

// sqlState is the SQLSTATE of err, or "" if err is not a PostgreSQL error.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// mustRefuseConnect checks that dsn's role may not connect: 42501, permission denied for database.
func mustRefuseConnect(t *testing.T, who, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		conn.Close(ctx)
		t.Errorf("%s could connect to %s", who, redactURL(dsn))
		return
	}
	if sqlState(err) != "42501" {
		t.Errorf("%s connecting to %s: want SQLSTATE 42501 (permission denied), got %v", who, redactURL(dsn), err)
	}
}

// connectAs opens dsn (which must succeed) for the statements of one test.
func connectAs(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", redactURL(dsn), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// mustRefuse runs each statement in its own rolled-back transaction (alone, for the statements that
// cannot run in one) and checks that PostgreSQL refuses it with SQLSTATE want.
func mustRefuse(t *testing.T, conn *pgx.Conn, who, want string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, stmt := range stmts {
		if strings.HasPrefix(stmt, "ALTER SYSTEM") || strings.HasPrefix(stmt, "CREATE DATABASE") {
			if _, err := conn.Exec(ctx, stmt); sqlState(err) != want {
				t.Errorf("%s: %s\n  want SQLSTATE %s, got %v", who, stmt, want, err)
			}
			continue
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, stmt)
		_ = tx.Rollback(ctx)
		if got := sqlState(err); got != want {
			t.Errorf("%s: %s\n  want SQLSTATE %s, got %v", who, stmt, want, err)
		}
	}
}

func TestPostgresRolesReachOnlyTheirOwn(t *testing.T) {
	t.Run("todo_api", func(t *testing.T) {
		for _, db := range []string{"notifier", "analytics", "example", "registry", "postgres"} {
			mustRefuseConnect(t, "todo_api", roleURL(t, "TODO_API_DATABASE_URL", db))
		}
		conn := connectAs(t, os.Getenv("TODO_API_DATABASE_URL"))
		mustRefuse(t, conn, "todo_api", "42501",
			"CREATE SCHEMA intruder",                                                  // no CREATE on the database
			"CREATE PUBLICATION intruder FOR ALL TABLES",                              // publications are the platform's
			"SELECT pg_create_logical_replication_slot('intruder', 'pgoutput', true)", // NOREPLICATION
			"CREATE ROLE intruder",
			"SELECT pg_read_file('postgresql.conf')",
			"SET session_replication_role = replica", // superuser only: would skip triggers and constraints
			"ALTER SYSTEM SET wal_level = minimal",
		)
		mustRefuse(t, conn, "todo_api", "0A000", // feature_not_supported: no cross-database reference
			"SELECT * FROM notifier.public.notifications")
	})

	t.Run("debezium", func(t *testing.T) {
		for _, db := range []string{"notifier", "analytics", "example", "registry", "postgres"} {
			mustRefuseConnect(t, "debezium", debeziumURL(t, db))
		}
		conn := connectAs(t, debeziumURL(t, "todos"))
		var super, repl bool
		if err := conn.QueryRow(context.Background(),
			`SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user`).Scan(&super, &repl); err != nil {
			t.Fatal(err)
		}
		if super || !repl {
			t.Errorf("debezium: superuser=%v replication=%v, want false and true", super, repl)
		}
		mustRefuse(t, conn, "debezium", "42501",
			"SELECT * FROM todos LIMIT 1",  // the business rows are not the relay's
			"SELECT * FROM outbox LIMIT 1", // nor the outbox: pgoutput sends its inserts
			"CREATE PUBLICATION intruder FOR TABLE todos",
			"ALTER PUBLICATION todos_outbox ADD TABLE todos", // only the owner (todo_api) may
			"ALTER PUBLICATION todos_outbox SET (publish = 'insert, update, delete')",
			"DROP PUBLICATION todos_outbox",
			"INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES (gen_random_uuid(), 'todos.task', 'x', 'todos.task.created', '\\x00')",
			"CREATE TABLE intruder (id int)",
		)
		// What it may do: stream through the pre-made publication, which covers the outbox only.
		var tables []string
		rows, err := conn.Query(context.Background(),
			`SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = 'todos_outbox'`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, s)
		}
		if rows.Err() != nil || len(tables) != 1 || tables[0] != "public.outbox" {
			t.Errorf("publication todos_outbox covers %v (err %v), want [public.outbox]", tables, rows.Err())
		}
	})

	for _, c := range []struct{ role, env, other string }{
		{"notifier", "NOTIFIER_DATABASE_URL", "analytics"},
		{"analytics", "ANALYTICS_DATABASE_URL", "notifier"},
		{"example", "EXAMPLE_DATABASE_URL", "notifier"},
	} {
		t.Run(c.role, func(t *testing.T) {
			for _, db := range []string{c.other, "todos", "registry", "postgres"} {
				mustRefuseConnect(t, c.role, roleURL(t, c.env, db))
			}
			conn := connectAs(t, os.Getenv(c.env))
			mustRefuse(t, conn, c.role, "42501",
				"SELECT pg_create_logical_replication_slot('intruder', 'pgoutput', true)",
				"CREATE ROLE intruder",
				"CREATE DATABASE intruder",
			)
		})
	}
}

// secrets are the stack's generated passwords and keys (.state/env), each at least 16 characters.
func secrets(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(st.stateDir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if !ok {
			continue
		}
		value = strings.Trim(value, `'"`)
		if strings.HasSuffix(name, "_PASSWORD") || name == "JWT_SECRET" {
			out[name] = value
		} else if u, err := url.Parse(value); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok {
				out[name+" (password)"] = pw
			}
		}
	}
	if len(out) < 5 {
		t.Fatalf("found only %d secrets in %s/env: %v", len(out), st.stateDir, keys(out))
	}
	for name, v := range out {
		if len(v) < 16 {
			t.Fatalf("secret %s is only %d characters: a scan for it would match by chance", name, len(v))
		}
	}
	return out
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestNoSecretInFilesTopicsOrLogs scans every committed file, the logs of the running stack and
// services, and Connect's config topic for the generated passwords: connector configs hold
// ${env:...} references, and nothing logs a password.
func TestNoSecretInFilesTopicsOrLogs(t *testing.T) {
	sec := secrets(t)
	found := func(where string, data []byte) {
		for name, v := range sec {
			if strings.Contains(string(data), v) {
				t.Errorf("%s contains the value of %s", where, name)
			}
		}
	}

	repo := repoDir(t)
	files, err := exec.Command("git", "-C", repo, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	n := 0
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			continue // deleted in the work tree
		}
		found(f, data)
		n++
	}
	// the Kafka users' passwords are among those scanned for (each party's, and the brokers' own)
	for _, name := range []string{"KAFKA_BROKER_PASSWORD", "KAFKA_ADMIN_PASSWORD", "KAFKA_CONNECT_PASSWORD",
		"KAFKA_NOTIFIER_PASSWORD", "KAFKA_ANALYTICS_PASSWORD", "KAFKA_OPERATOR_PASSWORD"} {
		if _, ok := sec[name]; !ok {
			t.Errorf("%s is not in %s/env: the scan cannot look for it", name, st.stateDir)
		}
	}
	// the Connect workers' configs name their Kafka password by reference (${file:...}), never by value
	// (worker 1's, which runs; a second worker's file is rewritten only when it starts)
	for _, f := range []string{filepath.Join(st.stateDir, "conf", "connect.properties")} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		found(f, data)
		if !strings.Contains(string(data), "/kafka.properties:KAFKA_CONNECT_PASSWORD}") {
			t.Errorf("%s does not take the Kafka password from its secrets file (${file:...:KAFKA_CONNECT_PASSWORD})", f)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(st.stateDir, "logs", "*"))
	if len(logs) < 5 {
		t.Fatalf("found only %d logs under %s/logs", len(logs), st.stateDir)
	}
	for _, f := range logs {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		found(f, data)
	}

	// Connect's config topic, read from the beginning: every connector config and task config as
	// the workers stored them (the REST API could hide what the topic holds).
	// read_uncommitted: a secret in an aborted write counts too.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := topicreader.Open(ctx, topicreader.Config{Kafka: st.kafka, Topic: "connect-configs", GroupID: "e2e-secrets-scan",
		Partitions: []int32{0}, Start: topicreader.FromBeginning(), StopAtEnd: true, ReadUncommitted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	configs, err := r.ReadAll(ctx)
	if err != nil {
		t.Fatalf("reading connect-configs: %v", err)
	}
	records, refs := len(configs), 0
	for _, e := range configs {
		found("topic connect-configs", e.Value)
		if strings.Contains(string(e.Value), "${env:DEBEZIUM_DB_PASSWORD}") {
			refs++
		}
	}
	if records == 0 || refs == 0 {
		t.Fatalf("connect-configs: %d records, %d with the ${env:DEBEZIUM_DB_PASSWORD} reference: the scan proved nothing", records, refs)
	}
	t.Logf("scanned %d committed files, %d logs and %d config records for %d secrets", n, len(logs), records, len(sec))
}
