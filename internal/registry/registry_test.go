package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/riferrei/srclient"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/schemas"
)

// fakeRegistry speaks the part of the Confluent API that Register uses. Identical schema text
// keeps its id; a subject listed in refuse answers 409 to a new version.
type fakeRegistry struct {
	mu       sync.Mutex
	versions map[string][]string // subject -> schema text per version
	ids      map[string]int      // schema text -> id
	levels   map[string]string
	refuse   map[string]bool
	calls    []string
}

// startFakeRegistry serves a new fake registry until the test ends.
func startFakeRegistry(t *testing.T) (*fakeRegistry, *httptest.Server) {
	fake := newFakeRegistry()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{versions: map[string][]string{}, ids: map[string]int{}, levels: map[string]string{}, refuse: map[string]bool{}}
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	writeJSON := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	var body struct {
		Schema        string `json:"schema"`
		Compatibility string `json:"compatibility"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/subjects":
		subjects := []string{}
		for s := range f.versions {
			subjects = append(subjects, s)
		}
		writeJSON(200, subjects)
	case r.Method == http.MethodPost && len(parts) == 2 && parts[0] == "subjects":
		for i, text := range f.versions[parts[1]] {
			if text == body.Schema {
				writeJSON(200, map[string]any{"subject": parts[1], "id": f.ids[text], "version": i + 1, "schema": text})
				return
			}
		}
		writeJSON(404, map[string]any{"error_code": 40403, "message": "Schema not found"})
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "versions":
		if f.refuse[parts[1]] {
			writeJSON(409, map[string]any{"error_code": 409, "message": "Incompatible schema: list of diff types: [title_v2 at /fields/3]"})
			return
		}
		id, ok := f.ids[body.Schema]
		if !ok {
			id = len(f.ids) + 1
			f.ids[body.Schema] = id
		}
		f.versions[parts[1]] = append(f.versions[parts[1]], body.Schema)
		writeJSON(200, map[string]any{"id": id})
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "schemas":
		for text, id := range f.ids {
			if parts[2] == jsonInt(id) {
				writeJSON(200, map[string]any{"schema": text})
				return
			}
		}
		writeJSON(404, map[string]any{"error_code": 40403, "message": "Schema not found"})
	case r.Method == http.MethodPut && len(parts) == 2 && parts[0] == "config":
		f.levels[parts[1]] = body.Compatibility
		writeJSON(200, map[string]any{"compatibility": body.Compatibility})
	default:
		writeJSON(404, map[string]any{"error_code": 404, "message": "no route " + r.URL.Path})
	}
}

func jsonInt(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestLoadSchemasFromRepository(t *testing.T) {
	got, err := LoadSchemas(schemas.FS, events.Topic)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		events.Subject(events.Topic, events.TodoCompleted{}.RecordName()),
		events.Subject(events.Topic, events.TodoCreated{}.RecordName()),
		events.Subject(events.Topic, events.TodoDeleted{}.RecordName()),
	}
	if len(got) != len(want) {
		t.Fatalf("%d schemas, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Subject != want[i] {
			t.Errorf("subject %d = %s, want %s", i, got[i].Subject, want[i])
		}
	}
}

func TestLoadSchemasRefusesNonRecords(t *testing.T) {
	fsys := fstest.MapFS{"x.avsc": {Data: []byte(`{"type":"string"}`)}}
	if _, err := LoadSchemas(fsys, "t"); err == nil {
		t.Fatal("want an error for a schema that is not a named record")
	}
}

func TestPolicy(t *testing.T) {
	p, err := ParsePolicy(schemas.Compatibility)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Level("anything"); got != srclient.FullTransitive {
		t.Fatalf("default level = %s, want FULL_TRANSITIVE (todo-api deploys first: FORWARD; replays: BACKWARD)", got)
	}
	p, err = ParsePolicy([]byte("default: BACKWARD\nsubjects:\n  a: FULL\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Level("a") != srclient.Full || p.Level("b") != srclient.Backward {
		t.Fatalf("levels: a=%s b=%s", p.Level("a"), p.Level("b"))
	}
	if u := p.Unknown([]Schema{{Subject: "b"}}); len(u) != 1 || u[0] != "a" {
		t.Fatalf("Unknown = %q", u)
	}
	for _, bad := range []string{"default: SOMETIMES\n", "subjects: {a: FULL}\n", "default: FULL\nsubject: {}\n", "default: FULL\nsubjects: {a: NEVER}\n"} {
		if _, err := ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("ParsePolicy(%q): want an error", bad)
		}
	}
}

func TestRegisterTwiceKeepsIDs(t *testing.T) {
	fake, srv := startFakeRegistry(t)
	list, err := LoadSchemas(schemas.FS, events.Topic)
	if err != nil {
		t.Fatal(err)
	}
	policy := Policy{Default: srclient.BackwardTransitive, Subjects: map[string]srclient.CompatibilityLevel{list[0].Subject: srclient.FullTransitive}}

	first, err := Register(context.Background(), srclient.NewSchemaRegistryClient(srv.URL), list, policy)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(context.Background(), srclient.NewSchemaRegistryClient(srv.URL), list, policy)
	if err != nil {
		t.Fatal(err)
	}
	for i := range list {
		if first[i].Outcome != Registered || second[i].Outcome != Existing {
			t.Errorf("%s: outcomes %s then %s", list[i].Subject, first[i].Outcome, second[i].Outcome)
		}
		if first[i].ID == 0 || first[i].ID != second[i].ID || first[i].Version != 1 || second[i].Version != 1 {
			t.Errorf("%s: id/version %d/%d then %d/%d", list[i].Subject, first[i].ID, first[i].Version, second[i].ID, second[i].Version)
		}
		if want := policy.Level(list[i].Subject); second[i].Level != want || fake.levels[list[i].Subject] != string(want) {
			t.Errorf("%s: level %s (registry %s), want %s", list[i].Subject, second[i].Level, fake.levels[list[i].Subject], want)
		}
	}
}

func TestRegisterRefusedShowsRegistryMessageAndGoesOn(t *testing.T) {
	fake, srv := startFakeRegistry(t)
	list, err := LoadSchemas(schemas.FS, events.Topic)
	if err != nil {
		t.Fatal(err)
	}
	fake.refuse[list[0].Subject] = true
	results, err := Register(context.Background(), srclient.NewSchemaRegistryClient(srv.URL), list, Policy{Default: srclient.Backward})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want ErrRefused", err)
	}
	if !strings.Contains(err.Error(), "title_v2 at /fields/3") {
		t.Errorf("error %q does not carry the registry's message", err)
	}
	if len(results) != len(list) || results[0].Outcome != Refused || results[1].Outcome != Registered {
		t.Fatalf("results = %+v", results)
	}
	if !strings.Contains(results[0].Message, "title_v2") {
		t.Errorf("message = %q", results[0].Message)
	}
}

func TestLoadWithHistory(t *testing.T) {
	got, err := LoadWithHistory(schemas.FS, events.Topic)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, s := range got {
		files = append(files, s.File)
	}
	want := "TodoCompleted.avsc history/TodoCreated.v1.avsc TodoCreated.avsc TodoDeleted.avsc"
	if strings.Join(files, " ") != want {
		t.Fatalf("order %v, want %s", files, want)
	}
	if !got[1].History || got[2].History || got[1].Subject != got[2].Subject {
		t.Errorf("history flags/subjects: %+v", got[1:3])
	}

	rec := func(name string, fields string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(`{"type":"record","name":"` + name + `","namespace":"n","fields":[` + fields + `]}`)}
	}
	ordered, err := LoadWithHistory(fstest.MapFS{
		"R.avsc": rec("R", ""), "history/R.v10.avsc": rec("R", `{"name":"c","type":"int"}`),
		"history/R.v2.avsc": rec("R", `{"name":"b","type":"int"}`), "history/R.v1.avsc": rec("R", `{"name":"a","type":"int"}`),
	}, "t")
	if err != nil {
		t.Fatal(err)
	}
	files = files[:0]
	for _, s := range ordered {
		files = append(files, s.File)
	}
	if strings.Join(files, " ") != "history/R.v1.avsc history/R.v2.avsc history/R.v10.avsc R.avsc" {
		t.Errorf("versions in order of their numbers: %v", files)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"bad file name":          {"R.avsc": rec("R", ""), "history/R-1.avsc": rec("R", "")},
		"other record":           {"R.avsc": rec("R", ""), "history/R.v1.avsc": rec("S", "")},
		"no current schema":      {"R.avsc": rec("R", ""), "history/S.v1.avsc": rec("S", "")},
		"two files, one version": {"R.avsc": rec("R", ""), "history/R.v1.avsc": rec("R", ""), "history/R.v01.avsc": rec("R", "")},
	} {
		if _, err := LoadWithHistory(fsys, "t"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A fresh registry ends with every version of a subject, in order; a second run registers nothing.
func TestRegisterHistoryInOrder(t *testing.T) {
	fake, srv := startFakeRegistry(t)
	list, err := LoadWithHistory(schemas.FS, events.Topic)
	if err != nil {
		t.Fatal(err)
	}
	policy := Policy{Default: srclient.BackwardTransitive}
	for run, want := range []Outcome{Registered, Existing} {
		results, err := Register(context.Background(), srclient.NewSchemaRegistryClient(srv.URL), list, policy)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			if r.Outcome != want {
				t.Errorf("run %d: %s: %s, want %s", run+1, r.File, r.Outcome, want)
			}
			wantVersion := 1
			if list[i].File == "TodoCreated.avsc" {
				wantVersion = 2
			}
			if r.Version != wantVersion {
				t.Errorf("run %d: %s: version %d, want %d", run+1, r.File, r.Version, wantVersion)
			}
		}
	}
	created := events.Subject(events.Topic, events.TodoCreated{}.RecordName())
	if v := fake.versions[created]; len(v) != 2 || !strings.Contains(v[1], "priority") || strings.Contains(v[0], "priority") {
		t.Errorf("%s versions: %v", created, v)
	}
}
