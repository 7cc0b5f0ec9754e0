package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/producer"
)

var stepNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newPolicy is a policy on fakes: group "g", default topics, 3 in-place attempts, 3 rounds, backoff
// of a microsecond.
func newPolicy(pub Publisher) (*policy, *error) {
	p, fatal, _ := newPolicyGathered(pub)
	return p, fatal
}

func newPolicyGathered(pub Publisher) (*policy, *error, prometheus.Gatherer) {
	reg := prometheus.NewRegistry()
	cfg := Config{BootstrapServers: "x", GroupID: "g", Backoff: Backoff{Initial: time.Microsecond, Max: time.Microsecond}}
	cfg.setDefaults()
	var fatal error
	return &policy{cfg: &cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), m: newMetrics(reg, "g"),
		pub: pub, now: func() time.Time { return stepNow }, fatal: func(err error) { fatal = err }}, &fatal, reg
}

func bg() scope {
	return scope{run: context.Background(), wait: context.Background(), pause: func(bool) {}}
}

// failing is a recordHandler returning errs[i] at its i-th call (nil past the end), counting calls.
func failing(calls *int, errs ...error) recordHandler {
	return func(scope, *kafka.Message) error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

func TestChainPutsTheFirstStepOutermost(t *testing.T) {
	var order []string
	tag := func(name string) step {
		return func(next recordHandler) recordHandler {
			return func(s scope, m *kafka.Message) error { order = append(order, name); return next(s, m) }
		}
	}
	h := chain(func(scope, *kafka.Message) error { order = append(order, "h"); return nil }, tag("a"), tag("b"))
	if err := h(bg(), record(events.Topic, "ok", "e1", events.TypeCreated)); err != nil || !slices.Equal(order, []string{"a", "b", "h"}) {
		t.Fatalf("%v %v, want a b h", err, order)
	}
}

func TestOwnRetriesSkipsOtherGroupsRetries(t *testing.T) {
	p, _ := newPolicy(&fakePublisher{})
	var calls int
	h := p.ownRetries(failing(&calls))
	mine := record(events.RetryTopic, "ok", "e1", events.TypeCreated, kafka.Header{Key: dlq.HeaderGroup, Value: []byte("g")})
	theirs := record(events.RetryTopic, "ok", "e2", events.TypeCreated, kafka.Header{Key: dlq.HeaderGroup, Value: []byte("other")})
	for _, m := range []*kafka.Message{mine, theirs, record(events.Topic, "ok", "e3", events.TypeCreated)} {
		if err := h(bg(), m); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 2 {
		t.Fatalf("next ran %d times, want 2 (own retry and main topic)", calls)
	}
}

func TestCountConsumedCountsByTopic(t *testing.T) {
	p, _, reg := newPolicyGathered(&fakePublisher{})
	var calls int
	h := p.countConsumed(failing(&calls))
	h(bg(), record(events.Topic, "ok", "e1", events.TypeCreated))
	h(bg(), record(events.Topic, "ok", "e2", events.TypeCreated))
	if got := gathered(t, reg, "consumer_records_consumed_total", events.Topic); got != 2 || calls != 2 {
		t.Fatalf("consumed %v, calls %d: want 2, 2", got, calls)
	}
}

// A retry whose time has come goes on; one not due waits, and a stop during the wait leaves it.
func TestAwaitRetryTimeHoldsUntilDue(t *testing.T) {
	p, _ := newPolicy(&fakePublisher{})
	var calls int
	h := p.awaitRetryTime(failing(&calls))
	due := func(at time.Time) *kafka.Message {
		return record(events.RetryTopic, "ok", "e1", events.TypeCreated,
			kafka.Header{Key: dlq.HeaderRetryNotBefore, Value: []byte(at.Format(time.RFC3339Nano))})
	}
	if err := h(bg(), due(stepNow.Add(-time.Second))); err != nil || calls != 1 {
		t.Fatalf("a due retry: %v, %d calls", err, calls)
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	s := bg()
	s.wait = stopped
	if err := h(s, due(stepNow.Add(time.Hour))); !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("a retry not due at a stop: %v, %d calls; want the stop's error and no call", err, calls)
	}
}

func TestRetryInPlace(t *testing.T) {
	transient := TransientError(errors.New("db down"))
	retriable := errors.New("handler failed")
	permanent := PermanentError(errors.New("bad"))
	for _, tc := range []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   error
		wantPause []bool
	}{
		{"passes", nil, 1, nil, []bool{false}},
		{"transient until it passes, partition paused", []error{transient, transient, transient, transient}, 5, nil, []bool{true, true, true, true, false}},
		{"retriable: InPlaceAttempts tries", []error{retriable, retriable, retriable, retriable}, 3, retriable, []bool{false}},
		{"retriable then passes", []error{retriable, retriable}, 3, nil, []bool{false}},
		{"permanent: once", []error{permanent}, 1, permanent, []bool{false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newPolicy(&fakePublisher{})
			var calls int
			var pauses []bool
			s := bg()
			s.pause = func(on bool) { pauses = append(pauses, on) }
			err := p.retryInPlace(failing(&calls, tc.errs...))(s, record(events.Topic, "ok", "e1", events.TypeCreated))
			if !errors.Is(err, tc.wantErr) || err == nil && tc.wantErr != nil || calls != tc.wantCalls || !slices.Equal(pauses, tc.wantPause) {
				t.Fatalf("err %v, %d calls, pauses %v; want %v, %d, %v", err, calls, pauses, tc.wantErr, tc.wantCalls, tc.wantPause)
			}
		})
	}
	t.Run("a stop ends a transient retry", func(t *testing.T) {
		p, _ := newPolicy(&fakePublisher{})
		stopped, cancel := context.WithCancel(context.Background())
		s := bg()
		s.wait = stopped
		var calls int
		h := p.retryInPlace(func(scope, *kafka.Message) error { calls++; cancel(); return transient })
		if err := h(s, record(events.Topic, "ok", "e1", events.TypeCreated)); !errors.Is(err, context.Canceled) || calls != 1 {
			t.Fatalf("%v after %d calls, want the stop's error after 1", err, calls)
		}
	})
}

func TestDeadLetter(t *testing.T) {
	retriable := errors.New("handler failed")
	for _, tc := range []struct {
		name      string
		err       error
		retries   string // the record's retry_count header; "" none
		wantTopic string // "" nothing sent
		wantCount string
		wantErr   bool
	}{
		{"applied: nothing sent", nil, "", "", "", false},
		{"retriable, rounds left: the retry topic", retriable, "", events.RetryTopic, "1", false},
		{"retriable, last round: the DLQ", retriable, "3", events.DLQTopic, "3", false},
		{"permanent: the DLQ", PermanentError(errors.New("bad")), "", events.DLQTopic, "0", false},
		{"transient: never dead-lettered", TransientError(errors.New("db down")), "", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &fakePublisher{}
			p, _ := newPolicy(pub)
			var extra []kafka.Header
			if tc.retries != "" {
				extra = append(extra, kafka.Header{Key: dlq.HeaderRetryCount, Value: []byte(tc.retries)})
			}
			m := record(events.Topic, "ok", "e1", events.TypeCreated, extra...)
			var calls int
			var errs []error
			if tc.err != nil {
				errs = append(errs, tc.err)
			}
			err := p.deadLetter(failing(&calls, errs...))(bg(), m)
			if (err != nil) != tc.wantErr || calls != 1 {
				t.Fatalf("err %v after %d calls, want error %v after 1", err, calls, tc.wantErr)
			}
			if tc.wantTopic == "" {
				if len(pub.sent) != 0 {
					t.Fatalf("sent %d records, want none", len(pub.sent))
				}
				return
			}
			if len(pub.sent) != 1 || *pub.sent[0].TopicPartition.Topic != tc.wantTopic {
				t.Fatalf("sent %d records, want one to %s", len(pub.sent), tc.wantTopic)
			}
			if got := hdr(t, pub.sent[0], dlq.HeaderRetryCount); got != tc.wantCount {
				t.Fatalf("retry_count %s, want %s", got, tc.wantCount)
			}
		})
	}
}

