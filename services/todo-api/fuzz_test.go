package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/todocdc/pipeline/internal/httpapi"
	"github.com/todocdc/pipeline/internal/todo"
)

// FuzzCreateTodo sends any body to POST /v1/todos. Whatever the bytes, the answer is either 201
// with a todo whose title passes the domain's rules, or a JSON error (400 or 413) with a code and
// a message; nothing panics, only a 201 writes, and (on the seed corpus) the exchange is one the
// OpenAPI document allows. The seed corpus is testdata/fuzz/FuzzCreateTodo.
func FuzzCreateTodo(f *testing.F) {
	srv, store, token := newTestAPI(f)
	var violation error
	h := srv.routes()
	// The OpenAPI check costs ~1 ms an exchange (measured; ~50 times the request itself), so it
	// runs on the seed corpus (go test) and not while fuzzing, where it would cut executions to a
	// few per second.
	if fuzz := flag.Lookup("test.fuzz"); fuzz == nil || fuzz.Value.String() == "" {
		h = checked(f, h, func(err error) { violation = err })
	}
	alice := token("alice")
	f.Fuzz(func(t *testing.T, body []byte) {
		writes := store.writes
		violation = nil
		defer func() {
			if violation != nil {
				t.Errorf("OpenAPI: %v", violation)
			}
		}()
		req := httptest.NewRequest("POST", "/v1/todos", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+alice)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%d with Content-Type %q", rec.Code, ct)
		}
		switch rec.Code {
		case 201:
			var got todo.Todo
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("201 body is not a todo: %v: %s", err, rec.Body)
			}
			if norm, err := todo.NormalizeTitle(got.Title); err != nil || norm != got.Title || !utf8.ValidString(got.Title) {
				t.Fatalf("stored title %q breaks the title rules: %v", got.Title, err)
			}
			if store.writes != writes+1 {
				t.Fatalf("a 201 made %d writes", store.writes-writes)
			}
		case 400, 413:
			var eb httpapi.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("%d body is not a JSON error: %v: %s", rec.Code, err, rec.Body)
			}
			if store.writes != writes {
				t.Fatalf("a refused request (%d %s) wrote", rec.Code, eb.Error.Code)
			}
		default:
			t.Fatalf("unexpected status %d: %s", rec.Code, rec.Body)
		}
	})
}
