package consumer

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Publisher writes records durably. Publish returns once the broker has acknowledged the record
// (acks=all), or with an error. It must be safe for concurrent use.
type Publisher interface {
	Publish(ctx context.Context, m *kafka.Message) error
}

// Producer is the Publisher on an idempotent Kafka producer: enable.idempotence=true, acks=all,
// so a retried send never writes a record twice and an acknowledged one survives a broker loss.
type Producer struct {
	p    *kafka.Producer
	done chan struct{}
}

// NewProducer connects an idempotent producer; extra settings are added to (or override) its defaults.
func NewProducer(bootstrap string, log *slog.Logger, extra kafka.ConfigMap) (*Producer, error) {
	if log == nil {
		log = slog.Default()
	}
	cfg := kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"enable.idempotence": true,
		"acks":               "all",
		"linger.ms":          5,
	}
	for k, v := range extra {
		cfg[k] = v
	}
	p, err := kafka.NewProducer(&cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer: create producer: %w", err)
	}
	pr := &Producer{p: p, done: make(chan struct{})}
	go func() { // errors that belong to no record (a fatal idempotence error, a broker down)
		defer close(pr.done)
		for ev := range p.Events() {
			if e, ok := ev.(kafka.Error); ok {
				log.Warn("producer", "err", e, "fatal", e.IsFatal())
			}
		}
	}()
	return pr, nil
}

// Publish implements Publisher.
func (p *Producer) Publish(ctx context.Context, m *kafka.Message) error {
	ch := make(chan kafka.Event, 1)
	if err := p.p.Produce(m, ch); err != nil {
		return TransientError(fmt.Errorf("produce to %s: %w", *m.TopicPartition.Topic, err))
	}
	select {
	case ev := <-ch:
		dm := ev.(*kafka.Message)
		if dm.TopicPartition.Error != nil {
			return TransientError(fmt.Errorf("produce to %s: %w", *m.TopicPartition.Topic, dm.TopicPartition.Error))
		}
		return nil
	case <-ctx.Done():
		// The record may still be written (message.timeout.ms bounds it); the caller does not store
		// the offset, so at worst the record is sent again: the readers deduplicate by ce_id.
		return ctx.Err()
	}
}

// Close flushes what is queued (up to 10 s) and closes the producer.
func (p *Producer) Close() {
	p.p.Flush(10_000)
	p.p.Close()
	<-p.done
}
