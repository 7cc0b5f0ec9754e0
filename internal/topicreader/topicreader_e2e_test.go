//go:build e2e

package topicreader_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	ct "github.com/todocdc/pipeline/internal/consumertest"
	"github.com/todocdc/pipeline/internal/topicreader"
)

// TestReaderStartsAndEnds: on a scratch topic of two partitions holding records written at known
// times, each start (beginning, end, offset, time) reads what it should, a bounded read stops at
// the high watermark, a reader from the end sees only later records, and a missing topic or
// partition is ErrNoTopic.
func TestReaderStartsAndEnds(t *testing.T) {
	e := ct.LoadEnv(t)
	topic := ct.Topic(t, e, 2)
	pub := ct.Producer(t, e)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var ms []*kafka.Message
	for i := range 6 { // partition i%2, offsets 0..2 in each, timestamps base+i minutes
		ms = append(ms, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: int32(i % 2)},
			Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint("v", i)), Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}
	ct.Publish(t, pub, ms...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	keys := func(cfg topicreader.Config) []string {
		t.Helper()
		cfg.Kafka, cfg.Topic, cfg.StopAtEnd = e.Kafka, topic, true
		r, err := topicreader.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("open %v: %v", cfg.Start, err)
		}
		defer r.Close()
		got, err := r.ReadAll(ctx)
		if err != nil {
			t.Fatalf("read from %v: %v", cfg.Start, err)
		}
		out := []string{}
		for _, m := range got {
			out = append(out, fmt.Sprintf("%d@%d:%s", m.TopicPartition.Partition, m.TopicPartition.Offset, m.Key))
		}
		return out
	}
	for _, tc := range []struct {
		cfg  topicreader.Config
		want int
		some []string
	}{
		{topicreader.Config{Start: topicreader.FromBeginning()}, 6, []string{"0@0:0", "1@2:5"}},
		{topicreader.Config{Start: topicreader.FromBeginning(), Partitions: []int32{1}}, 3, []string{"1@0:1", "1@2:5"}},
		{topicreader.Config{Start: topicreader.AtOffset(2)}, 2, []string{"0@2:4", "1@2:5"}},
		{topicreader.Config{Start: topicreader.Since(base.Add(3 * time.Minute))}, 3, []string{"1@1:3", "0@2:4", "1@2:5"}},
		{topicreader.Config{Start: topicreader.Since(time.Now().Add(time.Hour))}, 0, nil},
		{topicreader.Config{Start: topicreader.FromEnd()}, 0, nil},
	} {
		got := keys(tc.cfg)
		if len(got) != tc.want {
			t.Errorf("from %v (partitions %v): %v, want %d records", tc.cfg.Start, tc.cfg.Partitions, got, tc.want)
		}
		for _, k := range tc.some {
			found := false
			for _, g := range got {
				found = found || g == k
			}
			if !found {
				t.Errorf("from %v: %v, want %s among them", tc.cfg.Start, got, k)
			}
		}
	}

	follow, err := topicreader.Open(ctx, topicreader.Config{Kafka: e.Kafka, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer follow.Close()
	later := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 1}, Key: []byte("later")}
	ct.Publish(t, pub, later)
	m, err := follow.Next(ctx)
	if err != nil || string(m.Key) != "later" || m.TopicPartition.Offset != 3 {
		t.Fatalf("from the end: %v %v, want the record written after opening (1@3)", m, err)
	}
	if err := follow.StopAtCurrentEnd(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := follow.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after the end: %v %v, want io.EOF", m, err)
	}

	for _, cfg := range []topicreader.Config{{Topic: topic + ".missing"}, {Topic: topic, Partitions: []int32{7}}} {
		cfg.Kafka = e.Kafka
		if r, err := topicreader.Open(ctx, cfg); !errors.Is(err, topicreader.ErrNoTopic) {
			if r != nil {
				r.Close()
			}
			t.Errorf("open %s partitions %v: %v, want ErrNoTopic", cfg.Topic, cfg.Partitions, err)
		}
	}
}

// TestReaderAtOffsetsStopsAt: each partition read from its own offset up to its own end returns
// every record in between once, then io.EOF; Starts reports where each partition started, for
// AtOffsets and for FromEnd (the high watermarks).
func TestReaderAtOffsetsStopsAt(t *testing.T) {
	e := ct.LoadEnv(t)
	topic := ct.Topic(t, e, 2)
	pub := ct.Producer(t, e)
	var ms []*kafka.Message
	for i := range 6 { // partition i%2, offsets 0..2 in each
		ms = append(ms, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: int32(i % 2)},
			Key: []byte(fmt.Sprint(i))})
	}
	ct.Publish(t, pub, ms...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	from, end := map[int32]int64{0: 1, 1: 0}, map[int32]int64{0: 2, 1: 3}
	r, err := topicreader.Open(ctx, topicreader.Config{Kafka: e.Kafka, Topic: topic,
		Start: topicreader.AtOffsets(from), StopAt: end})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Starts(); !maps.Equal(got, from) {
		t.Errorf("Starts: %v, want %v", got, from)
	}
	got, err := r.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range got {
		if tp := m.TopicPartition; int64(tp.Offset) < end[tp.Partition] {
			seen[fmt.Sprintf("%d@%d", tp.Partition, tp.Offset)]++
		}
	}
	if want := map[string]int{"0@1": 1, "1@0": 1, "1@1": 1, "1@2": 1}; !maps.Equal(seen, want) {
		t.Errorf("read below the ends %v: %v, want %v", end, seen, want)
	}

	last, err := topicreader.Open(ctx, topicreader.Config{Kafka: e.Kafka, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer last.Close()
	if got, want := last.Starts(), map[int32]int64{0: 3, 1: 3}; !maps.Equal(got, want) {
		t.Errorf("Starts from the end: %v, want the high watermarks %v", got, want)
	}
}
