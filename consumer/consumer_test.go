package consumer

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/producer"
	"github.com/todocdc/pipeline/serde"
)

// fakes

type fakeDecoder struct {
	fn func(data []byte) (serde.Decoded, error)
}

func (d fakeDecoder) Deserialize(_ context.Context, data []byte) (serde.Decoded, error) {
	return d.fn(data)
}

type fakeStore struct {
	mu   sync.Mutex
	seen map[string]bool
	fail func() error // before the handler: e.g. the database is down
}

func (s *fakeStore) Apply(_ context.Context, group string, m *Message, fn func(*sql.Tx) error) (bool, error) {
	if s.fail != nil {
		if err := s.fail(); err != nil {
			return false, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[group+"/"+m.EventID] {
		return true, nil
	}
	if err := fn(nil); err != nil {
		return false, err
	}
	s.seen[group+"/"+m.EventID] = true
	return false, nil
}

type fakePublisher struct {
	mu   sync.Mutex
	sent []*kafka.Message
	fn   func(ctx context.Context) error // before the send: e.g. a broker that does not answer
}

func (p *fakePublisher) Publish(ctx context.Context, m *kafka.Message) error {
	if p.fn != nil {
		if err := p.fn(ctx); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, m)
	return nil
}

type fakeParts struct{}

func (fakeParts) Pause([]kafka.TopicPartition) error  { return nil }
func (fakeParts) Resume([]kafka.TopicPartition) error { return nil }
func (fakeParts) StoreOffsets(tp []kafka.TopicPartition) ([]kafka.TopicPartition, error) {
	return tp, nil
}

type fixture struct {
	c     *Consumer
	store *fakeStore
	pub   *fakePublisher
	calls int
}

var created = events.TodoCreated{TodoID: "t1", UserID: "u1", Title: "x", Status: events.StatusPending}

// newFixture builds a consumer whose TodoCreated handler is h; the decoder decodes "ok" to created.
func newFixture(t testing.TB, h func(n int) error) *fixture {
	f := &fixture{store: &fakeStore{seen: map[string]bool{}}, pub: &fakePublisher{}}
	r := NewRouter()
	Handle(r, func(ctx context.Context, tx *sql.Tx, m *Message, ev events.TodoCreated) error {
		f.calls++
		return h(f.calls)
	})
	f.c = newTestConsumer(t, r, f.store, f.pub)
	return f
}

// newTestConsumer builds a consumer on fakes whose decoder decodes "ok" to created,
// "registry-down" to a transient failure and anything else to garbage.
func newTestConsumer(t testing.TB, r *Router, store Store, pub Publisher) *Consumer {
	dec := fakeDecoder{func(data []byte) (serde.Decoded, error) {
		switch string(data) {
		case "ok":
			return serde.Decoded{SchemaID: 7, Event: created}, nil
		case "registry-down":
			return serde.Decoded{SchemaID: 7}, fmt.Errorf("fetch: %w", serde.ErrRegistryUnavailable)
		default:
			return serde.Decoded{}, fmt.Errorf("%w: garbage", serde.ErrNotWireFormat)
		}
	}}
	c, err := New(Config{BootstrapServers: "x", GroupID: "g", RetryDelay: time.Second,
		Backoff: Backoff{Initial: time.Microsecond, Max: time.Microsecond}},
		r, Deps{Decoder: dec, Store: store, Publisher: pub, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	c.ctl = fakeParts{}
	c.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	return c
}

func record(topic, value, id, typ string, extra ...kafka.Header) *kafka.Message {
	hs := []kafka.Header{{Key: events.HeaderID, Value: []byte(id)}}
	if typ != "" {
		hs = append(hs, kafka.Header{Key: events.HeaderType, Value: []byte(typ)})
	}
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 2, Offset: 41},
		Key: []byte("t1"), Value: []byte(value), Headers: append(hs, extra...)}
}

func (f *fixture) process(t *testing.T, m *kafka.Message) {
	t.Helper()
	var paused []bool
	if err := f.c.process(context.Background(), context.Background(), m, func(on bool) { paused = append(paused, on) }); err != nil {
		t.Fatalf("process: %v", err)
	}
}

func hdr(t *testing.T, m *kafka.Message, key string) string {
	t.Helper()
	v, ok := dlq.Header(m.Headers, key)
	if !ok {
		t.Fatalf("record has no %s header: %v", key, m.Headers)
	}
	return v
}

func TestRoutingDuplicatesAndUnknownTypes(t *testing.T) {
	f := newFixture(t, func(int) error { return nil })
	f.process(t, record(events.Topic, "ok", "e1", events.TypeCreated))
	f.process(t, record(events.Topic, "ok", "e1", events.TypeCreated)) // the same event again
	f.process(t, record(events.Topic, "garbage", "e2", "todos.task.renamed"))
	f.process(t, record(events.Topic, "ok", "e3", "")) // no ce_type: routed by the decoded type
	if f.calls != 2 {
		t.Fatalf("handler ran %d times, want 2 (e1 once, e3 once)", f.calls)
	}
	if got := counterValue(t, f.c, "duplicates", events.TypeCreated); got != 1 {
		t.Errorf("duplicates = %v, want 1", got)
	}
	if got := counterValue(t, f.c, "unknownTypes", "todos.task.renamed"); got != 1 {
		t.Errorf("unrouted = %v, want 1", got)
	}
	if len(f.pub.sent) != 0 {
		t.Errorf("published %d records, want none", len(f.pub.sent))
	}
}

func TestHandlerFailsTwiceThenSucceeds(t *testing.T) {
	f := newFixture(t, func(n int) error {
		if n <= 2 {
			return errors.New("downstream says later")
		}
		return nil
	})
	f.process(t, record(events.Topic, "ok", "e1", events.TypeCreated))
	if f.calls != 3 || len(f.pub.sent) != 0 || !f.store.seen["g/e1"] {
		t.Fatalf("calls %d, published %d, applied %v; want 3, 0, true", f.calls, len(f.pub.sent), f.store.seen["g/e1"])
	}
}

func TestAlwaysFailingGoesThroughRetryTopicToDLQ(t *testing.T) {
	f := newFixture(t, func(int) error { return errors.New("boom") })
	m := record(events.Topic, "ok", "e1", events.TypeCreated, kafka.Header{Key: "trace", Value: []byte("abc")})
	for round := 1; round <= 4; round++ {
		f.process(t, m)
		if len(f.pub.sent) != round {
			t.Fatalf("round %d: %d records published", round, len(f.pub.sent))
		}
		out := f.pub.sent[round-1]
		wantTopic := events.RetryTopic
		if round == 4 {
			wantTopic = events.DLQTopic
		}
		if *out.TopicPartition.Topic != wantTopic {
			t.Fatalf("round %d went to %s, want %s", round, *out.TopicPartition.Topic, wantTopic)
		}
		wantCount := fmt.Sprint(min(round, 3))
		if got := hdr(t, out, dlq.HeaderRetryCount); got != wantCount {
			t.Fatalf("round %d: retry_count %s, want %s", round, got, wantCount)
		}
		for k, want := range map[string]string{dlq.HeaderOriginalTopic: events.Topic, dlq.HeaderOriginalPartition: "2",
			dlq.HeaderOriginalOffset: "41", dlq.HeaderErrorClass: "retriable", dlq.HeaderError: "boom", dlq.HeaderGroup: "g",
			dlq.HeaderFirstFailure: "2026-01-02T03:04:05Z", "trace": "abc", events.HeaderID: "e1"} {
			if got := hdr(t, out, k); got != want {
				t.Errorf("round %d: header %s = %q, want %q", round, k, got, want)
			}
		}
		if string(out.Key) != "t1" || string(out.Value) != "ok" {
			t.Errorf("key/value changed: %q %q", out.Key, out.Value)
		}
		// the next round reads the copy from the retry topic, one partition elsewhere
		m = &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &f.c.cfg.RetryTopic, Partition: 5, Offset: int64ToOffset(round)},
			Key: out.Key, Value: out.Value, Headers: withoutHeader(out.Headers, dlq.HeaderRetryNotBefore)}
	}
	if f.calls != 4*3 {
		t.Errorf("handler ran %d times, want 12 (3 in place per delivery)", f.calls)
	}
	if got := counterValue(t, f.c, "deadLettered", "retriable"); got != 1 {
		t.Errorf("dead-lettered = %v", got)
	}
}

