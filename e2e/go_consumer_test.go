//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/status"
	"github.com/todocdc/pipeline/internal/todo"
)

// exampleGroup is the consumer group of examples/go-consumer.
const exampleGroup = "example-consumer"

// TestGoConsumerExampleAppliesEachEventOnce builds examples/go-consumer, a module of its own that
// imports only the pipeline's public packages (consumer, events), and runs it against the local
// stack in group example-consumer on its own database (role example). Todos made through todo-api
// are applied once each: one applied_events row per event id, the projection's counters, the
// runtime's consumer_processed_events. Then the group is rewound to where it started (an
// operator's reset) and the program started again: every event is delivered again and counted as
// a duplicate by the runtime, nothing is applied twice, and a new event is applied.
func TestGoConsumerExampleAppliesEachEventOnce(t *testing.T) {
	root := repoDir(t)
	bin := buildGoConsumer(t, root)
	dbURL := os.Getenv("EXAMPLE_DATABASE_URL")
	if dbURL == "" {
		t.Fatal("EXAMPLE_DATABASE_URL is not set: run through make e2e (scripts/stack.sh writes it into .state/env)")
	}
	// The group starts at the topics' ends (its committed offsets from an earlier run, or none,
	// would make it read history first: not this test's events).
	start := endOffsets(t, events.Topic)
	retryEnd := endOffsets(t, events.RetryTopic)
	resetExampleGroup(t, append(append([]kafka.TopicPartition(nil), start...), retryEnd...))

	user := uniqueUser("go-example")
	tok := token(t, user)
	p := startGoConsumer(t, bin, dbURL)

	var todos []todo.Todo
	for i, prio := range []string{"", "HIGH", "LOW"} {
		req := map[string]string{"title": fmt.Sprintf("go example %d %s", i, user)}
		if prio != "" {
			req["priority"] = prio
		}
		todos = append(todos, createTodoWith(t, tok, req))
	}
	for _, td := range todos[:2] {
		if r := call(t, "POST", "/v1/todos/"+td.ID.String()+"/complete", tok, "", nil); r.Status != 200 {
			t.Fatalf("complete %s: %d %s", td.ID, r.Status, r.Body)
		}
	}
	for _, td := range todos[1:] {
		if r := call(t, "DELETE", "/v1/todos/"+td.ID.String(), tok, "", nil); r.Status != 204 {
			t.Fatalf("delete %s: %d %s", td.ID, r.Status, r.Body)
		}
	}
	ids := []string{todos[0].ID.String(), todos[1].ID.String(), todos[2].ID.String()}
	db := connectAs(t, dbURL)
	waitApplied(t, p, db, ids, 7)
	p.stop(t)

	// Each event once: 7 rows, 7 distinct event ids, each in the runtime's processed events.
	first := appliedOf(t, db, ids)
	checkGoProjection(t, db, todos, user)
	if n := processedOf(t, db, first); n != 7 {
		t.Errorf("consumer_processed_events of group %s holds %d of the 7 applied events", exampleGroup, n)
	}

	// Redelivery: the group rewound to where it started; a new event besides.
	resetExampleGroup(t, start)
	p2 := startGoConsumer(t, bin, dbURL)
	extra := createTodo(t, tok, "go example after the rewind "+user)
	ids = append(ids, extra.ID.String())
	waitApplied(t, p2, db, ids, 8)
	dups := p2.duplicates(t)
	p2.stop(t)
	if dups < 7 {
		t.Errorf("after the rewind the runtime counted %v duplicates, want at least the test's 7 events", dups)
	}
	after := appliedOf(t, db, ids)
	for id := range first {
		if after[id] != 1 {
			t.Errorf("event %s applied %d times", id, after[id])
		}
	}
	if len(after) != 8 {
		t.Errorf("%d distinct events applied for the test's todos, want 8: %v", len(after), after)
	}
	checkGoProjection(t, db, todos, user)
	if n := processedOf(t, db, after); n != 8 {
		t.Errorf("consumer_processed_events of group %s holds %d of the 8 applied events", exampleGroup, n)
	}
}

