// Package producer is the idempotent Kafka producer the consumer runtime (retry and DLQ copies)
// and pipelinectl's DLQ replay write with.
package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/todocdc/pipeline/kafkaconf"
)

// Producer writes records durably on an idempotent Kafka producer: enable.idempotence=true, acks=all,
// so a retried send never writes a record twice and an acknowledged one survives a broker loss.
type Producer struct {
	p     *kafka.Producer
	done  chan struct{}
	fatal atomic.Pointer[error]
}

// ErrNotDelivered is wrapped by the errors of a send that failed but may pass if tried again
// (a broker unreachable, a timeout): the consumer runtime classifies it as transient.
var ErrNotDelivered = errors.New("record not delivered")

// ErrFatal is wrapped by the errors of a producer that hit a fatal error (e.g. the
// idempotent producer lost its sequence): it will never write again, the process must restart.
var ErrFatal = errors.New("fatal producer error")

// New connects an idempotent producer; extra settings are added to (or override) its defaults.
func New(kc kafkaconf.Client, log *slog.Logger, extra kafka.ConfigMap) (*Producer, error) {
	if log == nil {
		log = slog.Default()
	}
	p, err := kafka.NewProducer(kc.ConfigMap(producerConfig(extra)))
	if err != nil {
		return nil, fmt.Errorf("producer: create: %w", err)
	}
	pr := &Producer{p: p, done: make(chan struct{})}
	go func() { // errors that belong to no record (a fatal idempotence error, a broker down)
		defer close(pr.done)
		for ev := range p.Events() {
			if e, ok := ev.(kafka.Error); ok {
				if e.IsFatal() {
					pr.setFatal(e)
					log.Error("producer: fatal error, nothing more can be written", "err", e)
				} else {
					log.Warn("producer", "err", e)
				}
			}
		}
	}()
	return pr, nil
}

func (p *Producer) setFatal(err error) {
	e := fmt.Errorf("%w: %w", ErrFatal, err)
	p.fatal.CompareAndSwap(nil, &e)
}

// Err returns the fatal error the producer hit (wrapping ErrFatal), nil while it works.
func (p *Producer) Err() error {
	if e := p.fatal.Load(); e != nil {
		return *e
	}
	return nil
}

// checkFatal looks for a fatal error after a failed send: its delivery report may come before
// the error event.
func (p *Producer) checkFatal() error {
	if err := p.Err(); err != nil {
		return err
	}
	if err := p.p.GetFatalError(); err != nil {
		p.setFatal(err)
		return p.Err()
	}
	return nil
}

// producerConfig is the producer's configuration: idempotent, acks=all, and Java's partitioner
// (murmur2_random, librdkafka's default is consistent_random): a keyed record the runtime or a
// DLQ replay writes lands on the partition Debezium's (Java) producer puts that key on, so a
// replayed event stays in order with the other events of its todo.
func producerConfig(extra kafka.ConfigMap) kafka.ConfigMap {
	cfg := kafka.ConfigMap{
		"enable.idempotence": true,
		"acks":               "all",
		"linger.ms":          5,
		"partitioner":        "murmur2_random",
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

// Publish writes m and returns once the broker has acknowledged it (acks=all), or with an error
// wrapping ErrNotDelivered, or ctx's error. It is safe for concurrent use. After a fatal producer error it returns that error (wrapping
// ErrFatal), never retriable.
func (p *Producer) Publish(ctx context.Context, m *kafka.Message) error {
	if err := p.Err(); err != nil {
		return err
	}
	ch := make(chan kafka.Event, 1)
	if err := p.p.Produce(m, ch); err != nil {
		if ferr := p.checkFatal(); ferr != nil {
			return ferr
		}
		return fmt.Errorf("%w: produce to %s: %w", ErrNotDelivered, *m.TopicPartition.Topic, err)
	}
	select {
	case ev := <-ch:
		dm := ev.(*kafka.Message)
		if dm.TopicPartition.Error != nil {
			if ferr := p.checkFatal(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("%w: produce to %s: %w", ErrNotDelivered, *m.TopicPartition.Topic, dm.TopicPartition.Error)
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
