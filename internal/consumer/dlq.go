package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// DLQEntry is one dead-lettered record with what its headers say, and whether it was replayed.
// A replay is recorded in the DLQ itself: a marker record (no value, header replayed_dlq_offset =
// the entry's offset, in the entry's partition) written after the replayed copy was acknowledged.
type DLQEntry struct {
	Partition  int32
	Offset     int64
	Timestamp  time.Time
	Key        []byte
	Value      []byte
	Headers    []kafka.Header
	Failure    Failure
	ReplayedAt time.Time // zero: not replayed
	ReplayedTo string
}

// ParseFailure reads the failure headers of a DLQ record.
func ParseFailure(hs []kafka.Header) Failure {
	f := Failure{Topic: headerOr(hs, HeaderOriginalTopic, ""), Err: headerOr(hs, HeaderError, ""),
		Group: headerOr(hs, HeaderGroup, ""), RetryCount: RetryCount(hs), Class: Retriable}
	if headerOr(hs, HeaderErrorClass, "") == Permanent.String() {
		f.Class = Permanent
	}
	if p, err := strconv.ParseInt(headerOr(hs, HeaderOriginalPartition, ""), 10, 32); err == nil {
		f.Partition = int32(p)
	}
	f.Offset, _ = strconv.ParseInt(headerOr(hs, HeaderOriginalOffset, "-1"), 10, 64)
	f.FirstFailure, _ = time.Parse(time.RFC3339Nano, headerOr(hs, HeaderFirstFailure, ""))
	f.FailedAt, _ = time.Parse(time.RFC3339Nano, headerOr(hs, HeaderFailedAt, ""))
	return f
}

// ReadDLQ reads topic from its start to its current end (read_committed, no consumer group) and
// returns its entries in order, replay markers folded into the entries they name. Each request
// to Kafka waits until ctx's deadline (10 s without one); librdkafka's own logs are off, the
// error returned says what failed.
func ReadDLQ(ctx context.Context, bootstrap, topic string) ([]DLQEntry, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           "pipelinectl-dlq", // required by the client; no offsets are committed
		"enable.auto.commit": false,
		"isolation.level":    "read_committed",
		"log_level":          2, // critical only: connection failures come back as errors
	})
	if err != nil {
		return nil, fmt.Errorf("dlq: consumer: %w", err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, timeoutMs(ctx))
	if err != nil {
		return nil, fmt.Errorf("dlq: metadata of %s: %w", topic, err)
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() != kafka.ErrNoError {
		return nil, fmt.Errorf("dlq: topic %s: %v", topic, tm.Error)
	}
	ends := map[int32]int64{}
	var parts []kafka.TopicPartition
	for _, p := range tm.Partitions {
		low, high, err := c.QueryWatermarkOffsets(topic, p.ID, timeoutMs(ctx))
		if err != nil {
			return nil, fmt.Errorf("dlq: watermarks of %s[%d]: %w", topic, p.ID, err)
		}
		if high > low {
			ends[p.ID] = high
			parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.Offset(low)})
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	if err := c.Assign(parts); err != nil {
		return nil, fmt.Errorf("dlq: assign: %w", err)
	}
	var entries []DLQEntry
	type mark struct {
		at time.Time
		to string
	}
	marks := map[[2]int64]mark{}
	done := func() bool {
		pos, err := c.Position(parts)
		if err != nil {
			return false
		}
		for _, p := range pos {
			if int64(p.Offset) < ends[p.Partition] {
				return false
			}
		}
		return true
	}
	for !done() {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("dlq: reading %s: %w", topic, err)
		}
		switch ev := c.Poll(200).(type) {
		case *kafka.Message:
			tp := ev.TopicPartition
			if o, to, ok := replayMarkerOf(ev); ok {
				at, _ := time.Parse(time.RFC3339Nano, headerOr(ev.Headers, HeaderReplayedAt, ""))
				marks[[2]int64{int64(tp.Partition), o}] = mark{at, to}
				continue
			}
			entries = append(entries, DLQEntry{Partition: tp.Partition, Offset: int64(tp.Offset), Timestamp: ev.Timestamp,
				Key: ev.Key, Value: ev.Value, Headers: ev.Headers, Failure: ParseFailure(ev.Headers)})
		case kafka.Error:
			if ev.IsFatal() || ev.Code() == kafka.ErrAllBrokersDown {
				return nil, fmt.Errorf("dlq: %w", ev)
			}
		}
	}
	for i := range entries {
		if m, ok := marks[[2]int64{int64(entries[i].Partition), entries[i].Offset}]; ok {
			entries[i].ReplayedAt, entries[i].ReplayedTo = m.at, m.to
		}
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].Partition != entries[j].Partition {
			return entries[i].Partition < entries[j].Partition
		}
		return entries[i].Offset < entries[j].Offset
	})
	return entries, nil
}

