package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/todocdc/pipeline/internal/openapitest"
)

// checker checks the unit tests' traffic against openapi.yaml, the document todo-api serves.
var checker = sync.OnceValues(func() (*openapitest.Checker, error) {
	return openapitest.Load(context.Background(), openAPIDocument, "http://127.0.0.1:8080")
})

// checked serves with h and checks every exchange against the OpenAPI document, reporting each
// violation to report.
func checked(t testing.TB, h http.Handler, report func(error)) http.Handler {
	t.Helper()
	c, err := checker()
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if err := c.Check(r.Context(), r, body, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
			report(err)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// TestOpenAPIMatchesRoutes checks that the document describes exactly the routes todo-api serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	c, err := checker()
	if err != nil {
		t.Fatal(err)
	}
	var documented, served []string
	for path, item := range c.Document().Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	srv, _, _ := newTestAPI(t)
	for _, rt := range srv.endpoints() {
		served = append(served, rt.method+" "+rt.path)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("the document and the router disagree:\ndocumented %v\nserved     %v", documented, served)
	}
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	_, h, _ := newTestServer(t)
	rec, _ := do(h, "GET", "/openapi.yaml", "", "", "")
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), openAPIDocument) || !strings.HasPrefix(rec.Body.String(), "openapi: 3.1.") {
		t.Fatalf("GET /openapi.yaml: %d %.80s", rec.Code, rec.Body)
	}
}

// TestCheckerCatchesDrift makes sure the check can fail: an answer the document does not allow.
func TestCheckerCatchesDrift(t *testing.T) {
	c, err := checker()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v1/todos/0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f", nil)
	req.Header.Set("Authorization", "Bearer x")
	json := http.Header{"Content-Type": {"application/json"}}
	for name, ex := range map[string]struct {
		status int
		header http.Header
		body   string
	}{
		"no ETag":            {200, json, `{"id":"0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f","user_id":"a","title":"x","status":"PENDING","priority":"NORMAL","created_at":"2026-11-29T10:00:00Z","updated_at":"2026-11-29T10:00:00Z","version":1}`},
		"undocumented field": {200, http.Header{"Content-Type": {"application/json"}, "Etag": {`"1"`}}, `{"id":"0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f","user_id":"a","title":"x","status":"PENDING","priority":"NORMAL","created_at":"2026-11-29T10:00:00Z","updated_at":"2026-11-29T10:00:00Z","version":1,"owner":"b"}`},
		"undocumented code":  {418, json, `{"error":{"code":"teapot","message":"x"}}`},
		"plain-text error":   {404, http.Header{"Content-Type": {"text/plain"}}, "404 page not found"},
	} {
		if err := c.Check(context.Background(), req, nil, ex.status, ex.header, []byte(ex.body)); err == nil {
			t.Errorf("%s: not caught", name)
		}
	}
	// OpenAPI 3.1 (JSON Schema 2020-12) keywords are enforced: a type array and const.
	list := httptest.NewRequest("GET", "/v1/todos", nil)
	list.Header.Set("Authorization", "Bearer x")
	if err := c.Check(context.Background(), list, nil, 200, json, []byte(`{"todos":[],"next":5}`)); err == nil {
		t.Error(`"next": 5 against type [string, "null"]: not caught`)
	}
	if err := c.Check(context.Background(), list, nil, 200, json, []byte(`{"todos":[],"next":null}`)); err != nil {
		t.Errorf(`"next": null refused: %v`, err)
	}
	complete := httptest.NewRequest("POST", "/v1/todos/0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f/complete", nil)
	complete.Header.Set("Authorization", "Bearer x")
	replayed := http.Header{"Content-Type": {"application/json"}, "Etag": {`"2"`}, "Idempotency-Replayed": {"false"}}
	if err := c.Check(context.Background(), complete, nil, 200, replayed, []byte(`{"id":"0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f","user_id":"a","title":"x","status":"COMPLETED","priority":"NORMAL","created_at":"2026-11-29T10:00:00Z","updated_at":"2026-11-29T10:00:00Z","completed_at":"2026-11-29T10:00:00Z","version":2}`)); err == nil {
		t.Error(`Idempotency-Replayed: false against const "true": not caught`)
	}
	put := httptest.NewRequest("PUT", "/v1/todos", nil)
	if err := c.Check(context.Background(), put, nil, 405, json, []byte(`{"error":{"code":"method_not_allowed","message":"x"}}`)); err == nil {
		t.Error("405 without Allow: not caught")
	}
	post := httptest.NewRequest("POST", "/v1/todos", strings.NewReader(`{"title":1}`))
	post.Header.Set("Content-Type", "application/json")
	post.Header.Set("Authorization", "Bearer x")
	if err := c.Check(context.Background(), post, []byte(`{"title":1}`), 201, http.Header{"Content-Type": {"application/json"}, "Etag": {`"1"`}, "Location": {"/v1/todos/0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f"}},
		[]byte(`{"id":"0190b6c4-8f5a-7c3e-9d2b-1a2b3c4d5e6f","user_id":"a","title":"x","status":"PENDING","priority":"NORMAL","created_at":"2026-11-29T10:00:00Z","updated_at":"2026-11-29T10:00:00Z","version":1}`)); err == nil {
		t.Error("a request the document refuses, accepted: not caught")
	}
}
