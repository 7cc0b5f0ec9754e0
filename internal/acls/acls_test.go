package acls

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// repoFile is a file of the repository, from this package's folder.
func repoFile(name string) string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..", name)
}

func TestTheRepositorysFilesParse(t *testing.T) {
	bs, err := Load(repoFile(DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	has := func(principal, resource, name, op string) bool {
		for _, b := range bs {
			if b.Principal == principal && b.Resource == resource && b.Name == name && b.Operation == op {
				return true
			}
		}
		return false
	}
	// the refusals the e2e tests prove rest on these absences
	for _, c := range []struct {
		principal, resource, name, op string
		want                          bool
	}{
		{"User:notifier", Topic, "todos.task.events", "Read", true},
		{"User:notifier", Topic, "todos.task.events", "Write", false},
		{"User:notifier", Group, "notifier", "Read", true},
		{"User:notifier", Group, "analytics", "Read", false},
		{"User:notifier", Group, "analytics", "Describe", false},
		{"User:connect", Topic, "todos.task.events", "Write", true},
		{"User:connect", Topic, "todos.task.events.dlq", "Write", true},
		{"User:connect", Topic, "todos.task.events.dlq", "Read", false},
		{"User:connect", TransactionalID, "todos-connect-", "Write", true},
		{"User:connect", Cluster, ClusterName, "IdempotentWrite", true},
	} {
		if got := has(c.principal, c.resource, c.name, c.op); got != c.want {
			t.Errorf("%s %s on %s %s: granted %v, want %v", c.principal, c.op, c.resource, c.name, got, c.want)
		}
	}
	for _, b := range bs {
		if strings.Contains(b.Principal, "todo-api") || b.Principal == "User:admin" {
			t.Errorf("%s has a grant: %s", b.Principal, b)
		}
	}
	both, err := Load(repoFile(DefaultFile), repoFile("e2e/acls.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(both) <= len(bs) {
		t.Errorf("e2e/acls.yaml added nothing: %d bindings, %d without it", len(both), len(bs))
	}
}

func TestParseExpandsGrants(t *testing.T) {
	bs, err := Parse([]byte(`principals:
  - principal: User:a
    grants:
      - {resource: topic, name: t, operations: [Read, Describe, Read]}
      - {resource: group, name: g-, pattern: prefixed, operations: [Read]}
      - {resource: cluster, operations: [IdempotentWrite]}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		got = append(got, b.String())
	}
	want := []string{"User:a IdempotentWrite cluster:literal:kafka-cluster", "User:a Read group:prefixed:g-",
		"User:a Describe topic:literal:t", "User:a Read topic:literal:t"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestParseRefusesMistakes(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{`principals: []`, "no principals"},
		{"principals:\n  - principal: notifier\n    grants: []", "User:<name>"},
		{"principals:\n  - {principal: User:a}\n  - {principal: User:a}", "declared twice"},
		{"principals:\n  - principal: User:a\n    grants: [{resource: topics, name: t, operations: [Read]}]", "resource \"topics\""},
		{"principals:\n  - principal: User:a\n    grants: [{resource: topic, operations: [Read]}]", "name is missing"},
		{"principals:\n  - principal: User:a\n    grants: [{resource: topic, name: t, pattern: match, operations: [Read]}]", "pattern \"match\""},
		{"principals:\n  - principal: User:a\n    grants: [{resource: topic, name: t, operations: [read]}]", "operation \"read\""},
		{"principals:\n  - principal: User:a\n    grants: [{resource: topic, name: t}]", "no operations"},
		{"principals:\n  - principal: User:a\n    grants: [{resource: cluster, name: c, operations: [Alter]}]", "cluster resource has no name"},
		{"principals:\n  - principal: User:a\n    grant: []", "field grant not found"},
	} {
		if _, err := Parse([]byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.yaml, err, c.want)
		}
	}
}

func bind(p, name, op string) Binding {
	return Binding{Principal: p, Resource: Topic, Name: name, Pattern: Literal, Operation: op, Host: "*", Permission: "Allow"}
}

func TestMakePlan(t *testing.T) {
	keep, add, stale := bind("User:a", "t", "Read"), bind("User:a", "t", "Write"), bind("User:b", "t", "Read")
	deny := keep
	deny.Permission = "Deny" // set by hand: not declared, so revoked
	p := MakePlan([]Binding{keep, add}, []Binding{keep, stale, deny})
	if !slices.Equal(p.Create, []Binding{add}) || !slices.Equal(p.Unchanged, []Binding{keep}) ||
		len(p.Revoke) != 2 || !slices.Contains(p.Revoke, stale) || !slices.Contains(p.Revoke, deny) {
		t.Errorf("plan %+v", p)
	}
	if p.NoOp() || !MakePlan([]Binding{keep}, []Binding{keep}).NoOp() {
		t.Error("NoOp wrong")
	}
}

// fake is a cluster's ACLs in memory.
type fake struct {
	have    map[Binding]bool
	calls   int
	failAdd error
}

func (f *fake) List(context.Context) ([]Binding, error) { return sorted(f.have), nil }
func (f *fake) Create(_ context.Context, bs []Binding) error {
	f.calls++
	if f.failAdd != nil {
		return f.failAdd
	}
	for _, b := range bs {
		f.have[b] = true
	}
	return nil
}
func (f *fake) Delete(_ context.Context, bs []Binding) error {
	f.calls++
	for _, b := range bs {
		delete(f.have, b)
	}
	return nil
}

func TestApplyTwiceChangesNothingTheSecondTimeAndARemovedGrantIsRevoked(t *testing.T) {
	ctx := context.Background()
	declared, err := Load(repoFile(DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{have: map[Binding]bool{}}
	if _, err := Apply(ctx, f, declared, true); err != nil || f.calls != 0 || len(f.have) != 0 {
		t.Fatalf("dry run changed the cluster: %v, %d calls", err, f.calls)
	}
	p, err := Apply(ctx, f, declared, false)
	if err != nil || len(p.Create) != len(declared) || len(f.have) != len(declared) {
		t.Fatalf("first apply: %v, %d created of %d", err, len(p.Create), len(declared))
	}
	calls := f.calls
	if p, err := Apply(ctx, f, declared, false); err != nil || !p.NoOp() || len(p.Unchanged) != len(declared) || f.calls != calls {
		t.Fatalf("second apply: %v, plan %+v, %d calls", err, p, f.calls-calls)
	}
	removed := declared[3]
	p, err = Apply(ctx, f, slices.Delete(slices.Clone(declared), 3, 4), false)
	if err != nil || !slices.Equal(p.Revoke, []Binding{removed}) || f.have[removed] {
		t.Fatalf("a grant removed from the file: %v, plan %+v", err, p)
	}
}

func TestApplyReportsTheFailureWithThePlan(t *testing.T) {
	boom := errors.New("not authorized")
	f := &fake{have: map[Binding]bool{}, failAdd: boom}
	p, err := Apply(context.Background(), f, []Binding{bind("User:a", "t", "Read")}, false)
	if !errors.Is(err, boom) || len(p.Create) != 1 {
		t.Errorf("err %v, plan %+v", err, p)
	}
}