// timeoutMs is what is left of ctx's deadline in milliseconds for a librdkafka call that takes a
// timeout (at least 1), or 10 s when ctx has none.
func timeoutMs(ctx context.Context) int {
	d, ok := ctx.Deadline()
	if !ok {
		return 10_000
	}
	return max(1, int(time.Until(d).Milliseconds()))
}

// replayMarkerOf recognises a replay marker: no value, and both replayed_dlq_offset (a number)
// and replayed_to_topic. A dead-lettered record of a replay (it carries replayed_dlq_offset but
// not replayed_to_topic) is an entry, not a marker, even with an empty value.
func replayMarkerOf(m *kafka.Message) (offset int64, to string, ok bool) {
	if len(m.Value) != 0 {
		return 0, "", false
	}
	of, ok1 := Header(m.Headers, HeaderReplayOf)
	to, ok2 := Header(m.Headers, HeaderReplayTopic)
	if !ok1 || !ok2 || to == "" {
		return 0, "", false
	}
	o, err := strconv.ParseInt(of, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return o, to, true
}

// ReplayMessage is the record a replay of e writes: e's key, value and original headers (the
// runtime's failure headers removed, so it starts with a clean retry count) and two headers
// saying it is a replay of which DLQ offset. Its ce_id is unchanged, so a consumer group that
// had in fact applied the event skips it as a duplicate.
func ReplayMessage(e DLQEntry, topic string, now time.Time) *kafka.Message {
	hs := append(StripFailureHeaders(e.Headers),
		kafka.Header{Key: HeaderReplayedAt, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
		kafka.Header{Key: HeaderReplayOf, Value: []byte(strconv.FormatInt(e.Offset, 10))})
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key: e.Key, Value: e.Value, Headers: hs}
}

// ReplayMarker is the DLQ record that records the replay of e to topic.
func ReplayMarker(e DLQEntry, dlqTopic, topic string, now time.Time) *kafka.Message {
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &dlqTopic, Partition: e.Partition},
		Key: e.Key, Headers: []kafka.Header{
			{Key: HeaderReplayOf, Value: []byte(strconv.FormatInt(e.Offset, 10))},
			{Key: HeaderReplayedAt, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
			{Key: HeaderReplayTopic, Value: []byte(topic)},
		}}
}

// Replay writes e back to topic (its original topic when empty), then the marker into the DLQ,
// each acknowledged before the next step. A crash between the two leaves the entry unmarked: a
// second replay sends it again, which the consumers' deduplication absorbs.
func Replay(ctx context.Context, pub Publisher, dlqTopic string, e DLQEntry, topic string, now time.Time) (string, error) {
	if topic == "" {
		topic = e.Failure.Topic
	}
	if topic == "" {
		return "", errors.New("the record names no original topic: give one")
	}
	if err := pub.Publish(ctx, ReplayMessage(e, topic, now)); err != nil {
		return "", fmt.Errorf("replay offset %d to %s: %w", e.Offset, topic, err)
	}
	if err := pub.Publish(ctx, ReplayMarker(e, dlqTopic, topic, now)); err != nil {
		return topic, fmt.Errorf("replayed offset %d to %s, but recording it in %s failed: %w", e.Offset, topic, dlqTopic, err)
	}
	return topic, nil
}
