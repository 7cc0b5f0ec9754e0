package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/internal/topicreader"
	"github.com/todocdc/pipeline/kafkaconf"
)

// MaxScan bounds how many offsets GroupLag reads per partition to tell records from transaction
// markers; a longer gap is reported as End - Committed, an upper bound (Exact false).
const MaxScan = 5000

// GroupState is Kafka's view of a consumer group.
type GroupState struct {
	State      string
	Members    int
	Partitions []PartitionLag // every partition the group committed on or has assigned
}

// GroupLag reads a group's state, its committed offsets and, per partition, the records a
// read_committed consumer would still receive up to the last stable offset.
//
// Why not End - Committed: on a topic written in Kafka transactions each commit marker takes an
// offset, so a group that has processed everything sits one offset (or more) below the end. The
// gap is therefore read with a read_committed consumer (markers and aborted records are never
// delivered) and only the records it gets are counted.
func GroupLag(ctx context.Context, kc kafkaconf.Client, group string) (GroupState, error) {
	var gs GroupState
	admin, err := kafka.NewAdminClient(kc.ConfigMap(nil))
	if err != nil {
		return gs, fmt.Errorf("kafka admin client: %w", err)
	}
	defer admin.Close()

	desc, err := admin.DescribeConsumerGroups(ctx, []string{group})
	if err != nil {
		return gs, fmt.Errorf("describe group %s: %w", group, err)
	}
	// keyed by topic and partition (kafka.TopicPartition holds the topic as a pointer)
	assigned := map[tpKey]bool{}
	for _, d := range desc.ConsumerGroupDescriptions {
		if d.Error.Code() != kafka.ErrNoError {
			return gs, fmt.Errorf("describe group %s: %w", group, d.Error)
		}
		gs.State = d.State.String()
		gs.Members = len(d.Members)
		for _, m := range d.Members {
			for _, tp := range m.Assignment.TopicPartitions {
				assigned[tpKey{*tp.Topic, tp.Partition}] = true
			}
		}
	}

	offs, err := admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group}})
	if err != nil {
		return gs, fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	committed := map[tpKey]int64{}
	for _, g := range offs.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Error != nil {
				continue
			}
			k := tpKey{*tp.Topic, tp.Partition}
			committed[k] = int64(tp.Offset)
			assigned[k] = true
		}
	}
	if len(assigned) == 0 {
		return gs, nil
	}

	ends, err := listOffsets(ctx, admin, assigned, kafka.LatestOffsetSpec, kafka.IsolationLevelReadCommitted)
	if err != nil {
		return gs, fmt.Errorf("last stable offsets: %w", err)
	}
	starts, err := listOffsets(ctx, admin, assigned, kafka.EarliestOffsetSpec, kafka.IsolationLevelReadUncommitted)
	if err != nil {
		return gs, fmt.Errorf("log start offsets: %w", err)
	}

	var scan []PartitionLag
	for tp := range assigned {
		p := PartitionLag{Topic: tp.topic, Partition: tp.partition, Committed: -1, Exact: true}
		if c, ok := committed[tp]; ok && c >= 0 {
			p.Committed = c
		}
		p.End = ends[tp]
		from := p.Committed
		if start := starts[tp]; from < start {
			from = start // nothing committed (or deleted below it): the group starts at the log start
		}
		if gap := p.End - from; gap > MaxScan {
			p.Lag, p.Exact = gap, false
		} else if gap > 0 {
			p.Lag = gap // replaced by the scan
			scan = append(scan, PartitionLag{Topic: p.Topic, Partition: p.Partition, Committed: from, End: p.End})
		}
		gs.Partitions = append(gs.Partitions, p)
	}
	if len(scan) > 0 {
		counts, err := countRecords(ctx, kc, scan)
		if err != nil {
			return gs, err
		}
		for i, p := range gs.Partitions {
			if n, ok := counts[partKey(p.Topic, p.Partition)]; ok {
				gs.Partitions[i].Lag = n
			}
		}
	}
	slices.SortFunc(gs.Partitions, func(a, b PartitionLag) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return gs, nil
}

type tpKey struct {
	topic     string
	partition int32
}

// listOffsets asks for the offset spec of every partition; a partition whose answer is an error
// is left out (offset 0).
func listOffsets(ctx context.Context, admin *kafka.AdminClient, parts map[tpKey]bool, spec kafka.OffsetSpec,
	iso kafka.IsolationLevel) (map[tpKey]int64, error) {
	specs := map[kafka.TopicPartition]kafka.OffsetSpec{}
	for k := range parts {
		topic := k.topic
		specs[kafka.TopicPartition{Topic: &topic, Partition: k.partition}] = spec
	}
	res, err := admin.ListOffsets(ctx, specs, kafka.SetAdminIsolationLevel(iso))
	if err != nil {
		return nil, err
	}
	out := map[tpKey]int64{}
	for tp, r := range res.ResultInfos {
		if r.Error.Code() == kafka.ErrNoError {
			out[tpKey{*tp.Topic, tp.Partition}] = int64(r.Offset)
		}
	}
	return out, nil
}

func partKey(topic string, p int32) string { return fmt.Sprintf("%s/%d", topic, p) }

// countRecords reads each partition from its Committed offset (the start of the gap) up to its
// End with a read_committed reader and counts the records delivered below End.
func countRecords(ctx context.Context, kc kafkaconf.Client, parts []PartitionLag) (map[string]int64, error) {
	byTopic := map[string][]PartitionLag{}
	for _, p := range parts {
		byTopic[p.Topic] = append(byTopic[p.Topic], p)
	}
	counts := map[string]int64{}
	for topic, ps := range byTopic {
		if err := countTopic(ctx, kc, topic, ps, counts); err != nil {
			return nil, fmt.Errorf("reading the gap between committed offsets and the end: %w", err)
		}
	}
	return counts, nil
}

// countTopic counts into counts, keyed by partKey, the records of topic's parts below their End.
func countTopic(ctx context.Context, kc kafkaconf.Client, topic string, parts []PartitionLag, counts map[string]int64) error {
	from, end := map[int32]int64{}, map[int32]int64{}
	for _, p := range parts {
		from[p.Partition], end[p.Partition] = p.Committed, p.End
		counts[partKey(topic, p.Partition)] = 0
	}
	r, err := topicreader.Open(ctx, topicreader.Config{Kafka: kc, Topic: topic,
		GroupID: "pipelinectl-status", Start: topicreader.AtOffsets(from), StopAt: end})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if p := m.TopicPartition.Partition; int64(m.TopicPartition.Offset) < end[p] {
			counts[partKey(topic, p)]++
		}
	}
}

// Reachable checks that the cluster answers a metadata request.
func Reachable(ctx context.Context, kc kafkaconf.Client) error {
	admin, err := kafka.NewAdminClient(kc.ConfigMap(nil))
	if err != nil {
		return fmt.Errorf("kafka admin client: %w", err)
	}
	defer admin.Close()
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	md, err := admin.GetMetadata(nil, false, int(max(timeout, time.Millisecond).Milliseconds()))
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if len(md.Brokers) == 0 {
		return errors.New("metadata lists no broker")
	}
	return nil
}
