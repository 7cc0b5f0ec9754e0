//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/consumertest"
	"github.com/todocdc/pipeline/internal/todo"
	"github.com/todocdc/pipeline/internal/topicreader"
)

// TestPythonConsumerAppliesEachEventOnce runs examples/python-consumer, a consumer written only
// from the contract (contracts/asyncapi.yaml): confluent-kafka's AvroDeserializer against
// Apicurio's ccompat API, read_committed, offsets committed after the SQLite transaction. Todos
// made through todo-api arrive once each with their typed fields. Then the group's offsets are
// rewound to where they started (an operator's reset) and the consumer is started again: every
// event comes again and is skipped as a duplicate, the projection is unchanged, and a new event is
// applied. The consumer has its own group, so notifier and analytics are untouched.
func TestPythonConsumerAppliesEachEventOnce(t *testing.T) {
	root := repoDir(t)
	venv := installPythonConsumer(t, root)
	group := pythonGroup(t)
	start := endOffsets(t, events.Topic)
	setGroupOffsets(t, group, events.Topic, start)
	db := filepath.Join(t.TempDir(), "todos.sqlite")

	user := uniqueUser("python")
	tok := token(t, user)
	p := startPythonConsumer(t, root, venv, group, db)

	// Three todos: the default priority, HIGH and LOW; the first two completed, the last two deleted.
	var todos []todo.Todo
	for i, prio := range []string{"", "HIGH", "LOW"} {
		req := map[string]string{"title": fmt.Sprintf("python %d %s", i, user)}
		if prio != "" {
			req["priority"] = prio
		}
		todos = append(todos, createTodoWith(t, tok, req))
	}
	completedAt := map[string]time.Time{}
	for _, td := range todos[:2] {
		r := call(t, "POST", "/v1/todos/"+td.ID.String()+"/complete", tok, "", nil)
		var c todo.Todo
		if r.Status != 200 || json.Unmarshal(r.Body, &c) != nil || c.CompletedAt == nil {
			t.Fatalf("complete %s: %d %s", td.ID, r.Status, r.Body)
		}
		completedAt[td.ID.String()] = *c.CompletedAt
	}
	deletedAfter := time.Now().Add(-time.Millisecond)
	for _, td := range todos[1:] {
		if r := call(t, "DELETE", "/v1/todos/"+td.ID.String(), tok, "", nil); r.Status != 204 {
			t.Fatalf("delete %s: %d %s", td.ID, r.Status, r.Body)
		}
	}
	deletedBefore := time.Now().Add(time.Millisecond)

	keys := map[string]bool{}
	for _, td := range todos {
		keys[td.ID.String()] = true
	}
	wantTypes := map[string]int{events.TypeCreated: 3, events.TypeCompleted: 2, events.TypeDeleted: 2}
	p.waitFor(t, "7 events of the test's todos applied", func(ls []pyLog) bool {
		return len(ofKeys(ls, "applied", keys)) >= 7
	})
	p.stop(t)

	applied := ofKeys(p.lines(), "applied", keys)
	gotTypes := map[string]int{}
	ids := map[string]bool{}
	for _, l := range applied {
		gotTypes[l.CEType]++
		if ids[l.CEID] {
			t.Errorf("ce_id %s applied twice", l.CEID)
		}
		ids[l.CEID] = true
	}
	if fmt.Sprint(gotTypes) != fmt.Sprint(wantTypes) {
		t.Errorf("applied event types %v, want %v", gotTypes, wantTypes)
	}
	// Per-key order: each todo's events were applied in the order they were written.
	order := map[string][]string{}
	for _, l := range applied {
		order[l.Key] = append(order[l.Key], strings.TrimPrefix(l.CEType, "todos.task."))
	}
	for i, want := range []string{"created completed", "created completed deleted", "created deleted"} {
		if got := strings.Join(order[todos[i].ID.String()], " "); got != want {
			t.Errorf("todo %d: events applied in the order %q, want %q", i, got, want)
		}
	}
	if dl := ofKeys(p.lines(), "dead-lettered", keys); len(dl) > 0 {
		t.Errorf("dead-lettered: %+v", dl)
	}
	// The typed fields as the log shows them (decoded with the reader schema), for the first todo.
	first := todos[0]
	for _, l := range applied {
		if l.Key == first.ID.String() && l.CEType == events.TypeCreated {
			want := map[string]any{"todo_id": first.ID.String(), "user_id": user, "title": first.Title,
				"status": "PENDING", "priority": "NORMAL"}
			for k, v := range want {
				if l.Event[k] != v {
					t.Errorf("logged TodoCreated field %s = %v, want %v", k, l.Event[k], v)
				}
			}
			if ts, _ := l.Event["created_at"].(string); !sameInstant(ts, first.CreatedAt) {
				t.Errorf("logged created_at %v, want %s", l.Event["created_at"], first.CreatedAt)
			}
		}
	}

	d := dumpPythonConsumer(t, root, venv, db)
	checkProjection := func(d pyDump) {
		t.Helper()
		rows := map[string]pyTodo{}
		for _, r := range d.Todos {
			rows[r.TodoID] = r
		}
		for i, td := range todos {
			id := td.ID.String()
			r, ok := rows[id]
			if !ok {
				t.Errorf("todo %s is not in the projection", id)
				continue
			}
			wantPrio := []string{"NORMAL", "HIGH", "LOW"}[i]
			wantStatus := map[bool]string{true: "COMPLETED", false: "PENDING"}[i < 2]
			if r.UserID != user || r.Title != td.Title || r.Priority != wantPrio || r.Status != wantStatus ||
				r.CreatedAtMs != td.CreatedAt.UnixMilli() {
				t.Errorf("projection of todo %d = %+v; want user %s, title %q, priority %s, status %s, created_at %d",
					i, r, user, td.Title, wantPrio, wantStatus, td.CreatedAt.UnixMilli())
			}
			if c, ok := completedAt[id]; ok != (r.CompletedAtMs != nil) || (ok && *r.CompletedAtMs != c.UnixMilli()) {
				t.Errorf("todo %d completed_at_ms = %v, want %v", i, r.CompletedAtMs, c.UnixMilli())
			}
			deleted := i > 0
			if deleted != (r.DeletedAtMs != nil) ||
				(deleted && (*r.DeletedAtMs < deletedAfter.UnixMilli() || *r.DeletedAtMs > deletedBefore.UnixMilli())) {
				t.Errorf("todo %d deleted_at_ms = %v, want deleted %v between %d and %d", i, r.DeletedAtMs, deleted,
					deletedAfter.UnixMilli(), deletedBefore.UnixMilli())
			}
		}
	}
	checkProjection(d)
	if got := processedFor(d, keys); len(got) != 7 {
		t.Errorf("processed_events has %d rows for the test's todos, want 7: %+v", len(got), got)
	}

	// Restart from the same offsets: the 7 events are delivered again and skipped; a new one is applied.
	setGroupOffsets(t, group, events.Topic, start)
	p2 := startPythonConsumer(t, root, venv, group, db)
	extra := createTodo(t, tok, "python after restart "+user)
	keys[extra.ID.String()] = true
	p2.waitFor(t, "the 7 events skipped as duplicates and the new one applied", func(ls []pyLog) bool {
		return len(ofKeys(ls, "duplicate: already applied", keys)) >= 7 && len(ofKeys(ls, "applied", keys)) >= 1
	})
	p2.stop(t)
	dups := ofKeys(p2.lines(), "duplicate: already applied", keys)
	for _, l := range dups {
		if !ids[l.CEID] {
			t.Errorf("duplicate of ce_id %s, which the first run did not apply", l.CEID)
		}
	}
	if a := ofKeys(p2.lines(), "applied", keys); len(a) != 1 || a[0].Key != extra.ID.String() || a[0].CEType != events.TypeCreated {
		t.Errorf("after the restart, applied %+v; want only the new todo's created event", a)
	}
	d2 := dumpPythonConsumer(t, root, venv, db)
	checkProjection(d2)
	if got := processedFor(d2, keys); len(got) != 8 {
		t.Errorf("processed_events has %d rows for the test's todos after the restart, want 8", len(got))
	}
}

