package topics

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
)

// Actual is a topic as the cluster has it. Configs holds the current value of every config the
// cluster reports for it (defaults included).
type Actual struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	Configs           map[string]string
}

// Kind is what an action does.
type Kind string

// Kinds of actions.
const (
	Create        Kind = "create"
	AlterConfigs  Kind = "alter-configs"
	AddPartitions Kind = "add-partitions"
	Unchanged     Kind = "unchanged"
)

// Change is one config value that differs.
type Change struct {
	Key  string `json:"key"`
	From string `json:"from"`
	To   string `json:"to"`
	// Destructive marks a change that cannot be undone (applied only with AllowDestructive).
	Destructive bool `json:"destructive,omitempty"`
}

// Action is one step of a plan.
type Action struct {
	Topic string `json:"topic"`
	Kind  Kind   `json:"kind"`
	// For Create: the topic to create, with the replication factor and configs as applied.
	Partitions        int               `json:"partitions,omitempty"`
	ReplicationFactor int               `json:"replication_factor,omitempty"`
	Configs           map[string]string `json:"configs,omitempty"`
	// For AlterConfigs: the values to set.
	Changes []Change `json:"changes,omitempty"`
	// For AddPartitions: the current count (Partitions is the new one).
	FromPartitions int `json:"from_partitions,omitempty"`
	// Destructive marks an AddPartitions (always destructive: it re-maps keys to partitions).
	Destructive bool `json:"destructive,omitempty"`
}

// Conflict is a difference the tool will not apply.
type Conflict struct {
	Topic  string `json:"topic"`
	Reason string `json:"reason"`
	// Destructive: the change is possible but irreversible; --allow-destructive applies it.
	Destructive bool `json:"destructive,omitempty"`
}

// Options are how MakePlan treats irreversible changes.
type Options struct {
	// AllowDestructive plans the irreversible changes (lowering a retention or size limit,
	// changing cleanup.policy, adding partitions) instead of reporting them as conflicts.
	AllowDestructive bool
}

// AllowDestructiveFlag is the flag of the CLI that sets AllowDestructive (named in conflicts).
const AllowDestructiveFlag = "--allow-destructive"

// lowerIsDestructive are the limits whose lowering deletes data (or, for max.message.bytes,
// makes producers' records fail) and cannot be undone: raising them again brings nothing back.
// A value of -1 means unlimited.
var lowerIsDestructive = map[string]bool{
	"retention.ms":          true,
	"retention.bytes":       true,
	"local.retention.ms":    true,
	"local.retention.bytes": true,
	"delete.retention.ms":   true,
	"min.compaction.lag.ms": true,
	"max.message.bytes":     true,
}

// destructive says why changing key from -> to cannot be undone, or "" if it can.
func destructive(key, from, to string) string {
	if from == "" || from == to {
		return ""
	}
	if key == "cleanup.policy" {
		return fmt.Sprintf("cleanup.policy %s -> %s: compaction or deletion starts removing records at once, and they do not come back", from, to)
	}
	if !lowerIsDestructive[key] {
		return ""
	}
	f, ferr := strconv.ParseInt(from, 10, 64)
	t, terr := strconv.ParseInt(to, 10, 64)
	if ferr != nil || terr != nil {
		return fmt.Sprintf("%s %s -> %s: not comparable as numbers, treated as a lowering", key, from, to)
	}
	if f < 0 { // unlimited
		f = 1<<63 - 1
	}
	if t < 0 {
		t = 1<<63 - 1
	}
	if t >= f {
		return ""
	}
	return fmt.Sprintf("%s lowered %s -> %s: records beyond the new limit are deleted (or refused) and do not come back", key, from, to)
}

// Plan is what it takes to bring the cluster to the declaration.
type Plan struct {
	Actions   []Action   `json:"actions"`
	Conflicts []Conflict `json:"conflicts,omitempty"`
	Warnings  []string   `json:"warnings,omitempty"`
}

// NoOp reports whether the plan changes nothing.
func (p Plan) NoOp() bool {
	for _, a := range p.Actions {
		if a.Kind != Unchanged {
			return false
		}
	}
	return true
}