// buildGoConsumer builds the example inside its own module (its go.mod, its replace) into a
// temporary folder, as a consumer team would in its repository.
func buildGoConsumer(t *testing.T, root string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "todo-consumer")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(root, "examples", "go-consumer")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in examples/go-consumer: %v\n%s", err, out)
	}
	return bin
}

// resetExampleGroup commits parts as the group's offsets, waiting (up to 30 s) for a member of an
// earlier run that was killed to time out of the group.
func resetExampleGroup(t *testing.T, parts []kafka.TopicPartition) {
	t.Helper()
	admin, err := kafka.NewAdminClient(st.kafka.ConfigMap(nil))
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	defer admin.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		res, err := admin.AlterConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: exampleGroup, Partitions: parts}})
		cancel()
		if err == nil {
			for _, g := range res.ConsumerGroupsTopicPartitions {
				for _, p := range g.Partitions {
					if p.Error != nil && err == nil {
						err = fmt.Errorf("%s[%d]: %w", *p.Topic, p.Partition, p.Error)
					}
				}
			}
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("set the offsets of group %s: %v", exampleGroup, err)
		}
		time.Sleep(time.Second)
	}
}

// goConsumer is a running examples/go-consumer, its output collected.
type goConsumer struct {
	cmd     *exec.Cmd
	metrics string
	done    chan error
	mu      sync.Mutex
	out     bytes.Buffer
}

func (p *goConsumer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *goConsumer) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startGoConsumer starts the example (the stack's settings from the environment, its database at
// dbURL, metrics on a free port) and waits until its /readyz answers: it has joined the group.
func startGoConsumer(t *testing.T, bin, dbURL string) *goConsumer {
	t.Helper()
	p := &goConsumer{metrics: closedPort(t), done: make(chan error, 1)}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "GROUP_ID="+exampleGroup, "METRICS_ADDR="+p.metrics,
		"KAFKA_BOOTSTRAP_SERVERS="+st.bootstrap, "SCHEMA_REGISTRY_URL="+st.registryURL)
	// On a stack with SASL the example acts as its own principal, User:example-consumer (ACLs in
	// topics/acls.yaml), through the runtime's KAFKA_SASL_* variables: not as the tests' admin.
	if pw := os.Getenv("KAFKA_EXAMPLE_CONSUMER_PASSWORD"); pw != "" {
		p.cmd.Env = append(p.cmd.Env, "KAFKA_SASL_USERNAME=example-consumer", "KAFKA_SASL_PASSWORD="+pw)
	} else if st.kafka.SASL() {
		t.Fatal("the stack's Kafka requires SASL but KAFKA_EXAMPLE_CONSUMER_PASSWORD (the example's principal) is not set: run through make e2e")
	}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start examples/go-consumer: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() }) // os.ErrProcessDone once it has exited
	p.waitFor(t, "its /readyz", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return status.Get(ctx, http.DefaultClient, "http://"+p.metrics+"/readyz") == nil
	})
	return p
}

// waitFor waits until cond holds; fails after eventTimeout or if the program exits first.
func (p *goConsumer) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for !cond() {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("examples/go-consumer exited (%v) before %s; its log:\n%s", err, what, p.output())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not seen within %s: %s; the log of examples/go-consumer:\n%s", eventTimeout, what, p.output())
		}
	}
}

// duplicates is the runtime's consumer_events_duplicate_total, all types together.
func (p *goConsumer) duplicates(t *testing.T) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fams, err := status.Scrape(ctx, http.DefaultClient, "http://"+p.metrics+"/metrics")
	if err != nil {
		t.Fatalf("metrics of examples/go-consumer: %v", err)
	}
	var n float64
	fams.Each("consumer_events_duplicate_total", func(_ map[string]string, v float64) { n += v })
	return n
}

