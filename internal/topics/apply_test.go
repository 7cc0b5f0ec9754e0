package topics

import (
	"context"
	"errors"
	"reflect"
	"strings"
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
		dlq.Name: {Name: dlq.Name, Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "delete"}},
	}}
	p, err := Apply(context.Background(), c, []Topic{mainTopic, dlq}, false, Options{})
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
	p, err = Apply(context.Background(), c, []Topic{mainTopic, dlq}, false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.NoOp() || len(c.calls) != 0 {
		t.Fatalf("second run: plan %+v, calls %q", p, c.calls)
	}
}

func TestApplyDryRunChangesNothing(t *testing.T) {
	c := &fakeCluster{brokers: 3, topics: map[string]Actual{}}
	p, err := Apply(context.Background(), c, []Topic{mainTopic}, true, Options{})
	if err != nil || p.NoOp() || len(c.calls) != 0 {
		t.Fatalf("plan %+v, err %v, calls %q", p, err, c.calls)
	}
}

func TestApplyConflictStillAppliesTheRest(t *testing.T) {
	c := &fakeCluster{brokers: 3, topics: map[string]Actual{
		dlq.Name: {Name: dlq.Name, Partitions: 3, ReplicationFactor: 3, Configs: withDefaults(dlq.Configs)},
	}}
	p, err := Apply(context.Background(), c, []Topic{mainTopic, dlq}, false, Options{})
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

func TestApplyDestructiveOnlyWithTheOption(t *testing.T) {
	existing := func() *fakeCluster {
		return &fakeCluster{brokers: 3, topics: map[string]Actual{
			mainTopic.Name: {Name: mainTopic.Name, Partitions: 3, ReplicationFactor: 3,
				Configs: withDefaults(map[string]string{"cleanup.policy": "delete", "retention.ms": "-1",
					"min.compaction.lag.ms": "604800000", "min.insync.replicas": "2"})},
		}}
	}
	c := existing()
	p, err := Apply(context.Background(), c, []Topic{mainTopic}, false, Options{})
	if !errors.Is(err, ErrConflict) || len(p.Conflicts) != 3 {
		t.Fatalf("without the option: err %v, conflicts %+v", err, p.Conflicts)
	}
	if len(c.calls) != 0 || c.topics[mainTopic.Name].Partitions != 3 || c.topics[mainTopic.Name].Configs["retention.ms"] != "-1" {
		t.Fatalf("without the option the cluster changed: calls %q, topic %+v", c.calls, c.topics[mainTopic.Name])
	}
	for _, cf := range p.Conflicts {
		if !cf.Destructive || !strings.Contains(cf.Reason, AllowDestructiveFlag) {
			t.Errorf("conflict %+v: want destructive, naming %s", cf, AllowDestructiveFlag)
		}
	}

	c = existing()
	p, err = Apply(context.Background(), c, []Topic{mainTopic}, false, Options{AllowDestructive: true})
	if err != nil || len(p.Conflicts) != 0 {
		t.Fatalf("with the option: err %v, conflicts %+v", err, p.Conflicts)
	}
	if want := []string{"alter todos.task.events", "partitions todos.task.events"}; !reflect.DeepEqual(c.calls, want) {
		t.Fatalf("calls = %q, want %q", c.calls, want)
	}
}
