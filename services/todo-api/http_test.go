package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/todocdc/pipeline/internal/auth"
	"github.com/todocdc/pipeline/internal/httpapi"
	"github.com/todocdc/pipeline/internal/idempotency"
	"github.com/todocdc/pipeline/internal/todo"
)

// fakeStore applies the domain's rules and keeps todos in memory, so the HTTP layer's mapping of
// input and errors to responses can be tested without a database. A change whose InTx fails is
// undone, as the real store's transaction is rolled back.
type fakeStore struct {
	mu     sync.Mutex
	todos  map[todo.ID]todo.Todo
	writes int
	clock  time.Time
}

func (f *fakeStore) Create(ctx context.Context, userID, title, priority string, also todo.InTx) (todo.Todo, error) {
	title, err := todo.NormalizeTitle(title)
	if err != nil {
		return todo.Todo{}, err
	}
	prio, err := todo.ParsePriority(priority)
	if err != nil {
		return todo.Todo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(time.Millisecond)
	t := todo.Todo{ID: uuid.New(), UserID: userID, Title: title, Status: "PENDING", Priority: prio, CreatedAt: f.clock, Version: 1}
	if also != nil {
		if err := also(ctx, nil, t); err != nil {
			return todo.Todo{}, err
		}
	}
	f.writes++
	f.todos[t.ID] = t
	return t, nil
}

func (f *fakeStore) Get(_ context.Context, userID string, id todo.ID) (todo.Todo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(userID, id)
}

func (f *fakeStore) get(userID string, id todo.ID) (todo.Todo, error) {
	t, ok := f.todos[id]
	if !ok || t.UserID != userID {
		return todo.Todo{}, todo.ErrNotFound
	}
	return t, nil
}

func (f *fakeStore) List(_ context.Context, userID string, q todo.ListQuery) ([]todo.Todo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []todo.Todo{}
	for _, t := range f.todos {
		if t.UserID == userID && (q.Status == "" || t.Status == q.Status) &&
			(q.After == nil || t.CreatedAt.After(q.After.CreatedAt) || t.CreatedAt.Equal(q.After.CreatedAt) && t.ID.String() > q.After.ID.String()) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b todo.Todo) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	if len(out) > q.Limit {
		return out[:q.Limit], true, nil
	}
	return out, false, nil
}

func (f *fakeStore) Complete(ctx context.Context, userID string, id todo.ID, ifMatch todo.Precondition, also todo.InTx) (todo.Todo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.get(userID, id)
	if err != nil {
		return t, err
	}
	if t.Status == "COMPLETED" {
		return t, todo.ErrAlreadyCompleted
	}
	if ifMatch != nil && !ifMatch(t.Version) {
		return todo.Todo{}, todo.ErrPreconditionFailed
	}
	t.Status, t.Version = "COMPLETED", t.Version+1
	if also != nil {
		if err := also(ctx, nil, t); err != nil {
			return todo.Todo{}, err
		}
	}
	f.writes++
	f.todos[id] = t
	return t, nil
}

func (f *fakeStore) Delete(_ context.Context, userID string, id todo.ID, ifMatch todo.Precondition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.get(userID, id)
	if err != nil {
		return err
	}
	if ifMatch != nil && !ifMatch(t.Version) {
		return todo.ErrPreconditionFailed
	}
	f.writes++
	delete(f.todos, id)
	return nil
}

// fakeKeys keeps Idempotency-Key records in memory, with the real store's rule: a live record of
// the same user and key makes Save fail with ErrKeyTaken.
type fakeKeys struct {
	mu   sync.Mutex
	recs map[[2]string]idempotency.Record
}

func (k *fakeKeys) Save(_ context.Context, _ idempotency.Execer, rec idempotency.Record) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if old, ok := k.recs[[2]string{rec.UserID, rec.Key}]; ok && old.ExpiresAt.After(rec.CreatedAt) {
		return idempotency.ErrKeyTaken
	}
	k.recs[[2]string{rec.UserID, rec.Key}] = rec
	return nil
}

