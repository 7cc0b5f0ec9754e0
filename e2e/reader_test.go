//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/topicreader"
)

// topicReader reads a topic from the end it had when the reader was made, so a test sees only the
// records its own actions produced (and those of tests running at the same time).
type topicReader struct {
	t     testing.TB
	r     *topicreader.Reader
	topic string
}

func newTopicReader(t testing.TB, topic string) *topicReader {
	t.Helper()
	return newTopicReaderWith(t, topic, "read_committed")
}

// newTopicReaderWith is newTopicReader with the given isolation.level; read_uncommitted also
// sees the records of transactions that were aborted.
func newTopicReaderWith(t testing.TB, topic, isolation string) *topicReader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := topicreader.Open(ctx, topicreader.Config{Kafka: st.kafka, Topic: topic,
		GroupID: fmt.Sprintf("e2e-%s-%d", t.Name(), time.Now().UnixNano()), ReadUncommitted: isolation == "read_uncommitted"})
	if err != nil {
		t.Fatalf("reader of %s: %v", topic, err)
	}
	t.Cleanup(r.Close)
	return &topicReader{t: t, r: r, topic: topic}
}

// poll waits up to d for a record (nil when none came); an error the reader cannot go on after
// is returned.
func (r *topicReader) poll(d time.Duration) (*kafka.Message, error) {
	return r.r.Poll(d)
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
		m, err := r.poll(200 * time.Millisecond)
		if err != nil {
			r.t.Fatalf("reading %s: %v", r.topic, err)
		}
		if m != nil {
			seen = append(seen, m)
		}
	}
	return seen
}

// drain reads every record up to the partitions' current ends.
func (r *topicReader) drain(timeout time.Duration) []*kafka.Message {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seen, err := r.r.ReadAll(ctx)
	if err != nil {
		r.t.Fatalf("after %s on %s, still waiting for the end (%v); saw %d records: %s", timeout, r.topic, err, len(seen), describe(seen))
	}
	return seen
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
