package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/topicreader"
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
	r    *topicreader.Reader
	log  *slog.Logger
	mu   sync.Mutex
	seen map[string]arrival
	stop chan struct{}
	done chan struct{}
}

// newReader opens a reader of topic from its end.
func (b *bench) newReader(ctx context.Context, topic string) (*reader, error) {
	tr, err := topicreader.Open(ctx, topicreader.Config{Kafka: b.c.Kafka, Topic: topic,
		GroupID: "bench-reader-" + uuid.NewString(), Log: b.log})
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	r := &reader{r: tr, log: b.log, seen: map[string]arrival{}, stop: make(chan struct{}), done: make(chan struct{})}
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
		m, err := r.r.Poll(50 * time.Millisecond)
		if err != nil {
			r.log.Warn("bench reader", "topic", r.r.Topic(), "err", err)
			continue
		}
		if m == nil {
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
	r.r.Close()
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
