package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/todocdc/pipeline/internal/httpapi"
	"github.com/todocdc/pipeline/internal/todo"
)

// maxBodyBytes bounds a request body; a title of 200 characters needs far less.
const maxBodyBytes = 16 << 10

// maxListLimit bounds one page of GET /v1/todos.
const maxListLimit = 500

// todoStore is the part of todo.Store the HTTP layer uses.
type todoStore interface {
	Create(ctx context.Context, userID, title, priority string) (todo.Todo, error)
	Get(ctx context.Context, userID string, id todo.ID) (todo.Todo, error)
	List(ctx context.Context, userID string, limit int) ([]todo.Todo, error)
	Complete(ctx context.Context, userID string, id todo.ID) (todo.Todo, error)
	Delete(ctx context.Context, userID string, id todo.ID) error
}

type server struct {
	store  todoStore
	tokens httpapi.Verifier
	ready  func(ctx context.Context) error
	log    *slog.Logger
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/todos", httpapi.Authenticated(s.tokens, s.create))
	mux.Handle("GET /v1/todos", httpapi.Authenticated(s.tokens, s.list))
	mux.Handle("GET /v1/todos/{id}", httpapi.Authenticated(s.tokens, s.get))
	mux.Handle("POST /v1/todos/{id}/complete", httpapi.Authenticated(s.tokens, s.complete))
	mux.Handle("DELETE /v1/todos/{id}", httpapi.Authenticated(s.tokens, s.delete))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			httpapi.WriteError(w, http.StatusServiceUnavailable, "not_ready", err.Error())
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return s.logRequests(httpapi.JSONErrors(mux))
}

type createRequest struct {
	Title *string `json:"title"`
	// Priority is LOW, NORMAL or HIGH; absent or empty is NORMAL.
	Priority string `json:"priority"`
}

func (s *server) create(w http.ResponseWriter, r *http.Request, userID string) {
	var req createRequest
	if !httpapi.DecodeJSON(w, r, &req, maxBodyBytes) {
		return
	}
	if req.Title == nil {
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_input", "title: is required")
		return
	}
	t, err := s.store.Create(r.Context(), userID, *req.Title, req.Priority)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/todos/"+t.ID.String())
	httpapi.WriteJSON(w, http.StatusCreated, t)
}

func (s *server) list(w http.ResponseWriter, r *http.Request, userID string) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			httpapi.WriteError(w, http.StatusBadRequest, "invalid_input", "limit: must be a number from 1 to "+strconv.Itoa(maxListLimit))
			return
		}
		limit = n
	}
	todos, err := s.store.List(r.Context(), userID, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"todos": todos})
}

func (s *server) get(w http.ResponseWriter, r *http.Request, userID string) {
	id, err := todo.ParseID(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.store.Get(r.Context(), userID, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, t)
}

func (s *server) complete(w http.ResponseWriter, r *http.Request, userID string) {
	id, err := todo.ParseID(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.store.Complete(r.Context(), userID, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, t)
}

func (s *server) delete(w http.ResponseWriter, r *http.Request, userID string) {
	id, err := todo.ParseID(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.store.Delete(r.Context(), userID, id); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail maps a store error to its response. Anything unexpected (the database or the registry
// unreachable, a schema not registered) is logged and answered 503: nothing was written, since
// every change is one transaction, and the client may retry.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *todo.ValidationError
	switch {
	case errors.As(err, &invalid):
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_input", invalid.Error())
	case errors.Is(err, todo.ErrNotFound):
		httpapi.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, todo.ErrAlreadyCompleted):
		httpapi.WriteError(w, http.StatusConflict, "already_completed", err.Error())
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
		s.log.InfoContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000)
	})
}
