package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/producer"
)

// The runtime's failure policy is a chain of steps around one handler type (watermill's
// middleware shape): each step does one thing and is tested alone. For a record, outermost first:
//
//	ownRetries -> countConsumed -> awaitRetryTime -> deadLetter -> retryInPlace -> apply
//
// A batch of the main topic is counted, applied together, and a record that fails in it goes
// through deadLetter -> retryInPlace -> apply on its own (see processBatch).

// scope is what a record's handling runs under. run bounds the work (a handler's transaction, a
// retry/DLQ copy's publishing: a revoke lets it finish, up to ShutdownTimeout); wait bounds the
// waiting (backoffs, retry delays: a revoke or a stop abandons them); pause(true) pauses the
// partition while its head record is retried in place, pause(false) resumes it.
type scope struct {
	run, wait context.Context
	pause     func(bool)
}

// recordHandler takes one record to an outcome. nil: its offset may be stored (applied, skipped,
// or a copy forwarded). An error: the record is not done; its Class tells the steps outside what
// to do, and once s.wait has ended (a revoke, a stop) the record is left for the next owner.
type recordHandler func(s scope, m *kafka.Message) error

// step wraps a recordHandler with one policy.
type step func(next recordHandler) recordHandler

// chain wraps h in steps, the first one outermost.
func chain(h recordHandler, steps ...step) recordHandler {
	for i := len(steps) - 1; i >= 0; i-- {
		h = steps[i](h)
	}
	return h
}

// policy holds what the steps share: the consumer's settings (a pointer: they are read at each
// record), its clock, jitter, log, metrics and publisher.
type policy struct {
	cfg   *Config
	log   *slog.Logger
	m     *metrics
	pub   Publisher
	now   func() time.Time
	rnd   func() float64 // nil: math/rand
	fatal func(error)    // records a fatal publisher error: the consumer stops
}

// ownRetries drops the retry topic's records of other groups: not ours to apply, nor to count.
func (p *policy) ownRetries(next recordHandler) recordHandler {
	return func(s scope, m *kafka.Message) error {
		if *m.TopicPartition.Topic == p.cfg.RetryTopic {
			if g, _ := dlq.Header(m.Headers, dlq.HeaderGroup); g != p.cfg.GroupID {
				return nil
			}
		}
		return next(s, m)
	}
}

// countConsumed counts the record in consumer_records_consumed_total.
func (p *policy) countConsumed(next recordHandler) recordHandler {
	return func(s scope, m *kafka.Message) error {
		p.m.consumed.WithLabelValues(*m.TopicPartition.Topic).Inc()
		return next(s, m)
	}
}

// awaitRetryTime holds a record of the retry topic until its retry_not_before time; a stop
// abandons the wait (the record is left for the next owner).
func (p *policy) awaitRetryTime(next recordHandler) recordHandler {
	return func(s scope, m *kafka.Message) error {
		if *m.TopicPartition.Topic == p.cfg.RetryTopic {
			if t, err := time.Parse(time.RFC3339Nano, dlq.HeaderOr(m.Headers, dlq.HeaderRetryNotBefore, "")); err == nil {
				if !sleep(s.wait, t.Sub(p.now())) {
					return s.wait.Err()
				}
			}
		}
		return next(s, m)
	}
}

// retryInPlace tries the record again on this delivery: a transient failure with backoff for as
// long as it takes, its partition paused meanwhile; a retriable one up to InPlaceAttempts times
// in all. It returns the last error of a record it gives up on (retriable or permanent), or
// s.wait's error once that has ended.
func (p *policy) retryInPlace(next recordHandler) recordHandler {
	return func(s scope, m *kafka.Message) error {
		defer s.pause(false)
		var transient, inPlace int
		for {
			err := next(s, m)
			if err == nil {
				return nil
			}
			if s.wait.Err() != nil {
				return s.wait.Err()
			}
			class := Classify(err)
			where := []any{"topic", *m.TopicPartition.Topic, "partition", m.TopicPartition.Partition, "offset", int64(m.TopicPartition.Offset), "err", err}
			var d time.Duration
			switch class {
			case Transient:
				s.pause(true)
				d = p.cfg.Backoff.Delay(transient, p.rnd)
				transient++
				p.log.Warn("transient failure: partition paused, retrying in place", append(where, "attempt", transient, "in", d)...)
			case Retriable:
				inPlace++
				if inPlace >= p.cfg.InPlaceAttempts {
					return err
				}
				d = p.cfg.Backoff.Delay(inPlace-1, p.rnd)
				p.log.Warn("handler failed, retrying in place", append(where, "attempt", inPlace, "in", d)...)
			default:
				return err
			}
			p.m.retried.WithLabelValues("in_place", class.String()).Inc()
			if !sleep(s.wait, d) {
				return s.wait.Err()
			}
		}
	}
}

