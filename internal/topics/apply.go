package topics

import (
	"context"
	"errors"
	"fmt"
)

// Cluster is what Apply needs from Kafka. Describe returns only the topics that exist.
type Cluster interface {
	Brokers(ctx context.Context) (int, error)
	Describe(ctx context.Context, names []string) (map[string]Actual, error)
	Create(ctx context.Context, t Topic) error
	SetConfigs(ctx context.Context, topic string, set map[string]string) error
	AddPartitions(ctx context.Context, topic string, total int) error
}

// ErrConflict is returned (wrapped) by Apply when the cluster differs from the declaration in a
// way the tool does not change; every other action was applied.
var ErrConflict = errors.New("differences that cannot be applied")

// Apply plans the declaration against the cluster (see MakePlan for o) and carries out the plan,
// unless dryRun. It returns the plan even on error, so the caller can report what was (to be) done.
func Apply(ctx context.Context, c Cluster, desired []Topic, dryRun bool, o Options) (Plan, error) {
	brokers, err := c.Brokers(ctx)
	if err != nil {
		return Plan{}, err
	}
	names := make([]string, len(desired))
	for i, t := range desired {
		names[i] = t.Name
	}
	actual, err := c.Describe(ctx, names)
	if err != nil {
		return Plan{}, err
	}
	p := MakePlan(desired, brokers, actual, o)
	if !dryRun {
		for _, a := range p.Actions {
			if err := execute(ctx, c, a); err != nil {
				return p, err
			}
		}
	}
	if len(p.Conflicts) > 0 {
		return p, fmt.Errorf("%w: %d", ErrConflict, len(p.Conflicts))
	}
	return p, nil
}

func execute(ctx context.Context, c Cluster, a Action) error {
	switch a.Kind {
	case Create:
		return c.Create(ctx, Topic{Name: a.Topic, Partitions: a.Partitions, ReplicationFactor: a.ReplicationFactor, Configs: a.Configs})
	case AlterConfigs:
		set := make(map[string]string, len(a.Changes))
		for _, ch := range a.Changes {
			set[ch.Key] = ch.To
		}
		return c.SetConfigs(ctx, a.Topic, set)
	case AddPartitions:
		return c.AddPartitions(ctx, a.Topic, a.Partitions)
	}
	return nil
}