// A publisher that failed for good stops the consumer (the fatal error is recorded and returned);
// one that fails for a while is retried until the copy is safe.
func TestDeadLetterPublisherFailures(t *testing.T) {
	fatal := fmt.Errorf("%w: out of order sequence", producer.ErrFatal)
	p, recorded := newPolicy(&fakePublisher{fn: func(context.Context) error { return fatal }})
	var calls int
	if err := p.deadLetter(failing(&calls, PermanentError(errors.New("bad"))))(bg(), record(events.Topic, "ok", "e1", events.TypeCreated)); !errors.Is(err, producer.ErrFatal) || !errors.Is(*recorded, producer.ErrFatal) {
		t.Fatalf("err %v, recorded %v: want the fatal error both", err, *recorded)
	}
	fails := 3
	pub := &fakePublisher{fn: func(context.Context) error {
		if fails > 0 {
			fails--
			return fmt.Errorf("%w: broker down", producer.ErrNotDelivered)
		}
		return nil
	}}
	p, _ = newPolicy(pub)
	calls = 0
	if err := p.deadLetter(failing(&calls, PermanentError(errors.New("bad"))))(bg(), record(events.Topic, "ok", "e1", events.TypeCreated)); err != nil || len(pub.sent) != 1 {
		t.Fatalf("err %v, %d sent: want the copy sent after the failures", err, len(pub.sent))
	}
}