// deadLetter takes a record the steps inside gave up on to an outcome: to the retry topic (a
// retriable error, rounds left) or to the DLQ, and returns once Kafka has the copy. A transient
// error, or any error once s.wait has ended, is returned as it is: never dead-lettered.
func (p *policy) deadLetter(next recordHandler) recordHandler {
	return func(s scope, m *kafka.Message) error {
		err := next(s, m)
		if err == nil || s.wait.Err() != nil {
			return err
		}
		class := Classify(err)
		if class == Transient {
			return err
		}
		return p.forward(s, m, err, class)
	}
}

// forward sends m to the retry topic (a retriable error, rounds left) or to the DLQ, and waits
// until Kafka has it. Publishing is retried for as long as it takes: the record's offset is
// stored only once its copy is safe. A send in flight runs under s.run; after a failed send, a
// stop (s.wait ended) abandons the record to the next owner. A fatal producer error stops the
// consumer.
func (p *policy) forward(s scope, m *kafka.Message, cause error, class Class) error {
	now := p.now()
	f := dlq.FailureOf(m, p.cfg.GroupID, cause, class, now)
	out := &kafka.Message{Key: m.Key, Value: m.Value}
	var what string
	if class == Retriable && f.RetryCount < p.cfg.MaxRetries {
		f.RetryCount++
		delay := p.cfg.RetryDelay << min(f.RetryCount-1, 4)
		out.TopicPartition = kafka.TopicPartition{Topic: &p.cfg.RetryTopic, Partition: kafka.PartitionAny}
		out.Headers = append(dlq.FailureHeaders(m.Headers, f),
			kafka.Header{Key: dlq.HeaderRetryNotBefore, Value: []byte(now.Add(delay).UTC().Format(time.RFC3339Nano))})
		what = "retry topic"
	} else {
		out.TopicPartition = kafka.TopicPartition{Topic: &p.cfg.DLQTopic, Partition: kafka.PartitionAny}
		out.Headers = dlq.FailureHeaders(m.Headers, f)
		what = "DLQ"
	}
	for n := 0; ; n++ {
		err := p.pub.Publish(s.run, out)
		if err == nil {
			break
		}
		if s.run.Err() != nil {
			return s.run.Err()
		}
		if errors.Is(err, producer.ErrFatal) {
			p.fatal(err)
			p.log.Error("cannot publish to the "+what+": the producer failed for good, stopping", "err", err)
			return err
		}
		d := p.cfg.Backoff.Delay(n, p.rnd)
		if s.wait.Err() != nil {
			return s.wait.Err()
		}
		p.log.Warn("cannot publish to the "+what+", retrying", "err", err, "in", d)
		if !sleep(s.wait, d) {
			return s.wait.Err()
		}
	}
	if what == "DLQ" {
		p.m.deadLettered.WithLabelValues(f.Class.String()).Inc()
	} else {
		p.m.retried.WithLabelValues("retry_topic", class.String()).Inc()
	}
	p.log.Warn("record sent to the "+what, "topic", *m.TopicPartition.Topic, "partition", m.TopicPartition.Partition,
		"offset", int64(m.TopicPartition.Offset), "retry_count", f.RetryCount, "class", class.String(), "err", cause)
	return nil
}

// firstThen is h whose first call returns first instead (when first is not nil): an attempt
// already made, in a batch, counts as the record's first.
func firstThen(first error, h recordHandler) recordHandler {
	return func(s scope, m *kafka.Message) error {
		if err := first; err != nil {
			first = nil
			return err
		}
		return h(s, m)
	}
}

// recoverPanics turns a panic of h into a permanent error (the record goes to the DLQ with the
// panic value and the stack, the transaction rolls back) instead of crashing the consumer, which
// would crash-loop on the same record.
func recoverPanics(h HandlerFunc) HandlerFunc {
	return func(ctx context.Context, tx *sql.Tx, m *Message, ev events.Event) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = PermanentError(fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack()))
			}
		}()
		return h(ctx, tx, m, ev)
	}
}
