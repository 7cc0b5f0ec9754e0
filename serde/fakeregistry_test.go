package serde

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riferrei/srclient"
)

// fakeRegistry is an httptest server speaking the few Confluent (ccompat) endpoints srclient calls,
// so the tests exercise srclient's real HTTP and error handling. Ids are content ids, as Apicurio's:
// the same schema text under two subjects gets one id.
type fakeRegistry struct {
	srv *httptest.Server

	mu       sync.Mutex
	nextID   int
	byID     map[int]fakeSchema
	subjects map[string][]int // subject -> ids, in version order

	getByID, lookups, creates atomic.Int32

	// fail, when set, answers every request instead of the registry.
	fail atomic.Pointer[func(w http.ResponseWriter, r *http.Request)]
}

type fakeSchema struct {
	text, schemaType string
}

func newFakeRegistry(t testing.TB) *fakeRegistry {
	f := &fakeRegistry{nextID: 1, byID: map[int]fakeSchema{}, subjects: map[string][]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /schemas/ids/{id}", f.handleGetByID)
	mux.HandleFunc("POST /subjects/{subject}", f.handleLookup)
	mux.HandleFunc("POST /subjects/{subject}/versions", f.handleCreate)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail := f.fail.Load(); fail != nil {
			(*fail)(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// client is a fresh srclient client (fresh caches) for the fake.
func (f *fakeRegistry) client() *srclient.SchemaRegistryClient {
	return NewRegistryClient(f.srv.URL, 2*time.Second)
}

// failWith makes every request answer with fn (nil: serve normally again).
func (f *fakeRegistry) failWith(fn func(w http.ResponseWriter, r *http.Request)) {
	if fn == nil {
		f.fail.Store(nil)
		return
	}
	f.fail.Store(&fn)
}

// add registers text (type "" for Avro) under subject, or finds it, and returns its id.
func (f *fakeRegistry) add(subject, text, schemaType string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := 0
	for i, s := range f.byID {
		if s.text == text && s.schemaType == schemaType {
			id = i
		}
	}
	if id == 0 {
		id = f.nextID
		f.nextID++
		f.byID[id] = fakeSchema{text: text, schemaType: schemaType}
	}
	for _, i := range f.subjects[subject] {
		if i == id {
			return id
		}
	}
	if subject != "" {
		f.subjects[subject] = append(f.subjects[subject], id)
	}
	return id
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeCode(w http.ResponseWriter, code int, msg string) {
	status := code
	for status >= 1000 {
		status /= 10
	}
	writeJSON(w, status, map[string]any{"error_code": code, "message": msg})
}

func (f *fakeRegistry) handleGetByID(w http.ResponseWriter, r *http.Request) {
	f.getByID.Add(1)
	id, _ := strconv.Atoi(r.PathValue("id"))
	f.mu.Lock()
	s, ok := f.byID[id]
	f.mu.Unlock()
	if !ok {
		writeCode(w, 40403, fmt.Sprintf("Schema %d not found", id))
		return
	}
	resp := map[string]any{"schema": s.text}
	if s.schemaType != "" {
		resp["schemaType"] = s.schemaType
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *fakeRegistry) readSchema(r *http.Request) string {
	var req struct {
		Schema string `json:"schema"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	return req.Schema
}

func (f *fakeRegistry) handleLookup(w http.ResponseWriter, r *http.Request) {
	f.lookups.Add(1)
	subject, text := r.PathValue("subject"), f.readSchema(r)
	f.mu.Lock()
	ids, ok := f.subjects[subject]
	var found, version int
	for v, id := range ids {
		if f.byID[id].text == text {
			found, version = id, v+1
		}
	}
	f.mu.Unlock()
	switch {
	case !ok:
		writeCode(w, 40401, fmt.Sprintf("Subject '%s' not found.", subject))
	case found == 0:
		writeCode(w, 40403, "Schema not found")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"subject": subject, "id": found, "version": version, "schema": text})
	}
}

func (f *fakeRegistry) handleCreate(w http.ResponseWriter, r *http.Request) {
	f.creates.Add(1)
	id := f.add(r.PathValue("subject"), f.readSchema(r), "")
	writeJSON(w, http.StatusOK, map[string]any{"id": id})
}
