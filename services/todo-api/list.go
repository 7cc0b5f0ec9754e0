package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/httpapi"
	"github.com/todocdc/pipeline/internal/todo"
)

// listParams are the query parameters GET /v1/todos knows; any other is refused.
var listParams = []string{"cursor", "limit", "status"}

// listPage is the body of GET /v1/todos.
type listPage struct {
	Todos []todo.Todo `json:"todos"`
	// Next is the path and query of the next page, null on the last one.
	Next *string `json:"next"`
}

// cursor is where the next page starts, with the filter it belongs to. Clients get it base64url
// encoded and must treat it as opaque.
type cursor struct {
	CreatedAt time.Time     `json:"t"`
	ID        uuid.UUID     `json:"i"`
	Status    events.Status `json:"s,omitempty"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c) // a cursor always encodes
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == uuid.Nil || c.CreatedAt.IsZero() {
		return cursor{}, &todo.ValidationError{Field: "cursor", Message: "is not a cursor this API gave out (copy the page's next link as it is)"}
	}
	return c, nil
}

// listQuery reads GET /v1/todos's query: limit (1 to todo.MaxListLimit, default
// defaultListLimit), status (one of the Status symbols) and cursor (from a previous page's next
// link, valid only with the same status). Unknown and repeated parameters are errors.
func listQuery(raw string) (todo.ListQuery, error) {
	q := todo.ListQuery{Limit: defaultListLimit}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return q, &todo.ValidationError{Field: "query", Message: err.Error()}
	}
	for name, vs := range values {
		switch {
		case !slices.Contains(listParams, name):
			return q, &todo.ValidationError{Field: name, Message: "is not a query parameter of this endpoint; known: " + strings.Join(listParams, ", ")}
		case len(vs) > 1:
			return q, &todo.ValidationError{Field: name, Message: "is given more than once"}
		}
	}
	if v, ok := values["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > todo.MaxListLimit {
			return q, &todo.ValidationError{Field: "limit", Message: fmt.Sprintf("must be a number from 1 to %d, got %q", todo.MaxListLimit, v[0])}
		}
		q.Limit = n
	}
	if v, ok := values["status"]; ok {
		syms := events.Status("").Symbols()
		if !slices.Contains(syms, v[0]) {
			return q, &todo.ValidationError{Field: "status", Message: "must be one of " + strings.Join(syms, ", ") + ", got " + strconv.Quote(v[0])}
		}
		q.Status = events.Status(v[0])
	}
	if v, ok := values["cursor"]; ok {
		c, err := decodeCursor(v[0])
		if err != nil {
			return q, err
		}
		if c.Status != q.Status {
			return q, &todo.ValidationError{Field: "cursor", Message: fmt.Sprintf("belongs to the filter status=%q, not %q: keep the filters of the page it came from", c.Status, q.Status)}
		}
		q.After = &todo.Position{CreatedAt: c.CreatedAt, ID: c.ID}
	}
	return q, nil
}

func (s *server) list(w http.ResponseWriter, r *http.Request, userID string) {
	q, err := listQuery(r.URL.RawQuery)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	todos, more, err := s.store.List(r.Context(), userID, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := listPage{Todos: todos}
	if more {
		last := todos[len(todos)-1]
		next := url.Values{"cursor": {cursor{CreatedAt: last.CreatedAt, ID: last.ID, Status: q.Status}.encode()}, "limit": {strconv.Itoa(q.Limit)}}
		if q.Status != "" {
			next.Set("status", string(q.Status))
		}
		link := r.URL.Path + "?" + next.Encode()
		body.Next = &link
		w.Header().Set("Link", "<"+link+`>; rel="next"`)
	}
	httpapi.WriteJSON(w, http.StatusOK, body)
}
