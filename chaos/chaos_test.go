package main

import (
	"strings"
	"testing"

	"github.com/todocdc/pipeline/events"
)

// TestLoadStepsEachTodoOnce: a todo is completed only after its create was accepted, deleted only
// after its complete was, and a refused step ends its todo's steps.
func TestLoadStepsEachTodoOnce(t *testing.T) {
	l := &load{users: []string{"u0", "u1"}, prefix: "p"}
	answer := func(o *op, status int, id string) {
		o.Status = status
		if o.Type == events.TypeCreated {
			o.Todo = id
		}
		l.done(o)
	}
	o0 := l.next(0) // create
	o1 := l.next(1) // create
	if o0.Type != events.TypeCreated || o1.Type != events.TypeCreated || o0.Title == o1.Title {
		t.Fatalf("first requests: %+v %+v, want two creates with distinct titles", o0, o1)
	}
	if o := l.next(2); o.Type != events.TypeCreated {
		t.Fatalf("request 2 with no accepted create: %s, want a create", o.Type)
	}
	answer(o0, 201, "t0")
	answer(o1, 503, "")
	c := l.next(6) // i%4 == 2: a complete of t0
	if c.Type != events.TypeCompleted || c.Todo != "t0" || c.User != o0.User {
		t.Fatalf("request 6: %+v, want the complete of t0", c)
	}
	if o := l.next(10); o.Type != events.TypeCreated {
		t.Fatalf("request 10: %s, want a create (t0's complete is in flight, o1 was refused)", o.Type)
	}
	if o := l.next(7); o.Type != events.TypeCreated {
		t.Fatalf("request 7 before the complete was accepted: %s, want a create", o.Type)
	}
	answer(c, 200, "")
	d := l.next(11) // i%4 == 3: the delete of t0
	if d.Type != events.TypeDeleted || d.Todo != "t0" {
		t.Fatalf("request 11: %+v, want the delete of t0", d)
	}
	answer(d, 204, "")
	if o := l.next(15); o.Type != events.TypeCreated {
		t.Fatalf("request 15 after t0's delete: %s, want a create", o.Type)
	}
	if n := len(l.snapshot()); n != 8 {
		t.Errorf("ops recorded: %d, want 8", n)
	}
}

func TestReportFailuresAndTable(t *testing.T) {
	r := &Report{Brokers: 1, Config: config{Rate: 200}, Rows: []Row{
		{Fault: "kafka-kill", Accepted: 10, Delivered: 10, RecoverS: 12.3, WorstMs: 12000},
		{Fault: "postgres-crash", Accepted: 5, Refused: 2, Unknown: 1, Delivered: 4, Lost: 1, Failures: []string{"1 accepted writes have no event"}},
	}, Problems: []string{"the stack after the run: down"}}
	got := r.Failures()
	want := []string{"the stack after the run: down", "postgres-crash: 1 accepted writes have no event"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Failures() = %q, want %q", got, want)
	}
	table := r.Table()
	for _, s := range []string{"| kafka-kill | 10 / 0 | 10 | 0 | 0 | 0 | 12.3 s | 12000 ms | ok |",
		"| postgres-crash | 5 / 2 (+1 unanswered) | 4 | 0 | 1 | 0 |", "FAIL: 1 accepted writes have no event"} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
}