// pyLog is one JSON log line of the Python consumer.
type pyLog struct {
	Msg       string         `json:"msg"`
	Level     string         `json:"level"`
	CEType    string         `json:"ce_type"`
	CEID      string         `json:"ce_id"`
	Key       string         `json:"key"`
	Partition int32          `json:"partition"`
	Offset    int64          `json:"offset"`
	Error     string         `json:"error"`
	Event     map[string]any `json:"event"`
}

type pyTodo struct {
	TodoID        string `json:"todo_id"`
	UserID        string `json:"user_id"`
	Title         string `json:"title"`
	Status        string `json:"status"`
	Priority      string `json:"priority"`
	CreatedAtMs   int64  `json:"created_at_ms"`
	CompletedAtMs *int64 `json:"completed_at_ms"`
	DeletedAtMs   *int64 `json:"deleted_at_ms"`
}

type pyProcessed struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	TodoID    string `json:"todo_id"`
}

// pyDump is the output of `consumer.py dump`.
type pyDump struct {
	Todos       []pyTodo         `json:"todos"`
	Processed   []pyProcessed    `json:"processed_events"`
	DeadLetters []map[string]any `json:"dead_letters"`
}

func ofKeys(ls []pyLog, msg string, keys map[string]bool) []pyLog {
	var out []pyLog
	for _, l := range ls {
		if l.Msg == msg && keys[l.Key] {
			out = append(out, l)
		}
	}
	return out
}