func int64ToOffset(n int) kafka.Offset { return kafka.Offset(n) }

func withoutHeader(hs []kafka.Header, key string) []kafka.Header {
	var out []kafka.Header
	for _, h := range hs {
		if h.Key != key {
			out = append(out, h)
		}
	}
	return out
}

func TestRetryDelayAndOtherGroups(t *testing.T) {
	f := newFixture(t, func(int) error { return errors.New("boom") })
	f.process(t, record(events.Topic, "ok", "e1", events.TypeCreated))
	if got := hdr(t, f.pub.sent[0], dlq.HeaderRetryNotBefore); got != "2026-01-02T03:04:06Z" {
		t.Errorf("retry_not_before = %s, want now + RetryDelay", got)
	}
	other := record(events.RetryTopic, "ok", "e9", events.TypeCreated, kafka.Header{Key: dlq.HeaderGroup, Value: []byte("someone-else")})
	f.process(t, other)
	if f.calls != 3 {
		t.Errorf("another group's retry record ran the handler")
	}
	if got := counterValue(t, f.c, "consumed", events.RetryTopic); got != 0 {
		t.Errorf("consumed{retry topic} = %v: another group's skipped retry record was counted", got)
	}
	if got := counterValue(t, f.c, "consumed", events.Topic); got != 1 {
		t.Errorf("consumed{main topic} = %v, want 1", got)
	}
}

