//go:build e2e

package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/todo"
)

const eventTimeout = 60 * time.Second

func uniqueUser(prefix string) string { return fmt.Sprintf("%s-%s", prefix, uuid.NewString()[:8]) }

func createTodo(t *testing.T, tok, title string) todo.Todo {
	t.Helper()
	return createTodoWith(t, tok, map[string]string{"title": title})
}

func createTodoWith(t *testing.T, tok string, req map[string]string) todo.Todo {
	t.Helper()
	body, _ := json.Marshal(req)
	r := call(t, "POST", "/v1/todos", tok, "application/json", body)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var td todo.Todo
	if err := json.Unmarshal(r.Body, &td); err != nil {
		t.Fatal(err)
	}
	return td
}

func withKey(key string, n int) func([]*kafka.Message) bool {
	return func(seen []*kafka.Message) bool {
		c := 0
		for _, m := range seen {
			if string(m.Key) == key {
				c++
			}
		}
		return c >= n
	}
}

func keyed(ms []*kafka.Message, key string) []*kafka.Message {
	var out []*kafka.Message
	for _, m := range ms {
		if string(m.Key) == key {
			out = append(out, m)
		}
	}
	return out
}

// registeredID asks the registry which id the subject's latest version has.
func registeredID(t *testing.T, subject string) int {
	t.Helper()
	var v struct{ ID int }
	if err := getJSON(context.Background(), st.registryURL+"/subjects/"+subject+"/versions/latest", &v); err != nil {
		t.Fatalf("registry subject %s: %v", subject, err)
	}
	return v.ID
}