func processedFor(d pyDump, keys map[string]bool) []pyProcessed {
	var out []pyProcessed
	for _, p := range d.Processed {
		if keys[p.TodoID] {
			out = append(out, p)
		}
	}
	return out
}

// installPythonConsumer runs the example's install.sh (a no-op once its virtualenv is there).
func installPythonConsumer(t *testing.T, root string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(root, "examples", "python-consumer", "install.sh"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("examples/python-consumer/install.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// pyConsumer is a running `consumer.py run`, its log lines collected as they come.
type pyConsumer struct {
	cmd  *exec.Cmd
	done chan error
	mu   sync.Mutex
	logs []pyLog
	raw  bytes.Buffer
}

func pythonEnv(group, db string, extra ...string) []string {
	return append(append(os.Environ(), "GROUP_ID="+group, "DB_PATH="+db,
		"KAFKA_BOOTSTRAP_SERVERS="+st.bootstrap, "SCHEMA_REGISTRY_URL="+st.registryURL,
		// groups and topics of the test's own: the admin principal (python-example reads only its group)
		"KAFKA_SASL_USERNAME="+st.kafka.Username, "KAFKA_SASL_PASSWORD="+st.kafka.Password), extra...)
}

// startPythonConsumer starts `consumer.py run` in group with its SQLite file at db; extra are
// more environment variables (NAME=value).
func startPythonConsumer(t *testing.T, root, venv, group, db string, extra ...string) *pyConsumer {
	t.Helper()
	cmd := exec.Command(filepath.Join(venv, "bin", "python"), filepath.Join(root, "examples", "python-consumer", "consumer.py"), "run")
	cmd.Env = pythonEnv(group, db, extra...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the Python consumer: %v", err)
	}
	p := &pyConsumer{cmd: cmd, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			var l pyLog
			p.mu.Lock()
			p.raw.Write(sc.Bytes())
			p.raw.WriteByte('\n')
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				p.logs = append(p.logs, l)
			}
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // os.ErrProcessDone once it has exited
	return p
}

func (p *pyConsumer) lines() []pyLog {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pyLog(nil), p.logs...)
}

func (p *pyConsumer) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// waitFor waits until cond holds for the log lines so far; fails after eventTimeout or if the
// consumer exits first.
func (p *pyConsumer) waitFor(t *testing.T, what string, cond func([]pyLog) bool) {
	t.Helper()
	deadline := time.After(eventTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond(p.lines()) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("the Python consumer exited (%v) before %s; its log:\n%s", err, what, p.output())
		case <-deadline:
			t.Fatalf("not seen within %s: %s; the Python consumer's log:\n%s", eventTimeout, what, p.output())
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM and expects exit status 0 within 20 s (it leaves the group on the way out).
func (p *pyConsumer) stop(t *testing.T) {
	t.Helper()
	stopProcess(t, "the Python consumer", p.cmd, p.done, p.output)
}

func dumpPythonConsumer(t *testing.T, root, venv, db string) pyDump {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(venv, "bin", "python"), filepath.Join(root, "examples", "python-consumer", "consumer.py"), "dump")
	cmd.Env = pythonEnv("unused", db)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("consumer.py dump: %v\n%s", err, stderr.String())
	}
	var d pyDump
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("consumer.py dump printed no JSON: %v\n%s", err, out)
	}
	return d
}

// endOffsets returns the high watermark of each partition of topic.
func endOffsets(t *testing.T, topic string) []kafka.TopicPartition {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := topicreader.Open(ctx, topicreader.Config{Kafka: st.kafka, Topic: topic, GroupID: "e2e-watermarks"})
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	defer r.Close()
	var parts []kafka.TopicPartition
	for id, high := range r.Starts() {
		parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: id, Offset: kafka.Offset(high)})
	}
	return parts
}

