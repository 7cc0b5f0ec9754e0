package main

import (
	"bytes"
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/todocdc/pipeline/internal/httpapi"
	"github.com/todocdc/pipeline/internal/idempotency"
	"github.com/todocdc/pipeline/internal/todo"
)

// maxBodyBytes bounds a request body; a title of 200 characters needs far less.
const maxBodyBytes = 16 << 10

// defaultListLimit is the page size of GET /v1/todos without ?limit.
const defaultListLimit = 100

// openAPIDocument is the API's OpenAPI 3.1 description, served at GET /openapi.yaml.
//
//go:embed openapi.yaml
var openAPIDocument []byte

// todoStore is the part of todo.Store the HTTP layer uses.
type todoStore interface {
	Create(ctx context.Context, userID, title, priority string, also todo.InTx) (todo.Todo, error)
	Get(ctx context.Context, userID string, id todo.ID) (todo.Todo, error)
	List(ctx context.Context, userID string, q todo.ListQuery) ([]todo.Todo, bool, error)
	Complete(ctx context.Context, userID string, id todo.ID, ifMatch todo.Precondition, also todo.InTx) (todo.Todo, error)
	Delete(ctx context.Context, userID string, id todo.ID, ifMatch todo.Precondition) error
}

// keyStore is the part of idempotency.Store the HTTP layer uses.
type keyStore interface {
	Save(ctx context.Context, tx idempotency.Execer, rec idempotency.Record) error
	Load(ctx context.Context, userID, key string, now time.Time) (idempotency.Record, error)
}

type server struct {
	store  todoStore
	keys   keyStore
	keyTTL time.Duration // how long an Idempotency-Key's response is replayed
	tokens httpapi.Verifier
	ready  func(ctx context.Context) error
	log    *slog.Logger
	now    func() time.Time
	// metrics, when set, counts every answer and serves GET /metrics (Prometheus; not part of the
	// API, so not in endpoints() nor the OpenAPI document).
	metrics *httpMetrics
}

// route is one endpoint; the OpenAPI document must describe exactly these (TestOpenAPIMatchesRoutes).
type route struct {
	method, path string
	handler      http.Handler
}

func (s *server) endpoints() []route {
	return []route{
		{"POST", "/v1/todos", httpapi.Authenticated(s.tokens, s.create)},
		{"GET", "/v1/todos", httpapi.Authenticated(s.tokens, s.list)},
		{"GET", "/v1/todos/{id}", httpapi.Authenticated(s.tokens, s.get)},
		{"POST", "/v1/todos/{id}/complete", httpapi.Authenticated(s.tokens, s.complete)},
		{"DELETE", "/v1/todos/{id}", httpapi.Authenticated(s.tokens, s.delete)},
		{"GET", "/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		{"GET", "/readyz", http.HandlerFunc(s.readyz)},
		{"GET", "/openapi.yaml", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(openAPIDocument)
		})},
	}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.endpoints() {
		mux.Handle(rt.method+" "+rt.path, rt.handler)
	}
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics.handler)
	}
	return s.logRequests(httpapi.JSONErrors(mux))
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, "not_ready", err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type createRequest struct {
	Title *string `json:"title"`
	// Priority is LOW, NORMAL or HIGH; absent or empty is NORMAL.
	Priority string `json:"priority"`
}

func (s *server) create(w http.ResponseWriter, r *http.Request, userID string) {
	var req createRequest
	body, ok := httpapi.DecodeJSON(w, r, &req, maxBodyBytes)
	if !ok {
		return
	}
	if req.Title == nil {
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_input", "title: is required")
		return
	}
	s.change(w, r, userID, body, http.StatusCreated, func(also todo.InTx) (todo.Todo, error) {
		return s.store.Create(r.Context(), userID, *req.Title, req.Priority, also)
	})
}

