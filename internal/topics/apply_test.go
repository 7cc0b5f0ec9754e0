package topics

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

type fakeCluster struct {
	brokers int
	topics  map[string]Actual
	calls   []string
}

func (f *fakeCluster) Brokers(context.Context) (int, error) { return f.brokers, nil }

func (f *fakeCluster) Describe(_ context.Context, names []string) (map[string]Actual, error) {
	out := map[string]Actual{}
	for _, n := range names {
		if a, ok := f.topics[n]; ok {
			out[n] = a
		}
	}
	return out, nil
}

func (f *fakeCluster) Create(_ context.Context, t Topic) error {
	f.calls = append(f.calls, "create "+t.Name)
	f.topics[t.Name] = Actual{Name: t.Name, Partitions: t.Partitions, ReplicationFactor: t.ReplicationFactor, Configs: t.Configs}
	return nil
}

func (f *fakeCluster) SetConfigs(_ context.Context, topic string, set map[string]string) error {
	f.calls = append(f.calls, "alter "+topic)
	for k, v := range set {
		f.topics[topic].Configs[k] = v
	}
	return nil
}

func (f *fakeCluster) AddPartitions(_ context.Context, topic string, total int) error {
	f.calls = append(f.calls, "partitions "+topic)
	a := f.topics[topic]
	a.Partitions = total
	f.topics[topic] = a
	return nil
}

func TestApplyTwiceIsNoOp(t *testing.T) {
	c := &fakeCluster{brokers: 1, topics: map[string]Actual{
		dlq.Name: {Name: dlq.Name, Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
	}}
	p, err := Apply(context.Background(), c, []Topic{mainTopic, dlq}, false)
	if err != nil {
		t.Fatal(err)
	}
	if p.NoOp() {
		t.Fatal("first run planned nothing")
	}
	if want := []string{"create todos.task.events", "alter todos.task.events.dlq"}; !reflect.DeepEqual(c.calls, want) {
		t.Fatalf("calls = %q, want %q", c.calls, want)
	}
	c.calls = nil
	p, err = Apply(context.Background(), c, []Topic{mainTopic, dlq}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !p.NoOp() || len(c.calls) != 0 {
		t.Fatalf("second run: plan %+v, calls %q", p, c.calls)
	}
}

func TestApplyDryRunChangesNothing(t *testing.T) {
	c := &fakeCluster{brokers: 3, topics: map[string]Actual{}}
	p, err := Apply(context.Background(), c, []Topic{mainTopic}, true)
	if err != nil || p.NoOp() || len(c.calls) != 0 {
		t.Fatalf("plan %+v, err %v, calls %q", p, err, c.calls)
	}
}

func TestApplyConflictStillAppliesTheRest(t *testing.T) {
	c := &fakeCluster{brokers: 3, topics: map[string]Actual{
		dlq.Name: {Name: dlq.Name, Partitions: 3, ReplicationFactor: 3, Configs: withDefaults(dlq.Configs)},
	}}
	p, err := Apply(context.Background(), c, []Topic{mainTopic, dlq}, false)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if len(p.Conflicts) != 1 || !reflect.DeepEqual(c.calls, []string{"create todos.task.events"}) {
		t.Fatalf("conflicts %+v, calls %q", p.Conflicts, c.calls)
	}
	if c.topics[dlq.Name].Partitions != 3 {
		t.Fatal("partitions were lowered")
	}
}
