package topics

import (
	"reflect"
	"strings"
	"testing"
)

var mainTopic = Topic{
	Name: "todos.task.events", Partitions: 6, ReplicationFactor: 3,
	Configs: map[string]string{
		"cleanup.policy":        "compact",
		"retention.ms":          "2592000000",
		"min.compaction.lag.ms": "604800000",
		"min.insync.replicas":   "2",
	},
}

var dlq = Topic{
	Name: "todos.task.events.dlq", Partitions: 1, ReplicationFactor: 3,
	Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": "2592000000"},
}

// withDefaults returns configs as a broker reports them: the declared ones plus defaults.
func withDefaults(c map[string]string) map[string]string {
	out := map[string]string{"segment.bytes": "1073741824", "min.insync.replicas": "1", "cleanup.policy": "delete", "retention.ms": "604800000"}
	for k, v := range c {
		out[k] = v
	}
	return out
}

func without(m map[string]string, key string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func TestMakePlan(t *testing.T) {
	tests := []struct {
		name          string
		desired       []Topic
		brokers       int
		actual        map[string]Actual
		opts          Options
		want          []Action
		wantConflicts []string // substrings, one per conflict
		wantWarnings  int
	}{
		{
			name:    "missing topic on a 3-broker cluster is created as declared",
			desired: []Topic{mainTopic}, brokers: 3,
			want: []Action{{Topic: mainTopic.Name, Kind: Create, Partitions: 6, ReplicationFactor: 3, Configs: mainTopic.Configs}},
		},
		{
			name:    "single broker: replication lowered, min.insync.replicas dropped, with warnings",
			desired: []Topic{mainTopic}, brokers: 1,
			want: []Action{{Topic: mainTopic.Name, Kind: Create, Partitions: 6, ReplicationFactor: 1,
				Configs: without(mainTopic.Configs, MinISRKey)}},
			wantWarnings: 2,
		},
		{
			name:    "two brokers: replication 2, still below 3 so no min.insync.replicas",
			desired: []Topic{mainTopic}, brokers: 2,
			want: []Action{{Topic: mainTopic.Name, Kind: Create, Partitions: 6, ReplicationFactor: 2,
				Configs: without(mainTopic.Configs, MinISRKey)}},
			wantWarnings: 2,
		},
		{
			name:    "topic without min.insync.replicas on one broker warns only about replication",
			desired: []Topic{dlq}, brokers: 1,
			want:         []Action{{Topic: dlq.Name, Kind: Create, Partitions: 1, ReplicationFactor: 1, Configs: dlq.Configs}},
			wantWarnings: 1,
		},
		{
			name:    "existing topic as declared is unchanged",
			desired: []Topic{mainTopic}, brokers: 3,
			actual: map[string]Actual{mainTopic.Name: {Name: mainTopic.Name, Partitions: 6, ReplicationFactor: 3,
				Configs: withDefaults(mainTopic.Configs)}},
			want: []Action{{Topic: mainTopic.Name, Kind: Unchanged}},
		},
		{
			name:    "single broker, existing topic with default min.insync.replicas is unchanged",
			desired: []Topic{mainTopic}, brokers: 1,
			actual: map[string]Actual{mainTopic.Name: {Name: mainTopic.Name, Partitions: 6, ReplicationFactor: 1,
				Configs: withDefaults(without(mainTopic.Configs, MinISRKey))}},
			want:         []Action{{Topic: mainTopic.Name, Kind: Unchanged}},
			wantWarnings: 2,
		},
		{
			name:    "differing configs are altered, only those",
			desired: []Topic{mainTopic}, brokers: 3,
			actual: map[string]Actual{mainTopic.Name: {Name: mainTopic.Name, Partitions: 6, ReplicationFactor: 3,
				Configs: withDefaults(map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "86400000",
					"retention.ms": "2592000000", "min.insync.replicas": "1"})}},
			want: []Action{{Topic: mainTopic.Name, Kind: AlterConfigs, Changes: []Change{
				{Key: "min.compaction.lag.ms", From: "86400000", To: "604800000"},
				{Key: "min.insync.replicas", From: "1", To: "2"}}}},
		},
		{
			name:    "raising retention.ms from a limit, or from unlimited to unlimited, is not destructive",
			desired: []Topic{dlq}, brokers: 3,
			actual: map[string]Actual{dlq.Name: {Name: dlq.Name, Partitions: 1, ReplicationFactor: 3,
				Configs: withDefaults(map[string]string{"retention.ms": "86400000"})}},
			want: []Action{{Topic: dlq.Name, Kind: AlterConfigs,
				Changes: []Change{{Key: "retention.ms", From: "86400000", To: "2592000000"}}}},
		},
		{
			name:    "changing cleanup.policy is a conflict without --allow-destructive; the rest is applied",
			desired: []Topic{mainTopic}, brokers: 3,
			actual: map[string]Actual{mainTopic.Name: {Name: mainTopic.Name, Partitions: 6, ReplicationFactor: 3,
				Configs: withDefaults(map[string]string{"cleanup.policy": "delete", "min.compaction.lag.ms": "604800000",
					"retention.ms": "2592000000", "min.insync.replicas": "1"})}},
			want: []Action{{Topic: mainTopic.Name, Kind: AlterConfigs,
				Changes: []Change{{Key: "min.insync.replicas", From: "1", To: "2"}}}},
			wantConflicts: []string{"cleanup.policy delete -> compact"},
		},
		{
			name:    "changing cleanup.policy with --allow-destructive is applied and marked",
			desired: []Topic{mainTopic}, brokers: 3, opts: Options{AllowDestructive: true},
			actual: map[string]Actual{mainTopic.Name: {Name: mainTopic.Name, Partitions: 6, ReplicationFactor: 3,
				Configs: withDefaults(map[string]string{"cleanup.policy": "delete", "min.compaction.lag.ms": "604800000",
					"retention.ms": "2592000000", "min.insync.replicas": "2"})}},
			want: []Action{{Topic: mainTopic.Name, Kind: AlterConfigs,
				Changes: []Change{{Key: "cleanup.policy", From: "delete", To: "compact", Destructive: true}}}},
		},
		{
			name:    "lowering retention.ms is a conflict without --allow-destructive",
			desired: []Topic{dlq}, brokers: 3,
			actual: map[string]Actual{dlq.Name: {Name: dlq.Name, Partitions: 1, ReplicationFactor: 3,
				Configs: withDefaults(map[string]string{"retention.ms": "5184000000"})}},
			want:          []Action{{Topic: dlq.Name, Kind: Unchanged}},
			wantConflicts: []string{"retention.ms lowered 5184000000 -> 2592000000"},
		},
		{
			name:    "lowering retention.ms from unlimited (-1) is a conflict",
			desired: []Topic{dlq}, brokers: 3,
			actual: map[string]Actual{dlq.Name: {Name: dlq.Name, Partitions: 1, ReplicationFactor: 3,
				Configs: withDefaults(map[string]string{"retention.ms": "-1"})}},
			want:          []Action{{Topic: dlq.Name, Kind: Unchanged}},
			wantConflicts: []string{"retention.ms lowered -1 -> 2592000000"},
		},
		{
			name: "lowering retention.bytes is a conflict, raising it to unlimited is not",
			desired: []Topic{
				{Name: "a", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.bytes": "1000"}},
				{Name: "b", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.bytes": "-1"}},
			},
			brokers: 1,
			actual: map[string]Actual{
				"a": {Name: "a", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.bytes": "2000"}},
				"b": {Name: "b", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.bytes": "2000"}},
			},
			want: []Action{{Topic: "a", Kind: Unchanged},
				{Topic: "b", Kind: AlterConfigs, Changes: []Change{{Key: "retention.bytes", From: "2000", To: "-1"}}}},
			wantConflicts: []string{"retention.bytes lowered 2000 -> 1000"},
		},
		{
			name:    "lowering retention.ms with --allow-destructive is applied and marked",
			desired: []Topic{dlq}, brokers: 3, opts: Options{AllowDestructive: true},
			actual: map[string]Actual{dlq.Name: {Name: dlq.Name, Partitions: 1, ReplicationFactor: 3,
				Configs: withDefaults(map[string]string{"retention.ms": "5184000000"})}},
			want: []Action{{Topic: dlq.Name, Kind: AlterConfigs,
				Changes: []Change{{Key: "retention.ms", From: "5184000000", To: "2592000000", Destructive: true}}}},
		},
		{
			name:    "a config the broker does not report is set",
			desired: []Topic{dlq}, brokers: 1,
			actual: map[string]Actual{dlq.Name: {Name: dlq.Name, Partitions: 1, ReplicationFactor: 1,
				Configs: map[string]string{"cleanup.policy": "delete"}}},
			want: []Action{{Topic: dlq.Name, Kind: AlterConfigs,
				Changes: []Change{{Key: "retention.ms", From: "", To: "2592000000"}}}},
			wantWarnings: 1,
		},
		{
			name:    "more partitions declared is a conflict without --allow-destructive (keys re-mapped)",
			desired: []Topic{mainTopic}, brokers: 3,
			actual: map[string]Actual{mainTopic.Name: {Name: mainTopic.Name, Partitions: 1, ReplicationFactor: 3,
				Configs: withDefaults(mainTopic.Configs)}},
			want:          []Action{{Topic: mainTopic.Name, Kind: Unchanged}},
			wantConflicts: []string{"has 1 partitions, declared 6: adding partitions re-maps keys"},
		},
		{
			name:    "more partitions declared are added with --allow-destructive",
			desired: []Topic{mainTopic}, brokers: 3, opts: Options{AllowDestructive: true},
			actual: map[string]Actual{mainTopic.Name: {Name: mainTopic.Name, Partitions: 1, ReplicationFactor: 3,
				Configs: withDefaults(mainTopic.Configs)}},
			want: []Action{{Topic: mainTopic.Name, Kind: AddPartitions, Partitions: 6, FromPartitions: 1, Destructive: true}},
		},
		{
			name:    "configs and partitions both differ: the config is raised, the partitions are a conflict",
			desired: []Topic{mainTopic}, brokers: 3,
			actual: map[string]Actual{mainTopic.Name: {Name: mainTopic.Name, Partitions: 3, ReplicationFactor: 3,
				Configs: withDefaults(map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "604800000",
					"retention.ms": "1", "min.insync.replicas": "2"})}},
			want: []Action{
				{Topic: mainTopic.Name, Kind: AlterConfigs, Changes: []Change{{Key: "retention.ms", From: "1", To: "2592000000"}}},
			},
			wantConflicts: []string{"has 3 partitions, declared 6"},
		},
		{
			name:    "configs and partitions both differ with --allow-destructive: two actions",
			desired: []Topic{mainTopic}, brokers: 3, opts: Options{AllowDestructive: true},
			actual: map[string]Actual{mainTopic.Name: {Name: mainTopic.Name, Partitions: 3, ReplicationFactor: 3,
				Configs: withDefaults(map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "604800000",
					"retention.ms": "1", "min.insync.replicas": "2"})}},
			want: []Action{
				{Topic: mainTopic.Name, Kind: AlterConfigs, Changes: []Change{{Key: "retention.ms", From: "1", To: "2592000000"}}},
				{Topic: mainTopic.Name, Kind: AddPartitions, Partitions: 6, FromPartitions: 3, Destructive: true},
			},
		},
		{
			name:    "fewer partitions declared is a conflict, never a change",
			desired: []Topic{dlq}, brokers: 3,
			actual: map[string]Actual{dlq.Name: {Name: dlq.Name, Partitions: 4, ReplicationFactor: 3,
				Configs: withDefaults(dlq.Configs)}},
			want:          []Action{{Topic: dlq.Name, Kind: Unchanged}},
			wantConflicts: []string{"has 4 partitions, declared 1"},
		},
		{
			name:    "replication factor below the declared one on a cluster that could hold it is a conflict",
			desired: []Topic{dlq}, brokers: 3,
			actual: map[string]Actual{dlq.Name: {Name: dlq.Name, Partitions: 1, ReplicationFactor: 1,
				Configs: withDefaults(dlq.Configs)}},
			want:          []Action{{Topic: dlq.Name, Kind: Unchanged}},
			wantConflicts: []string{"replication factor is 1, declared 3"},
		},
		{
			name:    "several topics keep declaration order, missing ones are created",
			desired: []Topic{mainTopic, dlq}, brokers: 3,
			actual: map[string]Actual{dlq.Name: {Name: dlq.Name, Partitions: 1, ReplicationFactor: 3,
				Configs: withDefaults(dlq.Configs)}},
			want: []Action{
				{Topic: mainTopic.Name, Kind: Create, Partitions: 6, ReplicationFactor: 3, Configs: mainTopic.Configs},
				{Topic: dlq.Name, Kind: Unchanged},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(tt.desired, tt.brokers, tt.actual, tt.opts)
			if !reflect.DeepEqual(p.Actions, tt.want) {
				t.Errorf("actions\n got %+v\nwant %+v", p.Actions, tt.want)
			}
			if len(p.Conflicts) != len(tt.wantConflicts) {
				t.Fatalf("conflicts = %+v, want %d", p.Conflicts, len(tt.wantConflicts))
			}
			for i, c := range p.Conflicts {
				if !strings.Contains(c.Reason, tt.wantConflicts[i]) {
					t.Errorf("conflict %d = %q, want it to contain %q", i, c.Reason, tt.wantConflicts[i])
				}
			}
			if len(p.Warnings) != tt.wantWarnings {
				t.Errorf("warnings = %q, want %d", p.Warnings, tt.wantWarnings)
			}
			wantNoOp := true
			for _, a := range tt.want {
				wantNoOp = wantNoOp && a.Kind == Unchanged
			}
			if p.NoOp() != wantNoOp {
				t.Errorf("NoOp() = %v, want %v", p.NoOp(), wantNoOp)
			}
		})
	}
}

func TestEffectiveDoesNotTouchDeclaration(t *testing.T) {
	before := len(mainTopic.Configs)
	Effective(mainTopic, 1)
	if len(mainTopic.Configs) != before {
		t.Fatal("Effective changed the declared configs")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{name: "ok", yaml: "topics:\n  - name: a\n    partitions: 1\n    replication_factor: 1\n    configs:\n      retention.ms: 5\n"},
		{name: "empty", yaml: "topics: []\n", wantErr: "no topics"},
		{name: "unknown key", yaml: "topics:\n  - name: a\n    partition: 1\n    replication_factor: 1\n", wantErr: "field partition not found"},
		{name: "no name", yaml: "topics:\n  - partitions: 1\n    replication_factor: 1\n", wantErr: "name is missing"},
		{name: "duplicate", yaml: "topics:\n  - {name: a, partitions: 1, replication_factor: 1}\n  - {name: a, partitions: 1, replication_factor: 1}\n", wantErr: "declared twice"},
		{name: "zero partitions", yaml: "topics:\n  - {name: a, partitions: 0, replication_factor: 1}\n", wantErr: "partitions must be at least 1"},
		{name: "bad min isr", yaml: "topics:\n  - {name: a, partitions: 1, replication_factor: 3, configs: {min.insync.replicas: two}}\n", wantErr: "positive integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// The repository's own declaration must parse and say what the design says.
func TestRepositoryTopicsFile(t *testing.T) {
	ts, err := Load("../../" + DefaultFile)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Topic{
		"todos.task.events": {Name: "todos.task.events", Partitions: 6, ReplicationFactor: 3, Configs: map[string]string{
			"cleanup.policy": "compact", "retention.ms": "2592000000", "min.compaction.lag.ms": "604800000", "min.insync.replicas": "2"}},
		"todos.task.events.retry": {Name: "todos.task.events.retry", Partitions: 6, ReplicationFactor: 3, Configs: map[string]string{
			"cleanup.policy": "delete", "retention.ms": "604800000"}},
		"todos.task.events.dlq": {Name: "todos.task.events.dlq", Partitions: 1, ReplicationFactor: 3, Configs: map[string]string{
			"cleanup.policy": "delete", "retention.ms": "2592000000"}},
	}
	if len(ts) != len(want) {
		t.Fatalf("%d topics, want %d", len(ts), len(want))
	}
	for _, got := range ts {
		if !reflect.DeepEqual(got, want[got.Name]) {
			t.Errorf("topic %s\n got %+v\nwant %+v", got.Name, got, want[got.Name])
		}
	}
}
