//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/todo"
)

// decodeShared decodes a record read from the shared topic. A record that does not decode is
// logged and skipped (ok false): other tests put hostile records there on purpose, and records
// todo-api writes always decode (TestLifecycleEventsArriveInOrder checks them).
func decodeShared(t *testing.T, m *kafka.Message) (events.Event, bool) {
	t.Helper()
	d, err := st.deser.Deserialize(context.Background(), m.Value)
	if err != nil {
		t.Logf("skipping a record that does not decode (another test's?) at %s[%d]@%d key %q: %v",
			*m.TopicPartition.Topic, m.TopicPartition.Partition, m.TopicPartition.Offset, m.Key, err)
		return nil, false
	}
	return d.Event, true
}

// eventsOf decodes the records of the topic that belong to user, by type.
func eventsOf(t *testing.T, recs []*kafka.Message, user string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range recs {
		ev, ok := decodeShared(t, m)
		if !ok {
			continue
		}
		switch ev := ev.(type) {
		case events.TodoCreated:
			if ev.UserID == user {
				out[events.TypeCreated] = append(out[events.TypeCreated], ev.TodoID)
			}
		case events.TodoCompleted:
			if ev.UserID == user {
				out[events.TypeCompleted] = append(out[events.TypeCompleted], ev.TodoID)
			}
		case events.TodoDeleted:
			if ev.UserID == user {
				out[events.TypeDeleted] = append(out[events.TypeDeleted], ev.TodoID)
			}
		}
	}
	return out
}

// fenceAndDrain creates one more todo for tok, waits for its event, and returns every record the
// reader saw up to the topic's end: everything the test's earlier requests published is in it.
func fenceAndDrain(t *testing.T, reader *topicReader, tok string) (fence todo.Todo, recs []*kafka.Message) {
	t.Helper()
	fence = createTodo(t, tok, "fence")
	recs = reader.readUntil(eventTimeout, withKey(fence.ID.String(), 1))
	return fence, append(recs, reader.drain(eventTimeout)...)
}

func postWithKey(t *testing.T, tok, path, key, body string) apiResponse {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + tok}, "Idempotency-Key": {`"` + key + `"`}}
	var b []byte
	if body != "" {
		h.Set("Content-Type", "application/json")
		b = []byte(body)
	}
	return send(t, "POST", path, h, b)
}

// TestIdempotencyKey: a POST retried with its Idempotency-Key gets the first answer and writes
// nothing: one todo row, one idempotency record and exactly one todos.task.created event on the
// topic (read_committed), also when the retries race; another body with the key is 422.
func TestIdempotencyKey(t *testing.T) {
	reader := newTopicReader(t, events.Topic)
	user := uniqueUser("idem")
	tok := token(t, user)

	key := uuid.NewString()
	first := postWithKey(t, tok, "/v1/todos", key, `{"title":"retried once"}`)
	if first.Status != 201 || first.Header.Get("Idempotency-Replayed") != "" {
		t.Fatalf("first: %d %v %s", first.Status, first.Header, first.Body)
	}
	retry := postWithKey(t, tok, "/v1/todos", key, `{"title":"retried once"}`)
	if retry.Status != 201 || string(retry.Body) != string(first.Body) || retry.Header.Get("Idempotency-Replayed") != "true" ||
		retry.Header.Get("Location") != first.Header.Get("Location") || retry.Header.Get("ETag") != first.Header.Get("ETag") {
		t.Fatalf("retry: %d %v %s; want the first answer replayed", retry.Status, retry.Header, retry.Body)
	}
	if r := postWithKey(t, tok, "/v1/todos", key, `{"title":"something else"}`); r.Status != 422 || r.Code != "idempotency_key_reused" {
		t.Fatalf("same key, other body: %d %s", r.Status, r.Body)
	}
	var created todo.Todo
	if err := json.Unmarshal(first.Body, &created); err != nil {
		t.Fatal(err)
	}

	// Complete with a key: the retry is the first answer, not 409 already_completed.
	path := "/v1/todos/" + created.ID.String() + "/complete"
	ckey := uuid.NewString()
	done := postWithKey(t, tok, path, ckey, "")
	again := postWithKey(t, tok, path, ckey, "")
	if done.Status != 200 || again.Status != 200 || string(again.Body) != string(done.Body) || again.Header.Get("Idempotency-Replayed") != "true" {
		t.Fatalf("complete with a key, twice: %d %s / %d %v %s", done.Status, done.Body, again.Status, again.Header, again.Body)
	}

	// Eight requests with one key at once: one todo; every answer is that todo.
	race := uuid.NewString()
	const n = 8
	answers := make([]apiResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = postWithKey(t, tok, "/v1/todos", race, `{"title":"raced"}`)
		}()
	}
	wg.Wait()
	replayed := 0
	for i, a := range answers {
		if a.Status != 201 || string(a.Body) != string(answers[0].Body) {
			t.Errorf("racing request %d: %d %s; want 201 with %s", i, a.Status, a.Body, answers[0].Body)
		}
		if a.Header.Get("Idempotency-Replayed") == "true" {
			replayed++
		}
	}
	if replayed != n-1 {
		t.Errorf("%d of %d racing answers are replays, want %d", replayed, n, n-1)
	}

	var rows []string
	if err := st.db.Select(&rows, `SELECT title FROM todos WHERE user_id = $1 ORDER BY created_at`, user); err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows, ",") != "retried once,raced" {
		t.Fatalf("todo rows of %s: %q; want one per key", user, rows)
	}
	var keys int
	var ttl float64
	if err := st.db.QueryRow(`SELECT count(*), coalesce(max(extract(epoch FROM expires_at - created_at)), 0) FROM idempotency_keys WHERE user_id = $1`, user).Scan(&keys, &ttl); err != nil {
		t.Fatal(err)
	}
	if keys != 3 || ttl != 24*3600 {
		t.Fatalf("idempotency records of %s: %d living %.0f s; want 3 living 86400 s (IDEMPOTENCY_KEY_TTL's default)", user, keys, ttl)
	}

	fence, recs := fenceAndDrain(t, reader, tok)
	got := eventsOf(t, recs, user)
	var raced todo.Todo
	_ = json.Unmarshal(answers[0].Body, &raced)
	wantCreated := []string{created.ID.String(), raced.ID.String(), fence.ID.String()}
	// Different keys go to different partitions: no order between them.
	slices.Sort(wantCreated)
	slices.Sort(got[events.TypeCreated])
	if fmt.Sprint(got[events.TypeCreated]) != fmt.Sprint(wantCreated) || fmt.Sprint(got[events.TypeCompleted]) != fmt.Sprint([]string{created.ID.String()}) {
		t.Fatalf("events of %s on %s: %v; want created %v and completed [%s], once each", user, events.Topic, got, wantCreated, created.ID)
	}
}

// TestETagAndIfMatch: every todo answer has an ETag from its version; complete and delete with an
// If-Match that does not match answer 412 and change nothing (no row change, no event).
func TestETagAndIfMatch(t *testing.T) {
	reader := newTopicReader(t, events.Topic)
	user := uniqueUser("etag")
	tok := token(t, user)
	td := createTodo(t, tok, "versioned")
	path := "/v1/todos/" + td.ID.String()
	auth := http.Header{"Authorization": {"Bearer " + tok}}
	withIfMatch := func(v string) http.Header { h := auth.Clone(); h.Set("If-Match", v); return h }

	if r := send(t, "GET", path, auth, nil); r.Status != 200 || r.Header.Get("ETag") != `"1"` {
		t.Fatalf("GET: %d ETag %q", r.Status, r.Header.Get("ETag"))
	}
	withIfNoneMatch := func(v string) http.Header { h := auth.Clone(); h.Set("If-None-Match", v); return h }
	if r := send(t, "GET", path, withIfNoneMatch(`"1"`), nil); r.Status != 304 || len(r.Body) != 0 {
		t.Fatalf("GET If-None-Match \"1\": %d %q; want 304 without a body", r.Status, r.Body)
	}
	for _, c := range []struct{ method, path string }{{"DELETE", path}, {"POST", path + "/complete"}} {
		for _, im := range []string{`"bogus"`, `"2"`, `W/"1"`} {
			if r := send(t, c.method, c.path, withIfMatch(im), nil); r.Status != 412 || r.Code != "precondition_failed" {
				t.Errorf("%s %s If-Match %s: %d %s; want 412", c.method, c.path, im, r.Status, r.Body)
			}
		}
	}
	var status string
	var version int
	if err := st.db.QueryRow(`SELECT status, version FROM todos WHERE id = $1`, td.ID).Scan(&status, &version); err != nil || status != "PENDING" || version != 1 {
		t.Fatalf("after refused preconditions: %s version %d (%v); want PENDING 1", status, version, err)
	}
	r := send(t, "POST", path+"/complete", withIfMatch(`"1"`), nil)
	if r.Status != 200 || r.Header.Get("ETag") != `"2"` {
		t.Fatalf("complete If-Match \"1\": %d ETag %q %s", r.Status, r.Header.Get("ETag"), r.Body)
	}
	if r := send(t, "GET", path, withIfNoneMatch(`"1"`), nil); r.Status != 200 || r.Header.Get("ETag") != `"2"` {
		t.Fatalf("GET If-None-Match with the stale ETag: %d ETag %q; want 200 with \"2\"", r.Status, r.Header.Get("ETag"))
	}
	if r := send(t, "DELETE", path, withIfMatch(`"1"`), nil); r.Status != 412 {
		t.Fatalf("delete with the stale ETag: %d", r.Status)
	}
	if r := send(t, "DELETE", path, withIfMatch(`"2"`), nil); r.Status != 204 {
		t.Fatalf("delete If-Match \"2\": %d %s", r.Status, r.Body)
	}
	if r := send(t, "DELETE", path, withIfMatch("*"), nil); r.Status != 404 {
		t.Fatalf("delete a deleted todo If-Match *: %d; want 404", r.Status)
	}

	_, recs := fenceAndDrain(t, reader, tok)
	got := eventsOf(t, recs, user)
	id := td.ID.String()
	if len(got[events.TypeCompleted]) != 1 || got[events.TypeCompleted][0] != id || len(got[events.TypeDeleted]) != 1 || got[events.TypeDeleted][0] != id {
		t.Fatalf("events of %s: %v; want one completed and one deleted for %s", user, got, id)
	}
}