func TestRecoverPanicsMakesAPermanentError(t *testing.T) {
	h := recoverPanics(func(context.Context, *sql.Tx, *Message, events.Event) error { panic("nil map somewhere") })
	err := h(context.Background(), nil, &Message{}, created)
	if Classify(err) != Permanent || !strings.Contains(err.Error(), "nil map somewhere") || !strings.Contains(err.Error(), "goroutine") {
		t.Fatalf("%v (class %v), want a permanent error with the panic and the stack", err, Classify(err))
	}
	ok := recoverPanics(func(context.Context, *sql.Tx, *Message, events.Event) error { return nil })
	if err := ok(context.Background(), nil, &Message{}, created); err != nil {
		t.Fatal(err)
	}
}

func TestFirstThenReturnsTheFirstErrorOnce(t *testing.T) {
	first := errors.New("batch try")
	var calls int
	h := firstThen(first, failing(&calls))
	if err := h(bg(), nil); err != first || calls != 0 {
		t.Fatalf("first call: %v, %d calls", err, calls)
	}
	if err := h(bg(), nil); err != nil || calls != 1 {
		t.Fatalf("second call: %v, %d calls", err, calls)
	}
	if err := firstThen(nil, failing(&calls))(bg(), nil); err != nil || calls != 2 {
		t.Fatalf("without a first error: %v, %d calls", err, calls)
	}
}

// apply, the innermost step: a record applied once, its duplicate skipped, an unrouted type
// skipped, an undecodable record a permanent error.
func TestApplyIsIdempotent(t *testing.T) {
	f := newFixture(t, func(int) error { return nil })
	for _, m := range []*kafka.Message{record(events.Topic, "ok", "e1", events.TypeCreated),
		record(events.Topic, "ok", "e1", events.TypeCreated), record(events.Topic, "ok", "e2", "todos.task.renamed")} {
		if err := f.c.apply(bg(), m); err != nil {
			t.Fatal(err)
		}
	}
	if f.calls != 1 || !f.store.seen["g/e1"] {
		t.Fatalf("handler ran %d times, seen %v: want once, e1 recorded", f.calls, f.store.seen)
	}
	if err := f.c.apply(bg(), record(events.Topic, "garbage", "e3", events.TypeCreated)); Classify(err) != Permanent {
		t.Fatalf("undecodable: %v, want a permanent error", err)
	}
}
