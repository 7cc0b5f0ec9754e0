package dlq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/internal/topicreader"
	"github.com/todocdc/pipeline/kafkaconf"
)

// Entry is one dead-lettered record with what its headers say, and whether it was replayed.
// A replay is recorded in the DLQ itself: a marker record (no value, header replayed_dlq_offset =
// the entry's offset, in the entry's partition) written after the replayed copy was acknowledged.
type Entry struct {
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

// Publisher writes records durably. Publish returns once the broker has acknowledged the record
// (acks=all), or with an error. It must be safe for concurrent use; *producer.Producer is one.
type Publisher interface {
	Publish(ctx context.Context, m *kafka.Message) error
}

// ParseFailure reads the failure headers of a DLQ record.
func ParseFailure(hs []kafka.Header) Failure {
	f := Failure{Topic: HeaderOr(hs, HeaderOriginalTopic, ""), Err: HeaderOr(hs, HeaderError, ""),
		Group: HeaderOr(hs, HeaderGroup, ""), RetryCount: RetryCount(hs), Class: Retriable}
	if HeaderOr(hs, HeaderErrorClass, "") == Permanent.String() {
		f.Class = Permanent
	}
	if p, err := strconv.ParseInt(HeaderOr(hs, HeaderOriginalPartition, ""), 10, 32); err == nil {
		f.Partition = int32(p)
	}
	f.Offset, _ = strconv.ParseInt(HeaderOr(hs, HeaderOriginalOffset, "-1"), 10, 64)
	f.FirstFailure, _ = time.Parse(time.RFC3339Nano, HeaderOr(hs, HeaderFirstFailure, ""))
	f.FailedAt, _ = time.Parse(time.RFC3339Nano, HeaderOr(hs, HeaderFailedAt, ""))
	return f
}

// Read reads topic from its start to its current end (read_committed, no consumer group) and
// returns its entries in order, replay markers folded into the entries they name. Each request
// to Kafka waits until ctx's deadline (10 s without one); librdkafka's own logs are off, the
// error returned says what failed.
func Read(ctx context.Context, kc kafkaconf.Client, topic string) ([]Entry, error) {
	r, err := topicreader.Open(ctx, topicreader.Config{Kafka: kc, Topic: topic, GroupID: "pipelinectl-dlq",
		Start: topicreader.FromBeginning(), StopAtEnd: true, FailFast: true})
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	defer r.Close()
	ms, err := r.ReadAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	return entries(ms), nil
}

// entries turns the records of a DLQ into its entries, in partition and offset order, each with
// the replay marker that names it folded in.
func entries(ms []*kafka.Message) []Entry {
	type mark struct {
		at time.Time
		to string
	}
	var out []Entry
	marks := map[[2]int64]mark{}
	for _, m := range ms {
		tp := m.TopicPartition
		if o, to, ok := replayMarkerOf(m); ok {
			at, _ := time.Parse(time.RFC3339Nano, HeaderOr(m.Headers, HeaderReplayedAt, ""))
			marks[[2]int64{int64(tp.Partition), o}] = mark{at, to}
			continue
		}
		out = append(out, Entry{Partition: tp.Partition, Offset: int64(tp.Offset), Timestamp: m.Timestamp,
			Key: m.Key, Value: m.Value, Headers: m.Headers, Failure: ParseFailure(m.Headers)})
	}
	for i := range out {
		if m, ok := marks[[2]int64{int64(out[i].Partition), out[i].Offset}]; ok {
			out[i].ReplayedAt, out[i].ReplayedTo = m.at, m.to
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
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
func ReplayMessage(e Entry, topic string, now time.Time) *kafka.Message {
	hs := append(StripFailureHeaders(e.Headers),
		kafka.Header{Key: HeaderReplayedAt, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
		kafka.Header{Key: HeaderReplayOf, Value: []byte(strconv.FormatInt(e.Offset, 10))})
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key: e.Key, Value: e.Value, Headers: hs}
}

// ReplayMarker is the DLQ record that records the replay of e to topic.
func ReplayMarker(e Entry, dlqTopic, topic string, now time.Time) *kafka.Message {
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
func Replay(ctx context.Context, pub Publisher, dlqTopic string, e Entry, topic string, now time.Time) (string, error) {
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
