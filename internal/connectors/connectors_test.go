package connectors

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/connect"
)

type fakeAPI struct {
	running    map[string]connect.Config
	validation connect.Validation
	waitErr    error
	calls      []string
}

func (f *fakeAPI) Validate(_ context.Context, class string, _ connect.Config) (connect.Validation, error) {
	f.calls = append(f.calls, "validate "+class)
	return f.validation, nil
}

func (f *fakeAPI) Config(_ context.Context, name string) (connect.Config, error) {
	f.calls = append(f.calls, "get "+name)
	c, ok := f.running[name]
	if !ok {
		return nil, &connect.APIError{Status: 404, Message: "Connector " + name + " not found"}
	}
	return maps.Clone(c), nil
}

func (f *fakeAPI) PutConfig(_ context.Context, name string, c connect.Config) (bool, error) {
	f.calls = append(f.calls, "put "+name)
	_, existed := f.running[name]
	f.running[name] = maps.Clone(c)
	return !existed, nil
}

func (f *fakeAPI) WaitRunning(_ context.Context, name string, _ time.Duration) (connect.Status, error) {
	f.calls = append(f.calls, "wait "+name)
	return connect.Status{Name: name, Connector: connect.State{State: connect.StateRunning}}, f.waitErr
}

func spec(t *testing.T, json string) Spec {
	t.Helper()
	s, err := Parse("c.json", []byte(json))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const c1 = `{"name":"c1","config":{"connector.class":"k.C","a":"1"}}`

func TestApplyCreatesThenLeavesUnchanged(t *testing.T) {
	api := &fakeAPI{running: map[string]connect.Config{}}
	r, err := Apply(context.Background(), api, spec(t, c1), time.Second)
	if err != nil || r.Action != Created {
		t.Fatalf("first: %+v %v", r, err)
	}
	api.calls = nil
	r, err = Apply(context.Background(), api, spec(t, c1), time.Second)
	if err != nil || r.Action != Unchanged {
		t.Fatalf("second: %+v %v", r, err)
	}
	if want := []string{"validate k.C", "get c1", "wait c1"}; !reflect.DeepEqual(api.calls, want) {
		t.Fatalf("calls = %q, want %q (no put)", api.calls, want)
	}
}

func TestApplyUpdatesAndNamesTheChangedKeys(t *testing.T) {
	api := &fakeAPI{running: map[string]connect.Config{"c1": {"connector.class": "k.C", "a": "0", "old": "x", "name": "c1"}}}
	r, err := Apply(context.Background(), api, spec(t, c1), time.Second)
	if err != nil || r.Action != Updated {
		t.Fatalf("%+v %v", r, err)
	}
	if !reflect.DeepEqual(r.Changed, []string{"a", "old"}) {
		t.Fatalf("changed = %q", r.Changed)
	}
}

func TestApplyRefusedLeavesConnectorUntouched(t *testing.T) {
	before := connect.Config{"connector.class": "k.C", "a": "0", "name": "c1"}
	api := &fakeAPI{
		running:    map[string]connect.Config{"c1": maps.Clone(before)},
		validation: connect.Validation{ErrorCount: 1, Errors: []connect.FieldError{{Field: "a", Message: "Invalid value"}}},
	}
	r, err := Apply(context.Background(), api, spec(t, c1), time.Second)
	if !errors.Is(err, ErrRefused) || r.Action != Refused || len(r.Errors) != 1 {
		t.Fatalf("%+v %v", r, err)
	}
	if !reflect.DeepEqual(api.calls, []string{"validate k.C"}) || !reflect.DeepEqual(api.running["c1"], before) {
		t.Fatalf("calls %q, running %v", api.calls, api.running["c1"])
	}
}

func TestApplyReportsFailedTask(t *testing.T) {
	api := &fakeAPI{running: map[string]connect.Config{}, waitErr: &connect.FailedError{Connector: "c1", Task: 0, Trace: "boom\n\tat x"}}
	r, err := Apply(context.Background(), api, spec(t, c1), time.Second)
	var f *connect.FailedError
	if !errors.As(err, &f) || r.Action != Created || r.Status == nil {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct{ name, json, wantErr string }{
		{"no name", `{"config":{"connector.class":"k"}}`, "name"},
		{"no config", `{"name":"a"}`, "config"},
		{"no class", `{"name":"a","config":{"x":"1"}}`, "connector.class"},
		{"non-string value", `{"name":"a","config":{"connector.class":"k","tasks.max":1}}`, "cannot unmarshal number"},
		{"other name", `{"name":"a","config":{"connector.class":"k","name":"b"}}`, "differs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("f.json", []byte(tt.json)); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadAllRefusesDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.json", "b.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(c1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := LoadAll([]string{filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")})
	if err == nil || !strings.Contains(err.Error(), "declared in both") {
		t.Fatalf("err = %v", err)
	}
}

// The repository's connector: the decisions that other parts of the pipeline rely on.
func TestRepositoryOutboxConnector(t *testing.T) {
	s, err := Load("../../connectors/todos-outbox.json")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"connector.class":             "io.debezium.connector.postgresql.PostgresConnector",
		"plugin.name":                 "pgoutput",
		"slot.name":                   "todos_outbox",
		"publication.name":            "todos_outbox",
		"publication.autocreate.mode": "disabled",
		"table.include.list":          "public.outbox",
		"topic.prefix":                "todos",
		"snapshot.mode":               "no_data",
		"value.converter":             "io.debezium.converters.BinaryDataConverter",
		"key.converter":               "org.apache.kafka.connect.storage.StringConverter",
		// The spec version header is made before the router, from the change event's value.
		"transforms": "specversion,specversionheader,outbox,unroutable,unroutableclass,unroutablewhy,unroutablegroup,source,contenttype",
		// The guard: a row whose aggregate_type makes an invalid topic name (Kafka's Topic.validate)
		// goes to the DLQ instead of killing the task (README, "A stuck relay").
		"transforms.unroutable.type":           "org.apache.kafka.connect.transforms.RegexRouter",
		"transforms.unroutable.predicate":      "isUnroutable",
		"transforms.unroutable.replacement":    events.DLQTopic,
		"predicates.isUnroutable.pattern":      "(?s).*[^a-zA-Z0-9._-].*|.{250,}",
		"transforms.unroutableclass.header":    "error_class",
		"transforms.unroutableclass.predicate": "isGuarded",
		"transforms.outbox.type":               "io.debezium.transforms.outbox.EventRouter",
		"transforms.outbox.predicate":          "isOutbox",
		"transforms.outbox.table.fields.additional.placement": "id:header:" + events.HeaderID +
			",event_type:header:" + events.HeaderType + ",created_at:header:" + events.HeaderTime,
		// Not InsertHeader: its value.literal goes through Connect's Values.parseString, which
		// turns "1.0" into the number 1, and the header would read "1". A static field (never
		// parsed) moved into a header keeps the string.
		"transforms.specversion.type":            "org.apache.kafka.connect.transforms.InsertField$Value",
		"transforms.specversion.static.field":    events.HeaderSpecVersion,
		"transforms.specversion.static.value":    events.SpecVersion,
		"transforms.specversionheader.type":      "org.apache.kafka.connect.transforms.HeaderFrom$Value",
		"transforms.specversionheader.fields":    events.HeaderSpecVersion,
		"transforms.specversionheader.headers":   events.HeaderSpecVersion,
		"transforms.specversionheader.operation": "move",
		"transforms.source.header":               events.HeaderSource,
		"transforms.source.value.literal":        events.Source,
		"transforms.contenttype.header":          events.HeaderContentType,
		"transforms.contenttype.value.literal":   events.ContentType,
	}
	for k, v := range want {
		if s.Config[k] != v {
			t.Errorf("%s = %q, want %q", k, s.Config[k], v)
		}
	}
	// The router turns aggregate_type todos.task into the design's topic.
	if got := strings.ReplaceAll(s.Config["transforms.outbox.route.topic.replacement"], "${routedByValue}", events.AggregateType); got != events.Topic {
		t.Errorf("routed topic = %s, want %s", got, events.Topic)
	}
	for _, k := range []string{"database.user", "database.password"} {
		if !strings.HasPrefix(s.Config[k], "${env:") {
			t.Errorf("%s must come from the worker's env config provider, got %q", k, s.Config[k])
		}
	}
}