func (k *fakeKeys) Load(_ context.Context, userID, key string, now time.Time) (idempotency.Record, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	rec, ok := k.recs[[2]string{userID, key}]
	if !ok || !rec.ExpiresAt.After(now) {
		return idempotency.Record{}, idempotency.ErrNotFound
	}
	rec.Header = rec.Header.Clone()
	return rec, nil
}

func newTestServer(t testing.TB) (*fakeStore, http.Handler, func(user string) string) {
	t.Helper()
	srv, store, token := newTestAPI(t)
	return store, checked(t, srv.routes(), func(err error) { t.Errorf("OpenAPI: %v", err) }), token
}

// newTestAPI returns a server on a fakeStore and fakeKeys (keys live an hour), and a function that
// issues a token for a user.
func newTestAPI(t testing.TB) (*server, *fakeStore, func(user string) string) {
	t.Helper()
	keys, err := auth.NewKeys([]byte("test-secret-test-secret-test-secret!"))
	if err != nil {
		t.Fatal(err)
	}
	store := &fakeStore{todos: map[todo.ID]todo.Todo{}, clock: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	s := &server{store: store, keys: &fakeKeys{recs: map[[2]string]idempotency.Record{}}, keyTTL: time.Hour,
		tokens: keys, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now,
		ready: func(context.Context) error { return nil }}
	token := func(user string) string {
		tok, err := keys.Issue(user, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return s, store, token
}

func do(h http.Handler, method, path, token, contentType, body string) (*httptest.ResponseRecorder, httpapi.ErrorBody) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var eb httpapi.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &eb)
	return rec, eb
}

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	store, h, token := newTestServer(t)
	alice := token("alice")
	unknown := uuid.NewString()
	cases := []struct {
		name, method, path, token, contentType, body string
		status                                       int
		code                                         string
	}{
		{"no token", "POST", "/v1/todos", "", "application/json", `{"title":"x"}`, 401, "unauthenticated"},
		{"bad token", "POST", "/v1/todos", "abc.def.ghi", "application/json", `{"title":"x"}`, 401, "invalid_token"},
		{"malformed json", "POST", "/v1/todos", alice, "application/json", `{"title":`, 400, "malformed_json"},
		{"not an object", "POST", "/v1/todos", alice, "application/json", `["x"]`, 400, "malformed_json"},
		{"unknown field", "POST", "/v1/todos", alice, "application/json", `{"title":"x","owner":"bob"}`, 400, "malformed_json"},
		{"trailing data", "POST", "/v1/todos", alice, "application/json", `{"title":"x"} {"title":"y"}`, 400, "malformed_json"},
		{"missing title", "POST", "/v1/todos", alice, "application/json", `{}`, 400, "invalid_input"},
		{"empty title", "POST", "/v1/todos", alice, "application/json", `{"title":"  "}`, 400, "invalid_input"},
		{"unknown priority", "POST", "/v1/todos", alice, "application/json", `{"title":"x","priority":"URGENT"}`, 400, "invalid_input"},
		{"lower-case priority", "POST", "/v1/todos", alice, "application/json", `{"title":"x","priority":"high"}`, 400, "invalid_input"},
		{"priority not a string", "POST", "/v1/todos", alice, "application/json", `{"title":"x","priority":2}`, 400, "malformed_json"},
		{"overlong title", "POST", "/v1/todos", alice, "application/json", `{"title":"` + strings.Repeat("x", todo.MaxTitleLen+1) + `"}`, 400, "invalid_input"},
		{"oversized body", "POST", "/v1/todos", alice, "application/json", `{"title":"` + strings.Repeat("x", maxBodyBytes) + `"}`, 413, "body_too_large"},
		{"wrong content type", "POST", "/v1/todos", alice, "text/plain", `{"title":"x"}`, 415, "unsupported_media_type"},
		{"no content type", "POST", "/v1/todos", alice, "", `{"title":"x"}`, 415, "unsupported_media_type"},
		{"bad id", "GET", "/v1/todos/42", alice, "", "", 400, "invalid_input"},
		{"unknown id", "GET", "/v1/todos/" + unknown, alice, "", "", 404, "not_found"},
		{"complete unknown id", "POST", "/v1/todos/" + unknown + "/complete", alice, "", "", 404, "not_found"},
		{"delete unknown id", "DELETE", "/v1/todos/" + unknown, alice, "", "", 404, "not_found"},
		{"bad limit", "GET", "/v1/todos?limit=0", alice, "", "", 400, "invalid_input"},
		{"invalid UTF-8", "POST", "/v1/todos", alice, "application/json", "{\"title\":\"a\xffb\"}", 400, "malformed_json"},
		{"lone high surrogate", "POST", "/v1/todos", alice, "application/json", `{"title":"a\ud800b"}`, 400, "malformed_json"},
		{"lone low surrogate", "POST", "/v1/todos", alice, "application/json", `{"title":"\udc00"}`, 400, "malformed_json"},
		{"reversed surrogate pair", "POST", "/v1/todos", alice, "application/json", `{"title":"\udc00\ud800"}`, 400, "malformed_json"},
		{"duplicate key", "POST", "/v1/todos", alice, "application/json", `{"title":"a","title":"b"}`, 400, "malformed_json"},
		{"duplicate key, other case", "POST", "/v1/todos", alice, "application/json", `{"title":"a","Title":"b"}`, 400, "malformed_json"},
		{"invisible title", "POST", "/v1/todos", alice, "application/json", `{"title":"\u200b\u202e \ufeff\u2060"}`, 400, "invalid_input"},
		{"no such endpoint", "GET", "/v1/nothing", alice, "", "", 404, "not_found"},
		{"no such endpoint without a token", "GET", "/", "", "", "", 404, "not_found"},
		{"wrong method", "PUT", "/v1/todos", alice, "", "", 405, "method_not_allowed"},
		{"wrong method on a todo", "PATCH", "/v1/todos/" + unknown, alice, "application/json", `{}`, 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, eb := do(h, c.method, c.path, c.token, c.contentType, c.body)
			if rec.Code != c.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, c.status, rec.Body)
			}
			if c.code != "" && (eb.Error.Code != c.code || eb.Error.Message == "") {
				t.Fatalf("error = %+v, want code %q with a message", eb.Error, c.code)
			}
			if ct := rec.Header().Get("Content-Type"); c.code != "" && ct != "application/json" {
				t.Fatalf("Content-Type = %q", ct)
			}
		})
	}
	if store.writes != 0 {
		t.Fatalf("bad input wrote %d changes", store.writes)
	}
}