// TestLifecycleEventsArriveInOrder drives one todo through create, complete and delete over HTTP and
// checks the three records on todos.task.events: order, key, CloudEvents headers, a registered
// schema id in the wire format, and typed events equal to what was written.
func TestLifecycleEventsArriveInOrder(t *testing.T) {
	reader := newTopicReader(t, events.Topic)
	user := uniqueUser("lifecycle")
	tok := token(t, user)

	created := createTodoWith(t, tok, map[string]string{"title": "Buy milk " + user, "priority": "HIGH"})
	if created.Priority != events.PriorityHigh {
		t.Fatalf("created todo has priority %q, want HIGH", created.Priority)
	}
	path := "/v1/todos/" + created.ID.String()
	r := call(t, "POST", path+"/complete", tok, "", nil)
	if r.Status != 200 {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	var completed todo.Todo
	if err := json.Unmarshal(r.Body, &completed); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "DELETE", path, tok, "", nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	deletedBefore := time.Now()

	key := created.ID.String()
	recs := keyed(reader.readUntil(eventTimeout, withKey(key, 3)), key)
	if len(recs) != 3 {
		t.Fatalf("want 3 records for %s, got %d: %s", key, len(recs), describe(recs))
	}
	wantTypes := []string{events.TypeCreated, events.TypeCompleted, events.TypeDeleted}
	ids := map[string]bool{}
	for i, m := range recs {
		if i > 0 && (m.TopicPartition.Partition != recs[0].TopicPartition.Partition || m.TopicPartition.Offset <= recs[i-1].TopicPartition.Offset) {
			t.Fatalf("records out of order: %s", describe(recs))
		}
		checkHeaders(t, m, wantTypes[i])
		id, _ := header(m, events.HeaderID)
		if ids[id] {
			t.Fatalf("ce_id %s repeated", id)
		}
		ids[id] = true
	}

	decoded := make([]events.Event, 3)
	for i, m := range recs {
		if len(m.Value) < 5 || m.Value[0] != 0 {
			t.Fatalf("record %d is not in the Confluent wire format: % x", i, m.Value[:min(8, len(m.Value))])
		}
		d, err := st.deser.Deserialize(context.Background(), m.Value)
		if err != nil {
			t.Fatalf("decode record %d: %v", i, err)
		}
		schemaID := int(binary.BigEndian.Uint32(m.Value[1:5]))
		if d.SchemaID != schemaID {
			t.Fatalf("decoded schema id %d, wire id %d", d.SchemaID, schemaID)
		}
		if want := registeredID(t, events.Subject(events.Topic, d.Event.RecordName())); schemaID != want {
			t.Fatalf("record %d carries schema id %d; the registry has %d for %s", i, schemaID, want, d.Event.RecordName())
		}
		decoded[i] = d.Event
	}

	wantCreated := events.TodoCreated{TodoID: key, UserID: user, Title: created.Title, Status: events.StatusPending,
		CreatedAt: created.CreatedAt.UTC(), Priority: events.PriorityHigh}
	if got, ok := decoded[0].(events.TodoCreated); !ok || !equalCreated(got, wantCreated) {
		t.Errorf("created event = %#v, want %#v", decoded[0], wantCreated)
	}
	wantCompleted := events.TodoCompleted{TodoID: key, UserID: user, CompletedAt: completed.CompletedAt.UTC()}
	if got, ok := decoded[1].(events.TodoCompleted); !ok || got.TodoID != wantCompleted.TodoID || got.UserID != user || !got.CompletedAt.Equal(wantCompleted.CompletedAt) {
		t.Errorf("completed event = %#v, want %#v", decoded[1], wantCompleted)
	}
	got, ok := decoded[2].(events.TodoDeleted)
	if !ok || got.TodoID != key || got.UserID != user || got.DeletedAt.Before(completed.CompletedAt.Add(-time.Millisecond)) || got.DeletedAt.After(deletedBefore) {
		t.Errorf("deleted event = %#v, want todo %s of %s deleted between completion and %s", decoded[2], key, user, deletedBefore)
	}
	// ce_time is the event's time.
	if ceTime, _ := header(recs[0], events.HeaderTime); !sameInstant(ceTime, created.CreatedAt) {
		t.Errorf("ce_time %q is not the creation time %s", ceTime, created.CreatedAt)
	}

	t.Run("notifier records one notification for the created event", func(t *testing.T) {
		db, err := sqlx.Open("pgx", os.Getenv("NOTIFIER_DATABASE_URL"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		createdID, _ := header(recs[0], events.HeaderID)
		deadline := time.Now().Add(eventTimeout)
		for {
			var n int
			err := db.Get(&n, `SELECT count(*) FROM notifications WHERE event_id = $1 AND todo_id = $2 AND user_id = $3`, createdID, key, user)
			if err != nil {
				t.Fatalf("notifier database (NOTIFIER_DATABASE_URL): %v", err)
			}
			if n == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("notifier has %d notifications for event %s (todo %s) after %s, want 1", n, createdID, key, eventTimeout)
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
}

func equalCreated(a, b events.TodoCreated) bool {
	return a.TodoID == b.TodoID && a.UserID == b.UserID && a.Title == b.Title && a.Status == b.Status &&
		a.CreatedAt.Equal(b.CreatedAt) && a.Priority == b.Priority
}

func sameInstant(rfc3339 string, want time.Time) bool {
	got, err := time.Parse(time.RFC3339Nano, rfc3339)
	return err == nil && got.Equal(want)
}

func checkHeaders(t *testing.T, m *kafka.Message, wantType string) {
	t.Helper()
	want := map[string]string{
		events.HeaderSpecVersion: events.SpecVersion,
		events.HeaderSource:      events.Source,
		events.HeaderType:        wantType,
		events.HeaderContentType: events.ContentType,
	}
	for k, v := range want {
		if got, ok := header(m, k); !ok || got != v {
			t.Errorf("header %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	if id, _ := header(m, events.HeaderID); uuid.Validate(id) != nil {
		t.Errorf("ce_id %q is not a UUID", id)
	}
	if ts, _ := header(m, events.HeaderTime); func() error { _, err := time.Parse(time.RFC3339Nano, ts); return err }() != nil {
		t.Errorf("ce_time %q is not RFC 3339", ts)
	}
}

// TestBadInputWritesNothing sends each kind of bad request and checks that it is refused with its
// error and leaves no todo row and no event: a valid todo created afterwards (the fence) is the
// only event of this user on the topic, and the only row.
func TestBadInputWritesNothing(t *testing.T) {
	reader := newTopicReader(t, events.Topic)
	user, other := uniqueUser("bad"), uniqueUser("owner")
	tok, otherTok := token(t, user), token(t, other)
	othersTodo := createTodo(t, otherTok, "not yours")
	missing := "/v1/todos/" + uuid.NewString()
	theirs := "/v1/todos/" + othersTodo.ID.String()

	cases := []struct {
		name, method, path, contentType string
		body                            []byte
		status                          int
		code                            string
	}{
		{"malformed JSON", "POST", "/v1/todos", "application/json", []byte(`{"title": "x"`), 400, "malformed_json"},
		{"unknown field", "POST", "/v1/todos", "application/json", []byte(`{"title":"x","user_id":"` + other + `"}`), 400, "malformed_json"},
		{"missing title", "POST", "/v1/todos", "application/json", []byte(`{}`), 400, "invalid_input"},
		{"empty title", "POST", "/v1/todos", "application/json", []byte(`{"title":"   "}`), 400, "invalid_input"},
		{"overlong title", "POST", "/v1/todos", "application/json", []byte(`{"title":"` + strings.Repeat("y", todo.MaxTitleLen+1) + `"}`), 400, "invalid_input"},
		{"unknown priority", "POST", "/v1/todos", "application/json", []byte(`{"title":"x","priority":"URGENT"}`), 400, "invalid_input"},
		{"oversized body", "POST", "/v1/todos", "application/json", []byte(`{"title":"` + strings.Repeat("z", 1<<20) + `"}`), 413, "body_too_large"},
		{"not JSON", "POST", "/v1/todos", "text/plain", []byte(`title=x`), 415, "unsupported_media_type"},
		{"malformed id", "POST", "/v1/todos/123/complete", "", nil, 400, "invalid_input"},
		{"unknown id: get", "GET", missing, "", nil, 404, "not_found"},
		{"unknown id: complete", "POST", missing + "/complete", "", nil, 404, "not_found"},
		{"unknown id: delete", "DELETE", missing, "", nil, 404, "not_found"},
		{"wrong user: complete", "POST", theirs + "/complete", "", nil, 404, "not_found"},
		{"wrong user: delete", "DELETE", theirs, "", nil, 404, "not_found"},
		{"invalid UTF-8", "POST", "/v1/todos", "application/json", []byte("{\"title\":\"a\xffb\"}"), 400, "malformed_json"},
		{"lone surrogate", "POST", "/v1/todos", "application/json", []byte(`{"title":"a\ud800b"}`), 400, "malformed_json"},
		{"duplicate key", "POST", "/v1/todos", "application/json", []byte(`{"title":"x","title":"y"}`), 400, "malformed_json"},
		{"invisible title", "POST", "/v1/todos", "application/json", []byte(`{"title":"\u200b\u202e"}`), 400, "invalid_input"},
		{"no such endpoint", "GET", "/v1/nothing", "", nil, 404, "not_found"},
		{"wrong method", "PUT", "/v1/todos", "application/json", []byte(`{"title":"x"}`), 405, "method_not_allowed"},
	}
	for _, c := range cases {
		r := call(t, c.method, c.path, tok, c.contentType, c.body)
		if r.Status != c.status || r.Code != c.code {
			t.Errorf("%s: got %d %q, want %d %q; body %.200s", c.name, r.Status, r.Code, c.status, c.code, r.Body)
		}
	}
	if r := call(t, "POST", "/v1/todos", "", "application/json", []byte(`{"title":"x"}`)); r.Status != 401 {
		t.Errorf("no token: got %d, want 401", r.Status)
	}
	if r := callAuth(t, "GET", "/v1/todos", "bearer "+tok); r.Status != 200 {
		t.Errorf("lower-case bearer scheme: got %d %s, want 200", r.Status, r.Body)
	}

	var rows, outboxRows int
	if err := st.db.Get(&rows, `SELECT count(*) FROM todos WHERE user_id = $1`, user); err != nil {
		t.Fatal(err)
	}
	if err := st.db.Get(&outboxRows, `SELECT count(*) FROM outbox`); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || outboxRows != 0 {
		t.Fatalf("after bad input: %d todo rows of %s, %d outbox rows; want 0 and 0", rows, user, outboxRows)
	}
	if r := call(t, "GET", theirs, otherTok, "", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"status":"PENDING"`) {
		t.Fatalf("the other user's todo changed: %d %s", r.Status, r.Body)
	}

	fence := createTodo(t, tok, "fence")
	reader.readUntil(eventTimeout, withKey(fence.ID.String(), 1))
	seen := reader.drain(eventTimeout)
	// Only the owner's creation and the fence may have been published.
	for _, m := range seen {
		ev, ok := decodeShared(t, m)
		if !ok {
			continue
		}
		switch ev := ev.(type) {
		case events.TodoCreated:
			if ev.UserID == user && ev.TodoID != fence.ID.String() {
				t.Errorf("bad input published %#v", ev)
			}
		case events.TodoCompleted:
			if ev.UserID == user || ev.TodoID == othersTodo.ID.String() {
				t.Errorf("bad input published %#v", ev)
			}
		case events.TodoDeleted:
			if ev.UserID == user || ev.TodoID == othersTodo.ID.String() {
				t.Errorf("bad input published %#v", ev)
			}
		}
	}
}

// TestUsersAreIsolated checks that one user cannot read, list, complete or delete another's todo.
func TestUsersAreIsolated(t *testing.T) {
	alice, bob := uniqueUser("alice"), uniqueUser("bob")
	aliceTok, bobTok := token(t, alice), token(t, bob)
	td := createTodo(t, aliceTok, "alice's secret plan")
	path := "/v1/todos/" + td.ID.String()

	for _, c := range []struct{ method, path string }{{"GET", path}, {"POST", path + "/complete"}, {"DELETE", path}} {
		if r := call(t, c.method, c.path, bobTok, "", nil); r.Status != 404 {
			t.Errorf("bob %s %s: %d %s, want 404", c.method, c.path, r.Status, r.Body)
		}
	}
	if r := call(t, "GET", "/v1/todos", bobTok, "", nil); r.Status != 200 || strings.Contains(string(r.Body), td.ID.String()) {
		t.Errorf("bob's list: %d %s", r.Status, r.Body)
	}
	r := call(t, "GET", path, aliceTok, "", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"status":"PENDING"`) {
		t.Errorf("alice's todo after bob's attempts: %d %s", r.Status, r.Body)
	}
	if r := call(t, "GET", "/v1/todos", aliceTok, "", nil); !strings.Contains(string(r.Body), td.ID.String()) {
		t.Errorf("alice's list lacks her todo: %s", r.Body)
	}
}