func (s *server) get(w http.ResponseWriter, r *http.Request, userID string) {
	id, err := todo.ParseID(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	inm, present, err := httpapi.IfNoneMatch(r.Header)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_precondition", err.Error())
		return
	}
	t, err := s.store.Get(r.Context(), userID, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// A client holding the current version revalidates it without the body (RFC 9110 13.1.2).
	if present && inm.MatchesWeak(etag(t.Version)) {
		w.Header().Set("ETag", etag(t.Version))
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeResponse(w, todoResponse(http.StatusOK, t))
}

func (s *server) complete(w http.ResponseWriter, r *http.Request, userID string) {
	id, ifMatch, ok := s.target(w, r)
	if !ok {
		return
	}
	body, ok := httpapi.ReadBody(w, r, maxBodyBytes) // no body is expected; an Idempotency-Key binds what came
	if !ok {
		return
	}
	s.change(w, r, userID, body, http.StatusOK, func(also todo.InTx) (todo.Todo, error) {
		return s.store.Complete(r.Context(), userID, id, ifMatch, also)
	})
}

func (s *server) delete(w http.ResponseWriter, r *http.Request, userID string) {
	id, ifMatch, ok := s.target(w, r)
	if !ok {
		return
	}
	if err := s.store.Delete(r.Context(), userID, id, ifMatch); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// target reads the todo a change is for (the path's id) and its If-Match; when it returns false it
// has answered itself (an id that is not a UUID, a bad If-Match: 400).
func (s *server) target(w http.ResponseWriter, r *http.Request) (todo.ID, todo.Precondition, bool) {
	id, err := todo.ParseID(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return todo.ID{}, nil, false
	}
	ifMatch, ok := precondition(w, r)
	return id, ifMatch, ok
}

// precondition reads r's If-Match as a todo.Precondition on the todo's version (nil when absent);
// when it returns false it has answered 400 itself.
func precondition(w http.ResponseWriter, r *http.Request) (todo.Precondition, bool) {
	p, present, err := httpapi.IfMatch(r.Header)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_precondition", err.Error())
		return nil, false
	}
	if !present {
		return nil, true
	}
	return func(version int64) bool { return p.Matches(etag(version)) }, true
}

// etag is the strong entity tag of a todo's version: it changes with every change of the todo.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// response is an answer held before it is written, so that it can be stored with an
// Idempotency-Key and replayed byte for byte.
type response struct {
	status int
	header http.Header
	body   []byte
}

// todoResponse answers status with t, its ETag, and its Location when it was created.
func todoResponse(status int, t todo.Todo) response {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(t) // a todo always encodes
	h := http.Header{"Content-Type": {"application/json"}, "Etag": {etag(t.Version)}}
	if status == http.StatusCreated {
		h.Set("Location", "/v1/todos/"+t.ID.String())
	}
	return response{status: status, header: h, body: buf.Bytes()}
}

func writeResponse(w http.ResponseWriter, resp response) {
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// change runs write, a change answered with status and the changed todo. When r carries an
// Idempotency-Key, write's transaction also stores the answer under the key (one more statement),
// and a request whose key is stored already gets the stored answer with Idempotency-Replayed: true
// and writes nothing; 422 if that key was used for another request (method, path, user or body
// differ). A concurrent request with the key waits for the first one's transaction and then gets
// its answer. Only a completed change is stored: a refused request (4xx, 503) may be retried.
func (s *server) change(w http.ResponseWriter, r *http.Request, userID string, body []byte, status int, write func(todo.InTx) (todo.Todo, error)) {
	header := r.Header.Get("Idempotency-Key")
	if header == "" {
		t, err := write(nil)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeResponse(w, todoResponse(status, t))
		return
	}
	key, err := idempotency.ParseKey(header)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_idempotency_key", err.Error())
		return
	}
	hash := idempotency.RequestHash(r.Method, r.URL.Path, userID, body)
	var stored response
	_, err = write(func(ctx context.Context, tx *sql.Tx, t todo.Todo) error {
		stored = todoResponse(status, t)
		now := s.now()
		return s.keys.Save(ctx, tx, idempotency.Record{UserID: userID, Key: key, RequestHash: hash,
			Status: stored.status, Header: stored.header, Body: stored.body, CreatedAt: now, ExpiresAt: now.Add(s.keyTTL)})
	})
	if err == nil {
		writeResponse(w, stored)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	// The change failed, or the key is taken: a stored answer for the key, if any, is the answer.
	prev, lerr := s.keys.Load(r.Context(), userID, key, s.now())
	switch {
	case lerr == nil && !bytes.Equal(prev.RequestHash, hash):
		httpapi.WriteError(w, http.StatusUnprocessableEntity, "idempotency_key_reused",
			"Idempotency-Key "+strconv.Quote(key)+" was used for another request (method, path or body differ); use a new key for a new request")
	case lerr == nil:
		prev.Header.Set("Idempotency-Replayed", "true")
		writeResponse(w, response{status: prev.Status, header: prev.Header, body: prev.Body})
	case errors.Is(lerr, idempotency.ErrNotFound) && errors.Is(err, idempotency.ErrKeyTaken):
		// The record expired between the write and the read: rare; the client may retry.
		httpapi.WriteError(w, http.StatusConflict, "idempotency_key_in_use", "Idempotency-Key "+strconv.Quote(key)+" is being used by another request; retry")
	case errors.Is(lerr, idempotency.ErrNotFound):
		s.fail(w, r, err)
	default:
		s.fail(w, r, lerr)
	}
}

// fail maps a store error to its response. Anything unexpected (the database or the registry
// unreachable, a schema not registered) is logged and answered 503: nothing was written, since
// every change is one transaction (a COMMIT that got no answer was read back by the store), and
// the client may retry. The one exception is todo.ErrOutcomeUnknown, answered 503 outcome_unknown.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *todo.ValidationError
	switch {
	case errors.As(err, &invalid):
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_input", invalid.Error())
	case errors.Is(err, todo.ErrNotFound):
		httpapi.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, todo.ErrAlreadyCompleted):
		httpapi.WriteError(w, http.StatusConflict, "already_completed", err.Error())
	case errors.Is(err, todo.ErrPreconditionFailed):
		httpapi.WriteError(w, http.StatusPreconditionFailed, "precondition_failed", err.Error()+"; GET it for its current ETag")
	case errors.Is(err, todo.ErrOutcomeUnknown):
		s.log.ErrorContext(r.Context(), "commit outcome unknown", "method", r.Method, "path", r.URL.Path, "err", err)
		httpapi.WriteError(w, http.StatusServiceUnavailable, "outcome_unknown",
			"the database failed while committing and did not say whether the change was made; GET the todo, or retry a create with the same Idempotency-Key")
	case errors.Is(err, context.Canceled):
		// The client went away; nothing to answer.
	default:
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the request could not be completed now; nothing was changed; retry later")
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.metrics.observe(r.Pattern, rec.status, time.Since(start))
		s.log.InfoContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000)
	})
}
