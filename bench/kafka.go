package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/topics"
	"github.com/todocdc/pipeline/kafkaconf"
)

// arrival is when a record was first read, and its ce_id header.
type arrival struct {
	At      time.Time
	EventID string
}

// reader reads a topic with isolation.level=read_committed from its end at start, and keeps when
// each key first arrived: "readable in Kafka" in the report is this reader's Poll returning it.
type reader struct {
	c    *kafka.Consumer
	mu   sync.Mutex
	seen map[string]arrival
	stop chan struct{}
	done chan struct{}
}

func newReader(kc kafkaconf.Client, topic string) (*reader, error) {
	c, err := kafka.NewConsumer(kc.ConfigMap(kafka.ConfigMap{
		"group.id":           "bench-reader-" + uuid.NewString(), // never commits: assign, not subscribe
		"isolation.level":    "read_committed",
		"enable.auto.commit": false,
		"log_level":          3,
	}))
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil || md.Topics[topic].Error.Code() != kafka.ErrNoError {
		c.Close()
		return nil, fmt.Errorf("reader: metadata of %s: %v %v", topic, err, md)
	}
	var tps []kafka.TopicPartition
	for _, p := range md.Topics[topic].Partitions {
		_, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("reader: end of %s[%d]: %w", topic, p.ID, err)
		}
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.Offset(high)})
	}
	if err := c.Assign(tps); err != nil {
		c.Close()
		return nil, fmt.Errorf("reader: assign: %w", err)
	}
	r := &reader{c: c, seen: map[string]arrival{}, stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r, nil
}

func (r *reader) loop() {
	defer close(r.done)
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		m, ok := r.c.Poll(50).(*kafka.Message)
		if !ok || m.TopicPartition.Error != nil {
			continue
		}
		at := time.Now()
		var id string
		for _, h := range m.Headers {
			if h.Key == events.HeaderID {
				id = string(h.Value)
			}
		}
		r.mu.Lock()
		if _, dup := r.seen[string(m.Key)]; !dup {
			r.seen[string(m.Key)] = arrival{At: at, EventID: id}
		}
		r.mu.Unlock()
	}
}

func (r *reader) get(key string) (arrival, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.seen[key]
	return a, ok
}

// waitAll waits until every key has arrived, or timeout; it returns how many did.
func (r *reader) waitAll(ctx context.Context, keys []string, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	pending := keys
	for {
		var left []string // only the keys not seen yet are looked at again
		r.mu.Lock()
		for _, k := range pending {
			if _, ok := r.seen[k]; !ok {
				left = append(left, k)
			}
		}
		r.mu.Unlock()
		pending = left
		if len(pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return len(keys) - len(pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *reader) close() {
	close(r.stop)
	<-r.done
	r.c.Close()
}

// ensureTopic creates topic with 6 partitions (like the main topic) unless it exists.
func ensureTopic(ctx context.Context, kc kafkaconf.Client, name string) error {
	a, err := topics.NewAdmin(kc, 30*time.Second)
	if err != nil {
		return err
	}
	defer a.Close()
	have, err := a.Describe(ctx, []string{name})
	if err != nil {
		return err
	}
	if _, ok := have[name]; ok {
		return nil
	}
	return a.Create(ctx, topics.Topic{Name: name, Partitions: 6, ReplicationFactor: 1})
}