// setGroupOffsets commits offsets for group, which must have no active member: what
// `kafka-consumer-groups --reset-offsets` does.
func setGroupOffsets(t *testing.T, group, topic string, parts []kafka.TopicPartition) {
	t.Helper()
	admin, err := kafka.NewAdminClient(st.kafka.ConfigMap(nil))
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.AlterConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: parts}})
	if err != nil {
		t.Fatalf("set offsets of group %s on %s: %v", group, topic, err)
	}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, p := range g.Partitions {
			if p.Error != nil {
				t.Fatalf("set offset of group %s on %s[%d]: %v", group, topic, p.Partition, p.Error)
			}
		}
	}
}

// pythonGroup is a new consumer group name for the Python consumer, deleted when the test ends.
// It is registered before the consumer starts, so it runs after the consumer's own cleanup (which
// kills it if the test stopped early); a group whose killed member has not timed out yet cannot
// be deleted, and is logged.
func pythonGroup(t *testing.T) string {
	group := "python-example-e2e-" + uuid.NewString()[:8]
	t.Cleanup(func() { deleteGroup(t, group) })
	return group
}

func deleteGroup(t *testing.T, group string) {
	admin, err := kafka.NewAdminClient(st.kafka.ConfigMap(nil))
	if err != nil {
		t.Logf("kafka admin: %v", err)
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := admin.DeleteConsumerGroups(ctx, []string{group})
	if err == nil && len(res.ConsumerGroupResults) == 1 && res.ConsumerGroupResults[0].Error.Code() != kafka.ErrNoError {
		err = res.ConsumerGroupResults[0].Error
	}
	if err != nil {
		t.Logf("delete consumer group %s: %v", group, err)
	}
}

// TestPythonConsumerDeadLettersBadRecordsAndGoesOn feeds the Python consumer, on a topic of the
// test's own, every kind of record it cannot apply: not the wire format, an unknown schema id, a
// body cut short, no ce_id, a ce_type whose record is not the writer's; and one it has no handler
// for. Each bad one is recorded in dead_letters once, with its error, and nothing else is written
// for it; the unknown type is skipped; a valid record in an aborted Kafka transaction is never
// read (read_committed); the valid record behind them is applied, its duplicate skipped; the
// process does not stop until told to (exit 0).
func TestPythonConsumerDeadLettersBadRecordsAndGoesOn(t *testing.T) {
	root := repoDir(t)
	venv := installPythonConsumer(t, root)
	env := consumertest.LoadEnv(t)
	topic := consumertest.Topic(t, env, 1)
	ser := consumertest.Serializer(t, env)

	ev := events.TodoCreated{TodoID: uuid.NewString(), UserID: uniqueUser("python-bad"), Title: "valid after the bad ones",
		Status: events.StatusPending, CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Priority: events.PriorityHigh}
	valid := consumertest.Encode(t, ser, ev)
	rec := func(value []byte, edit func(m *kafka.Message)) *kafka.Message {
		m := consumertest.Record(topic, uuid.NewString(), ev, value)
		if edit != nil {
			edit(m)
		}
		return m
	}
	setHeader := func(name, value string) func(m *kafka.Message) {
		return func(m *kafka.Message) {
			for i := range m.Headers {
				if m.Headers[i].Key == name {
					m.Headers[i].Value = []byte(value)
				}
			}
		}
	}
	dropHeader := func(name string) func(m *kafka.Message) {
		return func(m *kafka.Message) {
			m.Headers = slices.DeleteFunc(m.Headers, func(h kafka.Header) bool { return h.Key == name })
		}
	}
	good := rec(valid, nil)
	bad := []struct {
		m       *kafka.Message
		wantErr string // in the dead letter's error; "" for a record that is skipped, not dead-lettered
	}{
		{rec([]byte("not avro at all"), nil), "not the Confluent wire format"},
		{rec(consumertest.UnknownSchemaID(valid[5:]), nil), "writer schema"},
		{rec(valid[:len(valid)-4], nil), "decode todos.task.created"},
		{rec(valid, dropHeader(events.HeaderID)), "no ce_id header"},
		{rec(valid, setHeader(events.HeaderType, events.TypeDeleted)), "the writer schema is com.todos.events.TodoCreated"},
		{rec(valid, setHeader(events.HeaderType, "todos.task.archived")), ""},
	}
	var ms []*kafka.Message
	for _, b := range bad {
		ms = append(ms, b.m)
	}
	consumertest.Publish(t, consumertest.Producer(t, env), ms...)
	// A valid event of another todo in a Kafka transaction that is aborted: a read_committed
	// reader never sees it (a read_uncommitted one would apply it).
	aborted := events.TodoCreated{TodoID: uuid.NewString(), UserID: ev.UserID, Title: "aborted", Status: events.StatusPending,
		CreatedAt: ev.CreatedAt, Priority: events.PriorityNormal}
	produceAborted(t, consumertest.Record(topic, uuid.NewString(), aborted, consumertest.Encode(t, ser, aborted)))
	dup := *good
	consumertest.Publish(t, consumertest.Producer(t, env), good, &dup)

	db := filepath.Join(t.TempDir(), "todos.sqlite")
	p := startPythonConsumer(t, root, venv, pythonGroup(t), db, "TOPIC="+topic)
	keys := map[string]bool{ev.TodoID: true}
	p.waitFor(t, "the valid record applied and its duplicate skipped", func(ls []pyLog) bool {
		return len(ofKeys(ls, "applied", keys)) == 1 && len(ofKeys(ls, "duplicate: already applied", keys)) == 1
	})
	p.stop(t)

	d := dumpPythonConsumer(t, root, venv, db)
	byOffset := map[int64]string{}
	for _, dl := range d.DeadLetters {
		off, _ := dl["offset"].(float64)
		byOffset[int64(off)], _ = dl["error"].(string)
	}
	t.Logf("dead letters by offset: %v", byOffset)
	for off, b := range bad {
		got, ok := byOffset[int64(off)]
		switch {
		case b.wantErr == "" && ok:
			t.Errorf("offset %d (no handler for its type) was dead-lettered: %s", off, got)
		case b.wantErr != "" && !ok:
			t.Errorf("offset %d was not dead-lettered (want an error with %q); the log:\n%s", off, b.wantErr, p.output())
		case b.wantErr != "" && !strings.Contains(got, b.wantErr):
			t.Errorf("offset %d dead-lettered with %q, want it to say %q", off, got, b.wantErr)
		}
	}
	if len(d.DeadLetters) != 5 {
		t.Errorf("%d dead letters, want 5: %v", len(d.DeadLetters), d.DeadLetters)
	}
	if len(ofKeys(p.lines(), "skipped: no handler for this type", keys)) != 1 {
		t.Errorf("the record of type todos.task.archived was not logged as skipped; the log:\n%s", p.output())
	}
	for _, l := range p.lines() {
		if l.Key == aborted.TodoID {
			t.Errorf("the record of the aborted transaction was read: %+v", l)
		}
	}
	if len(d.Processed) != 1 || len(d.Todos) != 1 {
		t.Fatalf("processed_events %v and todos %v: want the valid event only", d.Processed, d.Todos)
	}
	if r := d.Todos[0]; r.TodoID != ev.TodoID || r.Title != ev.Title || r.Priority != "HIGH" || r.CreatedAtMs != ev.CreatedAt.UnixMilli() {
		t.Errorf("projection %+v, want %+v", r, ev)
	}
}

// TestPythonConsumerWaitsOutAnUnreachableRegistry: with the registry unreachable (the consumer
// pointed at a closed port, so the shared registry stays up for everyone else), a valid record is
// retried in place with backoff, never dead-lettered, its offset not committed; SIGTERM ends the
// wait at once (exit 0). Started again with the registry's real address, the same group reads the
// record again and applies it once.
func TestPythonConsumerWaitsOutAnUnreachableRegistry(t *testing.T) {
	root := repoDir(t)
	venv := installPythonConsumer(t, root)
	env := consumertest.LoadEnv(t)
	topic := consumertest.Topic(t, env, 1)
	ev := events.TodoCreated{TodoID: uuid.NewString(), UserID: uniqueUser("python-registry"), Title: "waits for the registry",
		Status: events.StatusPending, CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Priority: events.PriorityLow}
	consumertest.Publish(t, consumertest.Producer(t, env),
		consumertest.Record(topic, uuid.NewString(), ev, consumertest.Encode(t, consumertest.Serializer(t, env), ev)))

	closed := closedPort(t)
	group := pythonGroup(t)
	db := filepath.Join(t.TempDir(), "todos.sqlite")
	p := startPythonConsumer(t, root, venv, group, db, "TOPIC="+topic, "SCHEMA_REGISTRY_URL=http://"+closed)
	p.waitFor(t, "3 transient failures logged", func(ls []pyLog) bool {
		n := 0
		for _, l := range ls {
			if l.Msg == "transient failure, retrying" {
				n++
			}
		}
		return n >= 3
	})
	stopAt := time.Now()
	p.stop(t)
	if d := time.Since(stopAt); d > 5*time.Second {
		t.Errorf("the consumer took %s to stop during a backoff", d)
	}
	d := dumpPythonConsumer(t, root, venv, db)
	if len(d.DeadLetters) != 0 || len(d.Processed) != 0 {
		t.Fatalf("with the registry unreachable: dead letters %v, processed %v; want neither", d.DeadLetters, d.Processed)
	}

	p2 := startPythonConsumer(t, root, venv, group, db, "TOPIC="+topic)
	keys := map[string]bool{ev.TodoID: true}
	p2.waitFor(t, "the record applied once the registry answers", func(ls []pyLog) bool {
		return len(ofKeys(ls, "applied", keys)) == 1
	})
	p2.stop(t)
	if d := dumpPythonConsumer(t, root, venv, db); len(d.Processed) != 1 || len(d.DeadLetters) != 0 {
		t.Errorf("after the registry came back: processed %v, dead letters %v; want the one event applied", d.Processed, d.DeadLetters)
	}
}

// produceAborted writes m in a Kafka transaction, flushed to the broker, then aborts it.
func produceAborted(t *testing.T, m *kafka.Message) {
	t.Helper()
	p, err := kafka.NewProducer(st.kafka.ConfigMap(kafka.ConfigMap{"transactional.id": "e2e-python-" + uuid.NewString()}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatalf("init transactions: %v", err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	delivered := make(chan kafka.Event, 1)
	if err := p.Produce(m, delivered); err != nil {
		t.Fatalf("produce in a transaction: %v", err)
	}
	select {
	case e := <-delivered:
		if m, ok := e.(*kafka.Message); !ok || m.TopicPartition.Error != nil {
			t.Fatalf("the transaction's record was not written: %v", e)
		}
	case <-ctx.Done():
		t.Fatal("the transaction's record was not acknowledged within 30 s")
	}
	if err := p.AbortTransaction(ctx); err != nil {
		t.Fatalf("abort the transaction: %v", err)
	}
}

// closedPort is a loopback address nothing listens on (a port the kernel gave out and took back).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