func TestMethodNotAllowedKeepsAllow(t *testing.T) {
	_, h, token := newTestServer(t)
	rec, _ := do(h, "PUT", "/v1/todos", token("alice"), "", "")
	if got := rec.Header().Values("Allow"); !slices.Contains(got, "GET, HEAD, POST") {
		t.Fatalf("405 Allow = %q, want GET, HEAD, POST", got)
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	_, h, token := newTestServer(t)
	tok := token("alice")
	for _, auth := range []string{"bearer " + tok, "BEARER " + tok, "Bearer  " + tok} {
		req := httptest.NewRequest("POST", "/v1/todos", strings.NewReader(`{"title":"x"}`))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 201 {
			t.Errorf("Authorization %.12q...: %d %s", auth, rec.Code, rec.Body)
		}
	}
	for _, auth := range []string{"Basic " + tok, "Bearer" + tok, "Bearer ", tok} {
		req := httptest.NewRequest("POST", "/v1/todos", strings.NewReader(`{"title":"x"}`))
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %.12q...: %d, want 401 with a challenge", auth, rec.Code)
		}
	}
}

func TestLifecycleAndIsolation(t *testing.T) {
	store, h, token := newTestServer(t)
	alice, bob := token("alice"), token("bob")

	rec, _ := do(h, "POST", "/v1/todos", alice, "application/json", `{"title":"  Buy milk "}`)
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var created todo.Todo
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	if created.Title != "Buy milk" || created.UserID != "alice" || rec.Header().Get("Location") != "/v1/todos/"+created.ID.String() {
		t.Fatalf("created %+v, Location %q", created, rec.Header().Get("Location"))
	}
	path := "/v1/todos/" + created.ID.String()

	for _, req := range [][2]string{{"GET", path}, {"POST", path + "/complete"}, {"DELETE", path}} {
		if rec, _ := do(h, req[0], req[1], bob, "", ""); rec.Code != 404 {
			t.Errorf("bob %s %s = %d, want 404", req[0], req[1], rec.Code)
		}
	}
	if rec, _ := do(h, "GET", "/v1/todos", bob, "", ""); strings.Contains(rec.Body.String(), created.ID.String()) {
		t.Errorf("bob's list shows alice's todo: %s", rec.Body)
	}

	if rec, _ := do(h, "POST", path+"/complete", alice, "", ""); rec.Code != 200 {
		t.Fatalf("complete: %d %s", rec.Code, rec.Body)
	}
	if rec, eb := do(h, "POST", path+"/complete", alice, "", ""); rec.Code != 409 || eb.Error.Code != "already_completed" {
		t.Fatalf("complete again: %d %s", rec.Code, rec.Body)
	}
	if rec, _ := do(h, "DELETE", path, alice, "", ""); rec.Code != 204 {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if rec, _ := do(h, "GET", path, alice, "", ""); rec.Code != 404 {
		t.Fatalf("get after delete: %d", rec.Code)
	}
	if store.writes != 3 {
		t.Fatalf("writes = %d, want 3 (create, complete, delete)", store.writes)
	}
}

func TestUnexpectedErrorIs503(t *testing.T) {
	keys, err := auth.NewKeys([]byte("test-secret-test-secret-test-secret!"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &server{store: &failingStore{}, tokens: keys, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tok, _ := keys.Issue("alice", time.Now(), time.Hour)
	rec, eb := do(srv.routes(), "POST", "/v1/todos", tok, "application/json", `{"title":"x"}`)
	if rec.Code != 503 || eb.Error.Code != "unavailable" {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

// failingStore fails every create as a store does when the registry or database is unreachable.
type failingStore struct{ fakeStore }

func (*failingStore) Create(context.Context, string, string, string, todo.InTx) (todo.Todo, error) {
	return todo.Todo{}, errors.New("registry unreachable")
}

func TestCreatePriority(t *testing.T) {
	_, h, token := newTestServer(t)
	alice := token("alice")
	for body, want := range map[string]string{
		`{"title":"x"}`:                   "NORMAL",
		`{"title":"x","priority":""}`:     "NORMAL",
		`{"title":"x","priority":"LOW"}`:  "LOW",
		`{"title":"x","priority":"HIGH"}`: "HIGH",
	} {
		rec, _ := do(h, "POST", "/v1/todos", alice, "application/json", body)
		var got struct{ Priority string }
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 201 || got.Priority != want {
			t.Errorf("%s: %d %s; want 201 with priority %s", body, rec.Code, rec.Body, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := cfg{IdempotencyTTL: 24 * time.Hour, IdempotencySweep: 10 * time.Minute}
	if err := ok.validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for _, bad := range []cfg{
		{IdempotencyTTL: 30 * time.Second, IdempotencySweep: time.Minute},
		{IdempotencyTTL: 721 * time.Hour, IdempotencySweep: time.Minute},
		{IdempotencyTTL: time.Hour, IdempotencySweep: 0},
	} {
		if err := bad.validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// countingDeleter counts DeleteExpired calls and fails every other one.
type countingDeleter struct{ calls atomic.Int32 }

func (d *countingDeleter) DeleteExpired(context.Context, time.Time, int) (int64, error) {
	if d.calls.Add(1)%2 == 0 {
		return 0, errors.New("database down")
	}
	return 3, nil
}

func TestSweepKeysRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	d := &countingDeleter{}
	done := make(chan struct{})
	go func() {
		sweepKeys(ctx, d, time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for d.calls.Load() < 4 { // a failed sweep does not stop the next ones
		if time.Now().After(deadline) {
			t.Fatalf("%d sweeps in 5 s at a 1 ms interval", d.calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("sweepKeys did not stop when its context ended")
	}
}