func TestAfterCommitRunsOnlyOnceCommitted(t *testing.T) {
	var ran []string
	fail := true
	f := newFixture(t, func(int) error { return nil })
	r := NewRouter()
	Handle(r, func(ctx context.Context, tx *sql.Tx, m *Message, ev events.TodoCreated) error {
		m.AfterCommit(func() { ran = append(ran, m.EventID) })
		if fail {
			return PermanentError(errors.New("no"))
		}
		return nil
	})
	f.c.routes[events.TypeCreated] = r.handler(events.TypeCreated)
	f.process(t, record(events.Topic, "ok", "e1", events.TypeCreated)) // fails: to the DLQ
	fail = false
	f.process(t, record(events.Topic, "ok", "e2", events.TypeCreated))
	f.process(t, record(events.Topic, "ok", "e2", events.TypeCreated)) // duplicate
	if len(ran) != 1 || ran[0] != "e2" {
		t.Fatalf("after-commit hooks ran for %v, want [e2]", ran)
	}
}

func TestUnroutedTypeLabelsAreCapped(t *testing.T) {
	f := newFixture(t, func(int) error { return nil })
	for i := range maxUnroutedTypes + 5 {
		f.process(t, record(events.Topic, "ok", fmt.Sprint("e", i), fmt.Sprint("junk.type.", i)))
	}
	f.process(t, record(events.Topic, "ok", "again", "junk.type.0")) // a known label keeps its own
	if got := counterValue(t, f.c, "unknownTypes", "other"); got != 5 {
		t.Errorf("unrouted{other} = %v, want 5", got)
	}
	if got := counterValue(t, f.c, "unknownTypes", "junk.type.0"); got != 2 {
		t.Errorf("unrouted{junk.type.0} = %v, want 2", got)
	}
}

func TestPermanentFailuresGoStraightToDLQ(t *testing.T) {
	cases := []struct {
		name  string
		m     *kafka.Message
		class string
	}{
		{"not wire format", record(events.Topic, "garbage", "e1", events.TypeCreated), "permanent"},
		{"no ce_id", record(events.Topic, "ok", "", events.TypeCreated), "permanent"},
		{"type mismatch", record(events.Topic, "ok", "e2", events.TypeDeleted), ""}, // no handler for deleted: skipped
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(int) error { return nil })
			f.process(t, c.m)
			if c.class == "" {
				if len(f.pub.sent) != 0 {
					t.Fatalf("published %d", len(f.pub.sent))
				}
				return
			}
			if len(f.pub.sent) != 1 || *f.pub.sent[0].TopicPartition.Topic != events.DLQTopic {
				t.Fatalf("want one DLQ record, got %d", len(f.pub.sent))
			}
			if got := hdr(t, f.pub.sent[0], dlq.HeaderErrorClass); got != c.class {
				t.Errorf("class %s", got)
			}
			if got := hdr(t, f.pub.sent[0], dlq.HeaderRetryCount); got != "0" {
				t.Errorf("retry_count %s", got)
			}
		})
	}
	t.Run("handler's permanent error", func(t *testing.T) {
		f := newFixture(t, func(int) error { return PermanentError(errors.New("user unknown")) })
		f.process(t, record(events.Topic, "ok", "e1", events.TypeCreated))
		if f.calls != 1 || len(f.pub.sent) != 1 || *f.pub.sent[0].TopicPartition.Topic != events.DLQTopic {
			t.Fatalf("calls %d, published %d", f.calls, len(f.pub.sent))
		}
	})
}