// stop sends SIGTERM and expects exit status 0 within 20 s (it leaves the group on the way out).
func (p *goConsumer) stop(t *testing.T) {
	t.Helper()
	stopProcess(t, "examples/go-consumer", p.cmd, p.done, p.output)
}

// stopProcess sends cmd SIGTERM and expects exit status 0 (reported on done) within 20 s; a
// failure shows output, the process's log.
func stopProcess(t *testing.T, name string, cmd *exec.Cmd, done <-chan error, output func() string) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", name, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s exited with %v; its log:\n%s", name, err, output())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop within 20 s of SIGTERM; its log:\n%s", name, output())
	}
}

// waitApplied waits until the example's applied_events holds want rows for the todos ids.
func waitApplied(t *testing.T, p *goConsumer, db *pgx.Conn, ids []string, want int) {
	t.Helper()
	p.waitFor(t, fmt.Sprintf("%d events of the test's todos applied", want), func() bool {
		var n int
		err := db.QueryRow(context.Background(), `SELECT count(*) FROM applied_events WHERE todo_id = ANY($1)`, ids).Scan(&n)
		return err == nil && n >= want
	})
}

// appliedOf counts the applications of each event of the todos ids.
func appliedOf(t *testing.T, db *pgx.Conn, ids []string) map[string]int {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT event_id, count(*) FROM applied_events WHERE todo_id = ANY($1) GROUP BY event_id`, ids)
	if err != nil {
		t.Fatalf("read applied_events: %v", err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for id, n := range out {
		if n != 1 {
			t.Errorf("event %s applied %d times", id, n)
		}
	}
	return out
}

// processedOf counts the events of applied recorded by the runtime for the example's group.
func processedOf(t *testing.T, db *pgx.Conn, applied map[string]int) int {
	t.Helper()
	ids := make([]string, 0, len(applied))
	for id := range applied {
		ids = append(ids, id)
	}
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM consumer_processed_events WHERE group_id = $1 AND event_id = ANY($2)`,
		exampleGroup, ids).Scan(&n); err != nil {
		t.Fatalf("read consumer_processed_events: %v", err)
	}
	return n
}

// checkGoProjection compares the example's todos rows with what the test did: the three todos,
// the first two completed, the last two deleted, each row counting its events once.
func checkGoProjection(t *testing.T, db *pgx.Conn, todos []todo.Todo, user string) {
	t.Helper()
	for i, td := range todos {
		var got struct {
			UserID, Title, Status, Priority string
			CreatedAt                       time.Time
			Completed, Deleted              bool
			Applied                         int
		}
		err := db.QueryRow(context.Background(), `SELECT user_id, title, status, priority, created_at,
            completed_at IS NOT NULL, deleted_at IS NOT NULL, events_applied FROM todos WHERE todo_id = $1`, td.ID.String()).
			Scan(&got.UserID, &got.Title, &got.Status, &got.Priority, &got.CreatedAt, &got.Completed, &got.Deleted, &got.Applied)
		if err != nil {
			t.Errorf("todo %d (%s) in the example's projection: %v", i, td.ID, err)
			continue
		}
		want := got
		want.UserID, want.Title, want.Priority = user, td.Title, []string{"NORMAL", "HIGH", "LOW"}[i]
		want.Status = map[bool]string{true: "COMPLETED", false: "PENDING"}[i < 2]
		want.Completed, want.Deleted, want.Applied = i < 2, i > 0, []int{2, 3, 2}[i]
		if !got.CreatedAt.Equal(td.CreatedAt.Truncate(time.Millisecond)) {
			t.Errorf("todo %d created_at %s, want %s", i, got.CreatedAt, td.CreatedAt)
		}
		if g, w := jsonOf(got), jsonOf(want); g != w {
			t.Errorf("todo %d in the example's projection: %s, want %s", i, g, w)
		}
	}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }
