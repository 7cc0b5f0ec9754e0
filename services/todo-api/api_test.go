package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/todocdc/pipeline/internal/todo"
)

// doWith sends one request with extra headers.
func doWith(h http.Handler, method, path, token, body string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var eb struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Message == "" {
		t.Fatalf("%d body is not a JSON error: %s", rec.Code, rec.Body)
	}
	return eb.Error.Code
}

func TestIdempotencyKeyReplaysAndWritesOnce(t *testing.T) {
	store, h, token := newTestServer(t)
	alice, bob := token("alice"), token("bob")
	key := map[string]string{"Idempotency-Key": `"8e03978e-40d5-43e8-bc93-6894a57f9324"`}

	first := doWith(h, "POST", "/v1/todos", alice, `{"title":"once"}`, key)
	if first.Code != 201 || first.Header().Get("Idempotency-Replayed") != "" {
		t.Fatalf("first: %d %v %s", first.Code, first.Header(), first.Body)
	}
	retry := doWith(h, "POST", "/v1/todos", alice, `{"title":"once"}`, key)
	if retry.Code != 201 || retry.Body.String() != first.Body.String() || retry.Header().Get("Idempotency-Replayed") != "true" ||
		retry.Header().Get("Location") != first.Header().Get("Location") || retry.Header().Get("ETag") != first.Header().Get("ETag") {
		t.Fatalf("retry: %d %v %s; want the first answer replayed (%v %s)", retry.Code, retry.Header(), retry.Body, first.Header(), first.Body)
	}
	if store.writes != 1 {
		t.Fatalf("writes = %d after a retry, want 1", store.writes)
	}
	if rec := doWith(h, "POST", "/v1/todos", alice, `{"title":"another"}`, key); rec.Code != 422 || errorCode(t, rec) != "idempotency_key_reused" {
		t.Fatalf("same key, other body: %d %s; want 422", rec.Code, rec.Body)
	}
	if rec := doWith(h, "POST", "/v1/todos", alice, `{"title":"  "}`, key); rec.Code != 422 {
		t.Fatalf("same key, other (invalid) body: %d %s; want 422", rec.Code, rec.Body)
	}
	// Keys are per user: bob's use of the same key is a request of its own.
	if rec := doWith(h, "POST", "/v1/todos", bob, `{"title":"once"}`, key); rec.Code != 201 || rec.Header().Get("Idempotency-Replayed") != "" {
		t.Fatalf("bob, same key: %d %v", rec.Code, rec.Header())
	}
	if store.writes != 2 {
		t.Fatalf("writes = %d, want 2 (alice's and bob's)", store.writes)
	}
	for _, bad := range []string{`""`, `"unterminated`, `"a" b`, "has space", `"` + strings.Repeat("k", 256) + `"`, "\"caf\u00e9\""} {
		if rec := doWith(h, "POST", "/v1/todos", alice, `{"title":"x"}`, map[string]string{"Idempotency-Key": bad}); rec.Code != 400 || errorCode(t, rec) != "invalid_idempotency_key" {
			t.Errorf("Idempotency-Key %.20q: %d %s; want 400", bad, rec.Code, rec.Body)
		}
	}
	if store.writes != 2 {
		t.Fatalf("refused requests wrote: writes = %d", store.writes)
	}
}

func TestIdempotencyKeyOnComplete(t *testing.T) {
	store, h, token := newTestServer(t)
	alice := token("alice")
	created := doWith(h, "POST", "/v1/todos", alice, `{"title":"x"}`, nil)
	path := created.Header().Get("Location")
	key := map[string]string{"Idempotency-Key": "complete-1"}
	first := doWith(h, "POST", path+"/complete", alice, "", key)
	if first.Code != 200 {
		t.Fatalf("complete: %d %s", first.Code, first.Body)
	}
	// Without the key, completing again is a conflict; with it, the retry gets the first answer.
	retry := doWith(h, "POST", path+"/complete", alice, "", key)
	if retry.Code != 200 || retry.Body.String() != first.Body.String() || retry.Header().Get("Idempotency-Replayed") != "true" {
		t.Fatalf("retry: %d %s", retry.Code, retry.Body)
	}
	if rec := doWith(h, "POST", path+"/complete", alice, "", nil); rec.Code != 409 {
		t.Fatalf("complete again without a key: %d", rec.Code)
	}
	// The same key on another todo is another request.
	other := doWith(h, "POST", "/v1/todos", alice, `{"title":"y"}`, nil).Header().Get("Location")
	if rec := doWith(h, "POST", other+"/complete", alice, "", key); rec.Code != 422 {
		t.Fatalf("same key, other todo: %d %s", rec.Code, rec.Body)
	}
	if store.writes != 3 {
		t.Fatalf("writes = %d, want 3 (two creates, one complete)", store.writes)
	}
}

func TestIdempotencyKeyConcurrentRequestsWriteOnce(t *testing.T) {
	store, h, token := newTestServer(t)
	alice := token("alice")
	key := map[string]string{"Idempotency-Key": "concurrent"}
	const n = 8
	bodies := make([]string, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := doWith(h, "POST", "/v1/todos", alice, `{"title":"race"}`, key)
			codes[i], bodies[i] = rec.Code, rec.Body.String()
		}()
	}
	wg.Wait()
	for i := range n {
		if codes[i] != 201 || bodies[i] != bodies[0] {
			t.Errorf("request %d: %d %s; want 201 with %s", i, codes[i], bodies[i], bodies[0])
		}
	}
	if store.writes != 1 {
		t.Fatalf("%d concurrent requests with one key wrote %d todos, want 1", n, store.writes)
	}
}

func TestIdempotencyKeyExpires(t *testing.T) {
	srv, store, token := newTestAPI(t)
	now := time.Now()
	srv.now = func() time.Time { return now }
	h, alice := srv.routes(), token("alice")
	key := map[string]string{"Idempotency-Key": "k"}
	if rec := doWith(h, "POST", "/v1/todos", alice, `{"title":"x"}`, key); rec.Code != 201 {
		t.Fatal(rec.Code)
	}
	now = now.Add(srv.keyTTL - time.Second)
	if rec := doWith(h, "POST", "/v1/todos", alice, `{"title":"x"}`, key); rec.Header().Get("Idempotency-Replayed") != "true" {
		t.Fatalf("retry before the key expires: %d %v, want a replay", rec.Code, rec.Header())
	}
	now = now.Add(time.Second)
	rec := doWith(h, "POST", "/v1/todos", alice, `{"title":"other"}`, key)
	if rec.Code != 201 || rec.Header().Get("Idempotency-Replayed") != "" || store.writes != 2 {
		t.Fatalf("expired key reused: %d %v, writes %d; want a new todo", rec.Code, rec.Header(), store.writes)
	}
}

func TestETagAndIfMatch(t *testing.T) {
	store, h, token := newTestServer(t)
	alice := token("alice")
	created := doWith(h, "POST", "/v1/todos", alice, `{"title":"x"}`, nil)
	path := created.Header().Get("Location")
	if got := created.Header().Get("ETag"); got != `"1"` {
		t.Fatalf("create ETag = %q, want \"1\"", got)
	}
	if got := doWith(h, "GET", path, alice, "", nil).Header().Get("ETag"); got != `"1"` {
		t.Fatalf("get ETag = %q", got)
	}
	for inm, want := range map[string]int{`"1"`: 304, `W/"1"`: 304, `"0", "1"`: 304, `*`: 304, `"2"`: 200} {
		rec := doWith(h, "GET", path, alice, "", map[string]string{"If-None-Match": inm})
		if rec.Code != want || rec.Header().Get("ETag") != `"1"` || (want == 304 && rec.Body.Len() != 0) {
			t.Errorf("GET If-None-Match %s: %d ETag %q body %q; want %d", inm, rec.Code, rec.Header().Get("ETag"), rec.Body, want)
		}
	}
	if rec := doWith(h, "GET", path, alice, "", map[string]string{"If-None-Match": "1"}); rec.Code != 400 {
		t.Errorf("GET If-None-Match 1 (no quotes): %d, want 400", rec.Code)
	}
	writes := store.writes
	for _, im := range []string{`"2"`, `W/"1"`, `"0", "3"`} {
		if rec := doWith(h, "POST", path+"/complete", alice, "", map[string]string{"If-Match": im}); rec.Code != 412 || errorCode(t, rec) != "precondition_failed" {
			t.Errorf("complete If-Match %s: %d %s; want 412", im, rec.Code, rec.Body)
		}
		if rec := doWith(h, "DELETE", path, alice, "", map[string]string{"If-Match": im}); rec.Code != 412 {
			t.Errorf("delete If-Match %s: %d; want 412", im, rec.Code)
		}
	}
	for _, im := range []string{`bogus`, `"a"b"`, `,`} {
		if rec := doWith(h, "DELETE", path, alice, "", map[string]string{"If-Match": im}); rec.Code != 400 || errorCode(t, rec) != "invalid_precondition" {
			t.Errorf("delete If-Match %s: %d; want 400", im, rec.Code)
		}
	}
	if store.writes != writes {
		t.Fatalf("failed preconditions wrote %d changes", store.writes-writes)
	}
	done := doWith(h, "POST", path+"/complete", alice, "", map[string]string{"If-Match": `"7", "1"`})
	if done.Code != 200 || done.Header().Get("ETag") != `"2"` {
		t.Fatalf("complete If-Match \"1\": %d ETag %q", done.Code, done.Header().Get("ETag"))
	}
	if rec := doWith(h, "GET", path, alice, "", map[string]string{"If-None-Match": `"1"`}); rec.Code != 200 || rec.Header().Get("ETag") != `"2"` {
		t.Fatalf("GET with the old ETag after a change: %d %q; want 200 with \"2\"", rec.Code, rec.Header().Get("ETag"))
	}
	if rec := doWith(h, "DELETE", path, alice, "", map[string]string{"If-Match": `"1"`}); rec.Code != 412 {
		t.Fatalf("delete with the old ETag: %d", rec.Code)
	}
	if rec := doWith(h, "DELETE", path, alice, "", map[string]string{"If-Match": "*"}); rec.Code != 204 {
		t.Fatalf("delete If-Match *: %d", rec.Code)
	}
	// RFC 9110 13.2.1: an answer other than 2xx/412 without the precondition wins over it.
	if rec := doWith(h, "DELETE", path, alice, "", map[string]string{"If-Match": "*"}); rec.Code != 404 {
		t.Fatalf("delete a missing todo If-Match *: %d, want 404", rec.Code)
	}
}

func TestListPagination(t *testing.T) {
	_, h, token := newTestServer(t)
	alice := token("alice")
	var want []string
	for i := range 7 {
		rec := doWith(h, "POST", "/v1/todos", alice, `{"title":"t`+string(rune('0'+i))+`"}`, nil)
		want = append(want, strings.TrimPrefix(rec.Header().Get("Location"), "/v1/todos/"))
		if i%3 == 0 {
			doWith(h, "POST", rec.Header().Get("Location")+"/complete", alice, "", nil)
		}
	}
	doWith(h, "POST", "/v1/todos", token("bob"), `{"title":"bob's"}`, nil)

	walk := func(first string) (ids []string, pages int) {
		next := first
		for next != "" {
			rec := doWith(h, "GET", next, alice, "", nil)
			if rec.Code != 200 {
				t.Fatalf("GET %s: %d %s", next, rec.Code, rec.Body)
			}
			var page struct {
				Todos []todo.Todo
				Next  *string
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
				t.Fatal(err)
			}
			link := rec.Header().Get("Link")
			next = ""
			if page.Next != nil {
				next = *page.Next
				if link != "<"+next+`>; rel="next"` {
					t.Fatalf("Link %q does not match next %q", link, next)
				}
			} else if link != "" {
				t.Fatalf("last page has a Link %q", link)
			}
			for _, td := range page.Todos {
				ids = append(ids, td.ID.String())
			}
			pages++
		}
		return ids, pages
	}
	ids, pages := walk("/v1/todos?limit=3")
	if strings.Join(ids, ",") != strings.Join(want, ",") || pages != 3 {
		t.Fatalf("pages of 3: %d pages, %v; want %v", pages, ids, want)
	}
	done, pages := walk("/v1/todos?status=COMPLETED&limit=2")
	if strings.Join(done, ",") != strings.Join([]string{want[0], want[3], want[6]}, ",") || pages != 2 {
		t.Fatalf("completed: %d pages, %v", pages, done)
	}
	first := doWith(h, "GET", "/v1/todos?limit=2&status=COMPLETED", alice, "", nil)
	var page struct{ Next string }
	_ = json.Unmarshal(first.Body.Bytes(), &page)
	cur := page.Next[strings.Index(page.Next, "cursor=")+len("cursor=") : strings.Index(page.Next, "&")]

	for _, q := range []string{"limit=0", "limit=501", "limit=x", "limit=1&limit=2", "status=DONE", "status=pending",
		"sort=title", "cursor=garbage", "cursor=" + cur, "cursor=" + cur + "&status=PENDING", "%zz"} {
		if rec := doWith(h, "GET", "/v1/todos?"+q, alice, "", nil); rec.Code != 400 || errorCode(t, rec) != "invalid_input" {
			t.Errorf("?%s: %d %s; want 400", q, rec.Code, rec.Body)
		}
	}
}