// TestListPages: GET /v1/todos in pages, following next, gives each of the user's todos once, in
// creation order; the status filter holds across pages; bad parameters are 400.
func TestListPages(t *testing.T) {
	user := uniqueUser("pages")
	tok := token(t, user)
	var all, completed []string
	for i := range 7 {
		td := createTodo(t, tok, fmt.Sprintf("page item %d", i))
		all = append(all, td.ID.String())
		if i%3 == 0 {
			if r := call(t, "POST", "/v1/todos/"+td.ID.String()+"/complete", tok, "", nil); r.Status != 200 {
				t.Fatalf("complete: %d", r.Status)
			}
			completed = append(completed, td.ID.String())
		}
	}
	walk := func(first string) (ids []string, pages int) {
		for next := first; next != ""; pages++ {
			r := call(t, "GET", next, tok, "", nil)
			var page struct {
				Todos []todo.Todo
				Next  *string
			}
			if r.Status != 200 || json.Unmarshal(r.Body, &page) != nil {
				t.Fatalf("GET %s: %d %s", next, r.Status, r.Body)
			}
			next = ""
			if page.Next != nil {
				next = *page.Next
				if r.Header.Get("Link") != "<"+next+`>; rel="next"` {
					t.Fatalf("Link %q, next %q", r.Header.Get("Link"), next)
				}
			}
			for _, td := range page.Todos {
				ids = append(ids, td.ID.String())
			}
			if pages > 10 {
				t.Fatalf("more than 10 pages of 7 todos")
			}
		}
		return ids, pages
	}
	if ids, pages := walk("/v1/todos?limit=3"); fmt.Sprint(ids) != fmt.Sprint(all) || pages != 3 {
		t.Fatalf("limit=3: %d pages %v; want 3 pages %v", pages, ids, all)
	}
	if ids, pages := walk("/v1/todos?limit=2&status=COMPLETED"); fmt.Sprint(ids) != fmt.Sprint(completed) || pages != 2 {
		t.Fatalf("COMPLETED, limit=2: %d pages %v; want 2 pages %v", pages, ids, completed)
	}
	for _, q := range []string{"limit=0", "limit=501", "status=DONE", "sort=title", "limit=1&limit=2", "cursor=xyz"} {
		if r := call(t, "GET", "/v1/todos?"+q, tok, "", nil); r.Status != 400 || r.Code != "invalid_input" {
			t.Errorf("?%s: %d %s; want 400 invalid_input", q, r.Status, r.Body)
		}
	}
}

// TestOpenAPIDocumentServed: todo-api serves the document in the repository, without a token.
func TestOpenAPIDocumentServed(t *testing.T) {
	want, err := os.ReadFile("../services/todo-api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := send(t, "GET", "/openapi.yaml", http.Header{}, nil)
	if r.Status != 200 || string(r.Body) != string(want) {
		t.Fatalf("GET /openapi.yaml: %d %.60s", r.Status, r.Body)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/yaml") {
		t.Fatalf("Content-Type %q", r.Header.Get("Content-Type"))
	}
}

// BenchmarkCreateTodoIdempotent is BenchmarkCreateTodo with a new Idempotency-Key on every
// request: the cost of the one more statement in the transaction (compare the two).
func BenchmarkCreateTodoIdempotent(b *testing.B) {
	tok := token(b, uniqueUser("bench-idem"))
	body := []byte(`{"title":"benchmark todo"}`)
	b.ResetTimer()
	for b.Loop() {
		h := http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}, "Idempotency-Key": {uuid.NewString()}}
		if r := send(b, "POST", "/v1/todos", h, body); r.Status != 201 {
			b.Fatalf("create: %d %s", r.Status, r.Body)
		}
	}
}
