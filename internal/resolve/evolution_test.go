package resolve

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/todocdc/pipeline/schemas"
)

// todoCreatedV2 is v1 plus the optional fields a v2 would add: each has a default, so the
// change is backward and forward compatible.
func todoCreatedV2(t testing.TB, extraStatus ...string) string {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal([]byte(schemas.TodoCreatedV1), &s); err != nil {
		t.Fatal(err)
	}
	fields := s["fields"].([]any)
	if len(extraStatus) > 0 {
		for _, f := range fields {
			fm := f.(map[string]any)
			if fm["name"] == "status" {
				enum := fm["type"].(map[string]any)
				for _, sym := range extraStatus {
					enum["symbols"] = append(enum["symbols"].([]any), sym)
				}
			}
		}
	}
	var add []any
	for _, f := range []string{
		`{"name":"priority","type":{"type":"enum","name":"Priority","symbols":["LOW","NORMAL","HIGH"],"default":"NORMAL"},"default":"NORMAL"}`,
		`{"name":"due_at","type":["null",{"type":"long","logicalType":"timestamp-millis"}],"default":null}`,
	} {
		var v any
		if err := json.Unmarshal([]byte(f), &v); err != nil {
			t.Fatal(err)
		}
		add = append(add, v)
	}
	s["fields"] = append(fields, add...)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func todoV1Datum() map[string]any {
	return m{"todo_id": "t-1", "user_id": "u-1", "title": "write the resolver", "status": "PENDING",
		"created_at": time.UnixMilli(1767225600123).UTC()}
}

func TestTodoCreatedEvolution(t *testing.T) {
	v1, v2 := schemas.TodoCreatedV1, todoCreatedV2(t)
	due := time.UnixMilli(1767312000000).UTC()
	v2Datum := todoV1Datum()
	v2Datum["priority"], v2Datum["due_at"] = "HIGH", u("long.timestamp-millis", due)

	withDefaults := todoV1Datum()
	withDefaults["priority"], withDefaults["due_at"] = "NORMAL", nil
	v2Want := todoV1Datum()
	v2Want["priority"], v2Want["due_at"] = "HIGH", m{"long.timestamp-millis": due}

	runCases(t, []rcase{
		{name: "v1 writer, v1 reader", writer: v1, reader: v1, datum: todoV1Datum(), want: todoV1Datum()},
		{name: "v1 writer, v2 reader: new fields take their defaults", writer: v1, reader: v2, datum: todoV1Datum(), want: withDefaults},
		{name: "v2 writer, v1 reader: new fields are ignored", writer: v2, reader: v1, datum: v2Datum, want: todoV1Datum()},
		{name: "v2 writer, v2 reader", writer: v2, reader: v2, datum: v2Datum, want: v2Want},
	})

	// A writer that adds a Status symbol: a v1 reader (Status has no default) still reads every
	// event but the ones that hold the new symbol, as the specification says.
	v3 := todoCreatedV2(t, "DELETED")
	deleted := todoV1Datum()
	deleted["status"], deleted["priority"], deleted["due_at"] = "DELETED", "LOW", nil
	pending := todoV1Datum()
	pending["priority"], pending["due_at"] = "LOW", nil
	runCases(t, []rcase{
		{name: "writer with a new status symbol, v1 reader, known symbol", writer: v3, reader: v1, datum: pending, want: todoV1Datum()},
		{name: "writer with a new status symbol, v1 reader, new symbol", writer: v3, reader: v1, datum: deleted,
			decodeErr: `field status: enum symbol "DELETED" written by the writer is not a symbol of reader enum com.todos.events.Status`},
	})

	// The decoded v1-as-v2 value is exactly what goavro gives when it decodes a v2 body that
	// holds the defaults.
	p, err := NewPlan(v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Decode(encode(t, v1, todoV1Datum()))
	if err != nil {
		t.Fatal(err)
	}
	if want := goavroDecode(t, v2, encode(t, v2, withDefaults)); !equalNative(got, want) {
		t.Fatalf("plan gave %s, goavro with v2 gives %s", show(got), show(want))
	}
}

func TestCache(t *testing.T) {
	v1, v2 := schemas.TodoCreatedV1, todoCreatedV2(t)
	var c Cache
	p1, err := c.Plan(1, v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Plan(1, v1, v2); again != p1 {
		t.Error("second call for the same pair made a new plan")
	}
	// The same reader schema written otherwise (whitespace, doc, attribute order) has the same
	// fingerprint, so the same plan.
	var obj any
	_ = json.Unmarshal([]byte(v2), &obj)
	obj.(map[string]any)["doc"] = "another doc"
	respelled, _ := json.MarshalIndent(obj, "", "    ")
	if other, _ := c.Plan(1, v1, string(respelled)); other != p1 {
		t.Error("the same reader schema, spelled otherwise, made a new plan")
	}
	// A reader default that differs is another reader.
	changed := todoCreatedV2(t)
	var o2 map[string]any
	_ = json.Unmarshal([]byte(changed), &o2)
	last := o2["fields"].([]any)[len(o2["fields"].([]any))-2].(map[string]any)
	last["default"] = "LOW"
	changedText, _ := json.Marshal(o2)
	if other, _ := c.Plan(1, v1, string(changedText)); other == p1 {
		t.Error("a reader with another default got the same plan")
	}
	if p2, _ := c.Plan(2, v2, v2); p2 == p1 {
		t.Error("another writer id got the same plan")
	}
	// Errors are kept too.
	bad := rec("com.todos.events.TodoCreated", fld("todo_id", `"int"`))
	_, err1 := c.Plan(3, v1, bad)
	_, err2 := c.Plan(3, v1, bad)
	if !errors.Is(err1, ErrIncompatible) || err1 != err2 {
		t.Errorf("errors %v and %v, want one ErrIncompatible kept", err1, err2)
	}
	if _, err := c.Plan(4, v1, "{"); !errors.Is(err, ErrSchema) {
		t.Errorf("invalid reader: %v, want ErrSchema", err)
	}

	// Concurrent callers (run with -race) all get one plan per pair, and it decodes.
	var wg sync.WaitGroup
	var cc Cache
	plans := make([]*Plan, 16)
	body := encode(t, v1, todoV1Datum())
	for i := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := cc.Plan(7, v1, v2)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := p.Decode(body); err != nil {
				t.Error(err)
			}
			plans[i] = p
		}()
	}
	wg.Wait()
	for _, p := range plans {
		if p != plans[0] {
			t.Fatal("concurrent callers got different plans for one pair")
		}
	}
}