// Effective returns the topic as it should be on a cluster of brokers brokers: the replication
// factor lowered to the broker count, and min.insync.replicas dropped where the replication
// factor is below MinRFForMinISR. The notes say what was adjusted.
func Effective(t Topic, brokers int) (Topic, []string) {
	var notes []string
	eff := t
	eff.Configs = maps.Clone(t.Configs)
	if brokers > 0 && eff.ReplicationFactor > brokers {
		notes = append(notes, fmt.Sprintf("%s: replication factor %d lowered to %d: the cluster has %d broker(s)",
			t.Name, t.ReplicationFactor, brokers, brokers))
		eff.ReplicationFactor = brokers
	}
	if _, ok := eff.Configs[MinISRKey]; ok && eff.ReplicationFactor < MinRFForMinISR {
		notes = append(notes, fmt.Sprintf("%s: %s not set: replication factor %d is below %d",
			t.Name, MinISRKey, eff.ReplicationFactor, MinRFForMinISR))
		delete(eff.Configs, MinISRKey)
	}
	return eff, notes
}

// MakePlan compares the declared topics with the cluster's (actual, by name; a missing topic is
// absent) and returns the actions, in declaration order. It never plans a deletion, a lower
// partition count or a replication change: those are conflicts. Irreversible changes (a lower
// retention or size limit, another cleanup.policy, more partitions) are conflicts too unless
// o.AllowDestructive; then they are planned and marked Destructive.
func MakePlan(desired []Topic, brokers int, actual map[string]Actual, o Options) Plan {
	var p Plan
	for _, d := range desired {
		eff, notes := Effective(d, brokers)
		p.Warnings = append(p.Warnings, notes...)
		a, exists := actual[d.Name]
		if !exists {
			p.Actions = append(p.Actions, Action{
				Topic: d.Name, Kind: Create,
				Partitions: eff.Partitions, ReplicationFactor: eff.ReplicationFactor, Configs: eff.Configs,
			})
			continue
		}
		changed := false
		if a.ReplicationFactor != eff.ReplicationFactor {
			p.Conflicts = append(p.Conflicts, Conflict{Topic: d.Name, Reason: fmt.Sprintf(
				"replication factor is %d, declared %d: changing it needs a partition reassignment, which this tool does not do",
				a.ReplicationFactor, eff.ReplicationFactor)})
		}
		var changes []Change
		for _, ch := range configChanges(eff.Configs, a.Configs) {
			if why := destructive(ch.Key, ch.From, ch.To); why != "" {
				if !o.AllowDestructive {
					p.Conflicts = append(p.Conflicts, Conflict{Topic: d.Name, Destructive: true,
						Reason: why + "; " + AllowDestructiveFlag + " applies it"})
					continue
				}
				ch.Destructive = true
			}
			changes = append(changes, ch)
		}
		if len(changes) > 0 {
			p.Actions = append(p.Actions, Action{Topic: d.Name, Kind: AlterConfigs, Changes: changes})
			changed = true
		}
		switch {
		case eff.Partitions > a.Partitions && !o.AllowDestructive:
			p.Conflicts = append(p.Conflicts, Conflict{Topic: d.Name, Destructive: true, Reason: fmt.Sprintf(
				"has %d partitions, declared %d: adding partitions re-maps keys to partitions, so records of one key "+
					"land in another partition than its earlier ones and per-key ordering breaks; it cannot be undone; %s applies it",
				a.Partitions, eff.Partitions, AllowDestructiveFlag)})
		case eff.Partitions > a.Partitions:
			p.Actions = append(p.Actions, Action{Topic: d.Name, Kind: AddPartitions,
				Partitions: eff.Partitions, FromPartitions: a.Partitions, Destructive: true})
			changed = true
		case eff.Partitions < a.Partitions:
			p.Conflicts = append(p.Conflicts, Conflict{Topic: d.Name, Reason: fmt.Sprintf(
				"has %d partitions, declared %d: Kafka cannot lower a partition count", a.Partitions, eff.Partitions)})
		}
		if !changed {
			p.Actions = append(p.Actions, Action{Topic: d.Name, Kind: Unchanged})
		}
	}
	return p
}

func configChanges(want, have map[string]string) []Change {
	var out []Change
	for k, v := range want {
		if cur, ok := have[k]; !ok || cur != v {
			out = append(out, Change{Key: k, From: cur, To: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
