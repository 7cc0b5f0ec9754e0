//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/internal/events"
)

// topicReader reads a topic from the end it had when the reader was made, so a test sees only the
// records its own actions produced (and those of tests running at the same time).
type topicReader struct {
	t        testing.TB
	consumer *kafka.Consumer
	topic    string
	start    map[int32]int64 // offset each partition was read from
}

func newTopicReader(t testing.TB, topic string) *topicReader {
	t.Helper()
	return newTopicReaderWith(t, topic, "read_committed")
}

// newTopicReaderWith is newTopicReader with the given isolation.level; read_uncommitted also
// sees the records of transactions that were aborted.
func newTopicReaderWith(t testing.TB, topic, isolation string) *topicReader {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  st.bootstrap,
		"group.id":           fmt.Sprintf("e2e-%s-%d", t.Name(), time.Now().UnixNano()),
		"enable.auto.commit": false,
		"isolation.level":    isolation,
	})
	if err != nil {
		t.Fatalf("kafka consumer: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	var parts []kafka.TopicPartition
	start := map[int32]int64{}
	for _, p := range md.Topics[topic].Partitions {
		_, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			t.Fatalf("watermarks of %s[%d]: %v", topic, p.ID, err)
		}
		start[p.ID] = high
		parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.Offset(high)})
	}
	if err := c.Assign(parts); err != nil {
		t.Fatalf("assign %s: %v", topic, err)
	}
	return &topicReader{t: t, consumer: c, topic: topic, start: start}
}

// readUntil collects records until done says the collection is complete or the timeout passes,
// in which case the test fails with what was seen.
func (r *topicReader) readUntil(timeout time.Duration, done func(seen []*kafka.Message) bool) []*kafka.Message {
	r.t.Helper()
	var seen []*kafka.Message
	deadline := time.Now().Add(timeout)
	for !done(seen) {
		if time.Now().After(deadline) {
			r.t.Fatalf("after %s on %s, still waiting; saw %d records: %s", timeout, r.topic, len(seen), describe(seen))
		}
		switch ev := r.consumer.Poll(200).(type) {
		case *kafka.Message:
			seen = append(seen, ev)
		case kafka.Error:
			r.t.Logf("kafka: %v", ev)
		}
	}
	return seen
}

// drain reads every record up to the partitions' current ends.
func (r *topicReader) drain(timeout time.Duration) []*kafka.Message {
	r.t.Helper()
	md, err := r.consumer.GetMetadata(&r.topic, false, 10000)
	if err != nil {
		r.t.Fatalf("metadata: %v", err)
	}
	ends := map[int32]int64{}
	for _, p := range md.Topics[r.topic].Partitions {
		_, high, err := r.consumer.QueryWatermarkOffsets(r.topic, p.ID, 10000)
		if err != nil {
			r.t.Fatalf("watermarks: %v", err)
		}
		ends[p.ID] = high
	}
	return r.readUntil(timeout, func([]*kafka.Message) bool {
		pos, err := r.consumer.Position(assigned(r.consumer))
		if err != nil {
			return false
		}
		for _, p := range pos {
			if r.start[p.Partition] >= ends[p.Partition] {
				continue // nothing was written there since the reader was made
			}
			// Position is invalid (negative) until a record of the partition was read.
			if p.Offset < 0 || int64(p.Offset) < ends[p.Partition] {
				return false
			}
		}
		return true
	})
}

func assigned(c *kafka.Consumer) []kafka.TopicPartition {
	parts, _ := c.Assignment()
	return parts
}

func header(m *kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func describe(ms []*kafka.Message) string {
	s := ""
	for _, m := range ms {
		typ, _ := header(m, events.HeaderType)
		s += fmt.Sprintf("\n  [%d@%d] key=%s type=%s", m.TopicPartition.Partition, m.TopicPartition.Offset, m.Key, typ)
	}
	return s
}