func TestTransientFailuresPauseAndNeverDeadLetter(t *testing.T) {
	f := newFixture(t, func(int) error { return nil })
	down := 0
	f.store.fail = func() error {
		down++
		if down <= 20 {
			return TransientError(errors.New("database down"))
		}
		return nil
	}
	var paused []bool
	if err := f.c.process(context.Background(), context.Background(), record(events.Topic, "ok", "e1", events.TypeCreated),
		func(on bool) { paused = append(paused, on) }); err != nil {
		t.Fatal(err)
	}
	if f.calls != 1 || len(f.pub.sent) != 0 {
		t.Fatalf("calls %d, published %d: want 1 and 0", f.calls, len(f.pub.sent))
	}
	if len(paused) < 2 || !paused[0] || paused[len(paused)-1] {
		t.Errorf("pause calls %v: want paused during the outage, resumed after", paused)
	}
	// the registry down: same
	f2 := newFixture(t, func(int) error { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := f2.c.process(context.Background(), ctx, record(events.Topic, "registry-down", "e1", events.TypeCreated), func(bool) {})
	if !errors.Is(err, context.DeadlineExceeded) || len(f2.pub.sent) != 0 {
		t.Fatalf("registry down: err %v, published %d; want abandoned at stop, nothing published", err, len(f2.pub.sent))
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want Class
	}{
		{fmt.Errorf("x: %w", serde.ErrRegistryUnavailable), Transient},
		{fmt.Errorf("x: %w", serde.ErrUnknownSchemaID), Permanent},
		{fmt.Errorf("x: %w", serde.ErrNotWireFormat), Permanent},
		{fmt.Errorf("x: %w", serde.ErrDecode), Permanent},
		{fmt.Errorf("x: %w", serde.ErrUnsupportedSchema), Permanent},
		{&pgconn.PgError{Code: "08006"}, Transient},
		{&pgconn.PgError{Code: "57P01"}, Transient},
		{&pgconn.PgError{Code: "40001"}, Transient},
		{&pgconn.PgError{Code: "23505"}, Retriable},
		{&pgconn.PgError{Code: "57014"}, Retriable}, // statement_timeout: the statement may be the cause
		{fmt.Errorf("x: %w", &pgconn.PgError{Code: "57014"}), Retriable},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, Transient},
		{context.DeadlineExceeded, Transient},
		{errors.New("handler said no"), Retriable},
		{PermanentError(errors.New("bad")), Permanent},
		{fmt.Errorf("wrapped: %w", PermanentError(context.DeadlineExceeded)), Permanent},
		{TransientError(errors.New("smtp down")), Transient},
		// the producer's errors: a send that may pass later is transient, a fatal producer is not
		{fmt.Errorf("%w: produce to t: %w", producer.ErrNotDelivered, errors.New("timed out")), Transient},
		{fmt.Errorf("%w: out of order sequence", producer.ErrFatal), Retriable},
	}
	for _, c := range cases {
		if got := Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if IsRetriable(PermanentError(errors.New("x"))) || !IsRetriable(errors.New("x")) || IsRetriable(nil) {
		t.Error("IsRetriable")
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		if n >= 4 {
			want = time.Second
		}
		if hi := b.Delay(n, func() float64 { return 0.999999 }); hi > want || hi < want*99/100 {
			t.Errorf("attempt %d: top of range %s, want %s", n, hi, want)
		}
		if lo := b.Delay(n, func() float64 { return 0 }); lo != want/2 {
			t.Errorf("attempt %d: bottom of range %s, want %s", n, lo, want/2)
		}
	}
	if d := b.Delay(500, nil); d > time.Second || d < time.Second/2 {
		t.Errorf("huge attempt: %s", d)
	}
}

func BenchmarkProcess(b *testing.B) {
	f := newFixture(b, func(int) error { return nil })
	topic := events.Topic
	m := record(topic, "ok", "", events.TypeCreated)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Headers[0].Value = []byte(fmt.Sprint(i))
		if err := f.c.process(ctx, ctx, m, func(bool) {}); err != nil {
			b.Fatal(err)
		}
	}
}

// counterValue reads a counter of c's registry by its field name in metrics and its one label value.
func counterValue(t *testing.T, c *Consumer, field, label string) float64 {
	t.Helper()
	names := map[string]string{"duplicates": "consumer_events_duplicate_total", "unknownTypes": "consumer_events_unrouted_total",
		"deadLettered": "consumer_dead_lettered_total", "consumed": "consumer_records_consumed_total"}
	return gathered(t, c.gather, names[field], label)
}

// gathered is the value of the counter name whose label (other than group) is label, 0 if none.
func gathered(t *testing.T, g prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "group" && l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestCommitErrorClass(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want Class
	}{
		{"connection lost", io.ErrUnexpectedEOF, Transient},
		{"bad connection", driver.ErrBadConn, Transient},
		{"network", &net.OpError{Op: "read", Err: errors.New("reset")}, Transient},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, Transient},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, Transient},
		{"deferred unique violation", &pgconn.PgError{Code: "23505"}, Retriable},
		{"deferred foreign key", &pgconn.PgError{Code: "23503"}, Retriable},
		{"commit resulted in rollback", pgx.ErrTxCommitRollback, Retriable},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, Retriable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := commitError("e1", c.err)
			if got := Classify(err); got != c.want {
				t.Errorf("Classify(commitError(%v)) = %v, want %v", c.err, got, c.want)
			}
			if !errors.Is(err, c.err) {
				t.Errorf("commitError(%v) = %v does not wrap the cause", c.err, err)
			}
		})
	}
}

