package topics

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/todocdc/pipeline/kafkaconf"
)

// Admin is a Cluster on a real Kafka cluster, through librdkafka's admin client.
type Admin struct {
	ac      *kafka.AdminClient
	timeout time.Duration
}

// NewAdmin connects an admin client to kc's servers, as kc's principal; each call waits at most timeout.
func NewAdmin(kc kafkaconf.Client, timeout time.Duration) (*Admin, error) {
	ac, err := kc.NewAdminClient("pipelinectl")
	if err != nil {
		return nil, err
	}
	return &Admin{ac: ac, timeout: timeout}, nil
}

// Close releases the client.
func (a *Admin) Close() { a.ac.Close() }

func (a *Admin) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.timeout)
}

// Brokers returns the number of brokers in the cluster.
func (a *Admin) Brokers(ctx context.Context) (int, error) {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	res, err := a.ac.DescribeCluster(ctx)
	if err != nil {
		return 0, fmt.Errorf("describe cluster: %w", err)
	}
	if len(res.Nodes) == 0 {
		return 0, fmt.Errorf("describe cluster: no brokers")
	}
	return len(res.Nodes), nil
}

// Describe returns partitions, replication factor and config values of the named topics that
// exist.
func (a *Admin) Describe(ctx context.Context, names []string) (map[string]Actual, error) {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	res, err := a.ac.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames(names))
	if err != nil {
		return nil, fmt.Errorf("describe topics: %w", err)
	}
	out := map[string]Actual{}
	var resources []kafka.ConfigResource
	for _, d := range res.TopicDescriptions {
		switch d.Error.Code() {
		case kafka.ErrNoError:
		case kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic:
			continue
		default:
			return nil, fmt.Errorf("describe topic %s: %w", d.Name, d.Error)
		}
		rf := 0
		for _, p := range d.Partitions {
			rf = max(rf, len(p.Replicas))
		}
		out[d.Name] = Actual{Name: d.Name, Partitions: len(d.Partitions), ReplicationFactor: rf}
		resources = append(resources, kafka.ConfigResource{Type: kafka.ResourceTopic, Name: d.Name})
	}
	if len(resources) == 0 {
		return out, nil
	}
	cres, err := a.ac.DescribeConfigs(ctx, resources)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	for _, r := range cres {
		if r.Error.Code() != kafka.ErrNoError {
			return nil, fmt.Errorf("describe topic %s configs: %w", r.Name, r.Error)
		}
		t := out[r.Name]
		t.Configs = make(map[string]string, len(r.Config))
		for k, e := range r.Config {
			t.Configs[k] = e.Value
		}
		out[r.Name] = t
	}
	return out, nil
}

// Create creates the topic with its partitions, replication factor and configs.
func (a *Admin) Create(ctx context.Context, t Topic) error {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	res, err := a.ac.CreateTopics(ctx, []kafka.TopicSpecification{{
		Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: t.ReplicationFactor, Config: t.Configs,
	}}, kafka.SetAdminOperationTimeout(a.timeout))
	if err != nil {
		return fmt.Errorf("create topic %s: %w", t.Name, err)
	}
	if err := topicResultErr("create topic", res); err != nil {
		return err
	}
	return a.awaitVisible(ctx, t.Name)
}

// awaitVisible waits until the broker's metadata shows the topic: the controller answers
// CreateTopics once it committed the topic, and the brokers learn of it a moment later. Without
// the wait, a run right after this one (or a producer) could still find it missing.
func (a *Admin) awaitVisible(ctx context.Context, name string) error {
	for {
		res, err := a.ac.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames([]string{name}))
		if err == nil && len(res.TopicDescriptions) == 1 && res.TopicDescriptions[0].Error.Code() == kafka.ErrNoError &&
			len(res.TopicDescriptions[0].Partitions) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s created but not visible in the cluster metadata: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SetConfigs sets the given config values on the topic, leaving its other configs alone
// (incremental alter).
func (a *Admin) SetConfigs(ctx context.Context, topic string, set map[string]string) error {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	entries := make([]kafka.ConfigEntry, 0, len(set))
	for k, v := range set {
		entries = append(entries, kafka.ConfigEntry{Name: k, Value: v, IncrementalOperation: kafka.AlterConfigOpTypeSet})
	}
	res, err := a.ac.IncrementalAlterConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic, Config: entries}})
	if err != nil {
		return fmt.Errorf("alter topic %s configs: %w", topic, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("alter topic %s configs: %w", r.Name, r.Error)
		}
	}
	return nil
}

// AddPartitions raises the topic's partition count to total.
func (a *Admin) AddPartitions(ctx context.Context, topic string, total int) error {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	res, err := a.ac.CreatePartitions(ctx, []kafka.PartitionsSpecification{{Topic: topic, IncreaseTo: total}},
		kafka.SetAdminOperationTimeout(a.timeout))
	if err != nil {
		return fmt.Errorf("add partitions to %s: %w", topic, err)
	}
	return topicResultErr("add partitions to", res)
}

func topicResultErr(what string, res []kafka.TopicResult) error {
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("%s %s: %w", what, r.Topic, r.Error)
		}
	}
	return nil
}