func TestHandlerPanicGoesToDLQ(t *testing.T) {
	f := newFixture(t, func(int) error { panic("nil map somewhere") })
	f.process(t, record(events.Topic, "ok", "e1", events.TypeCreated))
	if f.calls != 1 || len(f.pub.sent) != 1 || *f.pub.sent[0].TopicPartition.Topic != events.DLQTopic {
		t.Fatalf("calls %d, published %d: want one call and one DLQ record", f.calls, len(f.pub.sent))
	}
	if f.store.seen["g/e1"] {
		t.Error("the panicking event was recorded as processed")
	}
	if got := hdr(t, f.pub.sent[0], dlq.HeaderErrorClass); got != "permanent" {
		t.Errorf("class %s", got)
	}
	if msg := hdr(t, f.pub.sent[0], dlq.HeaderError); !strings.Contains(msg, "nil map somewhere") || !strings.Contains(msg, "goroutine") {
		t.Errorf("error_message %q: want the panic value and the stack", msg)
	}
}

// A fatal producer error stops the consumer: process returns it, Run would stop with it, and
// /healthz fails, instead of retrying a publish that can never succeed.
func TestFatalPublisherErrorStopsTheConsumer(t *testing.T) {
	f := newFixture(t, func(int) error { return PermanentError(errors.New("bad")) })
	fatal := fmt.Errorf("%w: out of order sequence", producer.ErrFatal)
	f.pub.fn = func(context.Context) error { return fatal }
	err := f.c.process(context.Background(), context.Background(), record(events.Topic, "ok", "e1", events.TypeCreated), func(bool) {})
	if !errors.Is(err, producer.ErrFatal) {
		t.Fatalf("process: %v, want the fatal producer error", err)
	}
	if err := f.c.fatalErr(); !errors.Is(err, producer.ErrFatal) {
		t.Fatalf("fatalErr: %v", err)
	}
	f.c.lastPoll.Store(time.Now().UnixNano())
	if err := f.c.healthy(); !errors.Is(err, producer.ErrFatal) {
		t.Fatalf("healthy: %v, want the fatal error", err)
	}
}

// A retry/DLQ copy in flight when the partition is revoked is awaited (under the run context),
// not abandoned.
func TestCopyInFlightAtRevokeIsAwaited(t *testing.T) {
	f := newFixture(t, func(int) error { return PermanentError(errors.New("bad")) })
	started, release := make(chan struct{}), make(chan struct{})
	f.pub.fn = func(ctx context.Context) error {
		close(started)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	wait, revoke := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.c.process(context.Background(), wait, record(events.Topic, "ok", "e1", events.TypeCreated), func(bool) {})
	}()
	<-started
	revoke()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-done; err != nil || len(f.pub.sent) != 1 {
		t.Fatalf("process: %v, %d sent: want the copy awaited and the record done", err, len(f.pub.sent))
	}
}
