//go:build e2e

package consumer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
	ct "github.com/todocdc/pipeline/internal/consumertest"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/metricstest"
	"github.com/todocdc/pipeline/internal/producer"
	"github.com/todocdc/pipeline/serde"
)

// testConsumer is a consumer on the runtime whose TodoCreated handler appends a row to table
// applied (no unique key: a second application would show) and whose behaviour per todo id is
// set by the test.
type testConsumer struct {
	svc   *consumer.Service
	group string
	db    *sql.DB
	stop  func() // leaves the group cleanly, as on SIGTERM

	mu    sync.Mutex
	calls map[string]int
	fail  map[string]func(n int) error // todo id -> error for the n-th call (1-based), nil: succeed
}

// errSwallowFailedStatement, returned by a test's fail function, makes the handler run a failing
// statement and return nil, as a handler that ignores an error would.
var errSwallowFailedStatement = errors.New("swallow a failed statement")

// failureSetup makes a test's own main topic (partitions partitions), retry and dead-letter
// topics (one partition each), a reader of the dead-letter topic from now on, a serializer and a
// producer.
func failureSetup(t *testing.T, e ct.Env, partitions int) (topic, retryTopic, dlqTopic string, dlqReader *ct.Reader,
	ser *serde.Serializer, pub *producer.Producer) {
	t.Helper()
	topic, retryTopic, dlqTopic = ct.Topic(t, e, partitions), ct.Topic(t, e, 1), ct.Topic(t, e, 1)
	return topic, retryTopic, dlqTopic, ct.NewReader(t, e, dlqTopic), ct.Serializer(t, e), ct.Producer(t, e)
}

// firstDeadLetter waits up to 60 s for group's first record on the DLQ read by r and checks that
// it is event id's, with error class class and an error that contains errPart.
func firstDeadLetter(t *testing.T, r *ct.Reader, group, id, class, errPart string) {
	t.Helper()
	dead := r.Until(60*time.Second, ct.OfGroup(group), func(ms []*kafka.Message) bool { return len(ms) >= 1 })
	gotClass, _ := dlq.Header(dead[0].Headers, dlq.HeaderErrorClass)
	msg, _ := dlq.Header(dead[0].Headers, dlq.HeaderError)
	if gotID, _ := dlq.Header(dead[0].Headers, events.HeaderID); gotID != id || gotClass != class || !strings.Contains(msg, errPart) {
		t.Fatalf("DLQ record: event %s, class %s, error %q; want event %s, class %s, error with %q", gotID, gotClass, msg, id, class, errPart)
	}
}

func startTestConsumer(t *testing.T, e ct.Env, topic string, cfg consumer.Config) *testConsumer {
	t.Helper()
	_, dbURL := ct.Schema(t, e)
	return startMember(t, e, topic, cfg, ct.Name(t, "group"), dbURL)
}

// startMember starts a test consumer in group, on the database schema of dbURL (shared by the
// members of one group). It stops at the end of the test, or earlier with stop.
func startMember(t *testing.T, e ct.Env, topic string, cfg consumer.Config, group, dbURL string) *testConsumer {
	t.Helper()
	tc := &testConsumer{group: group, calls: map[string]int{}, fail: map[string]func(int) error{}}
	cfg.BootstrapServers, cfg.Security, cfg.GroupID, cfg.Topic = e.Kafka.BootstrapServers, e.Kafka.Security, tc.group, topic
	if cfg.RetryTopic == "" || cfg.DLQTopic == "" {
		t.Fatal("give the test consumer its own retry and DLQ topics")
	}
	if cfg.Backoff == (consumer.Backoff{}) {
		cfg.Backoff = consumer.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("E2E_VERBOSE") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	r := consumer.NewRouter()
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, m *consumer.Message, ev events.TodoCreated) error {
		tc.mu.Lock()
		tc.calls[ev.TodoID]++
		n, f := tc.calls[ev.TodoID], tc.fail[ev.TodoID]
		tc.mu.Unlock()
		if f != nil {
			if err := f(n); errors.Is(err, errSwallowFailedStatement) {
				_, _ = tx.ExecContext(ctx, `SELECT 1/0`) // the transaction is aborted; COMMIT rolls back
				return nil
			} else if err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO applied (event_id, todo_id) VALUES ($1, $2)`, m.EventID, ev.TodoID)
		return err
	})
	svc, err := consumer.OpenService(context.Background(), consumer.ServiceConfig{Config: cfg, DatabaseURL: dbURL,
		RegistryURL: e.RegistryURL, Log: log},
		func(ctx context.Context, db *sql.DB) error {
			_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS applied (event_id text NOT NULL, todo_id text NOT NULL)`)
			return err
		}, func(*sql.DB) *consumer.Router { return r })
	if err != nil {
		t.Fatalf("test consumer: %v", err)
	}
	tc.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	tc.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("consumer: %v", err)
			}
		})
	}
	t.Cleanup(tc.stop)
	// a database handle that outlives the service's (closed at its end) for the checks
	tc.db, err = sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.db.Close() })
	return tc
}

func (tc *testConsumer) setFail(todoID string, f func(n int) error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.fail[todoID] = f
}

func (tc *testConsumer) callsOf(todoID string) int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.calls[todoID]
}

// applied counts the rows of event id.
func (tc *testConsumer) applied(t *testing.T, eventID string) int {
	t.Helper()
	var n int
	if err := tc.db.QueryRow(`SELECT count(*) FROM applied WHERE event_id = $1`, eventID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (tc *testConsumer) waitApplied(t *testing.T, timeout time.Duration, ids ...string) {
	t.Helper()
	ct.Eventually(t, timeout, "events applied", func() (bool, string) {
		var state []string
		ok := true
		for _, id := range ids {
			n := tc.applied(t, id)
			if n != 1 {
				ok = false
			}
			state = append(state, fmt.Sprintf("%s:%d", id[:8], n))
		}
		return ok, strings.Join(state, " ")
	})
}

func created(user string) events.TodoCreated {
	return events.TodoCreated{TodoID: uuid.NewString(), UserID: user, Title: "e2e", Status: events.StatusPending,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
}

// TestPoisonDuplicatesAndOrder: a duplicate is applied once; a record of garbage bytes and one with
// a schema id the registry does not know go to the DLQ with their failure headers and the
// original key, value and headers; the valid records behind them (same partition) are applied.
func TestPoisonDuplicatesAndOrder(t *testing.T) {
	e := ct.LoadEnv(t)
	topic, retryTopic, dlqTopic, dlqReader, ser, pub := failureSetup(t, e, 1)
	tc := startTestConsumer(t, e, topic, consumer.Config{RetryTopic: retryTopic, DLQTopic: dlqTopic})

	a, b := created("poison"), created("poison")
	aID, bID, garbageID, unknownID := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	aBytes := ct.Encode(t, ser, a)
	garbage := ct.Record(topic, garbageID, a, []byte("this is not avro"))
	unknown := ct.Record(topic, unknownID, a, ct.UnknownSchemaID(aBytes[5:]))
	ct.Publish(t, pub,
		ct.Record(topic, aID, a, aBytes),
		garbage,
		unknown,
		ct.Record(topic, bID, b, ct.Encode(t, ser, b)),
		ct.Record(topic, aID, a, aBytes), // the same event again
	)
	tc.waitApplied(t, 60*time.Second, aID, bID)

	dead := dlqReader.Until(60*time.Second, ct.OfGroup(tc.group), func(ms []*kafka.Message) bool { return len(ms) >= 2 })
	byID := map[string]*kafka.Message{}
	for _, m := range dead {
		id, _ := dlq.Header(m.Headers, events.HeaderID)
		byID[id] = m
	}
	for _, c := range []struct {
		id, errPart string
		offset      int
		value       []byte
	}{{garbageID, "wire format", 1, garbage.Value}, {unknownID, "unknown", 2, unknown.Value}} {
		m := byID[c.id]
		if m == nil {
			t.Fatalf("no DLQ record for event %s; got %d records", c.id, len(dead))
		}
		want := map[string]string{dlq.HeaderOriginalTopic: topic, dlq.HeaderOriginalPartition: "0",
			dlq.HeaderOriginalOffset: fmt.Sprint(c.offset), dlq.HeaderErrorClass: "permanent",
			dlq.HeaderRetryCount: "0", dlq.HeaderGroup: tc.group,
			events.HeaderType: events.TypeCreated, events.HeaderSource: events.Source}
		for k, v := range want {
			if got, _ := dlq.Header(m.Headers, k); got != v {
				t.Errorf("event %s: DLQ header %s = %q, want %q", c.id, k, got, v)
			}
		}
		if msg, _ := dlq.Header(m.Headers, dlq.HeaderError); !strings.Contains(msg, c.errPart) {
			t.Errorf("event %s: error_message %q does not mention %q", c.id, msg, c.errPart)
		}
		ff, _ := dlq.Header(m.Headers, dlq.HeaderFirstFailure)
		if ts, err := time.Parse(time.RFC3339Nano, ff); err != nil || time.Since(ts) > 5*time.Minute {
			t.Errorf("event %s: first_failure_time %q", c.id, ff)
		}
		if string(m.Key) != a.TodoID || string(m.Value) != string(c.value) {
			t.Errorf("event %s: key/value not kept: %q / % x", c.id, m.Key, m.Value[:min(len(m.Value), 16)])
		}
	}
	if n := tc.callsOf(a.TodoID); n != 1 {
		t.Errorf("handler ran %d times for the event delivered twice, want 1", n)
	}
}

// TestHandlerFailures: a handler that fails twice then succeeds applies the event once and sends
// nothing anywhere; one that always fails goes through the retry topic MaxRetries times, then to
// the DLQ with retry_count = MaxRetries.
func TestHandlerFailures(t *testing.T) {
	e := ct.LoadEnv(t)
	topic, retryTopic, dlqTopic := ct.Topic(t, e, 2), ct.Topic(t, e, 2), ct.Topic(t, e, 1)
	dlqReader, retry := ct.NewReader(t, e, dlqTopic), ct.NewReader(t, e, retryTopic)
	ser, pub := ct.Serializer(t, e), ct.Producer(t, e)
	const maxRetries, inPlace = 2, 3
	tc := startTestConsumer(t, e, topic, consumer.Config{RetryTopic: retryTopic, DLQTopic: dlqTopic,
		MaxRetries: maxRetries, InPlaceAttempts: inPlace, RetryDelay: 300 * time.Millisecond})

	flaky, broken, after := created("failures"), created("failures"), created("failures")
	tc.setFail(flaky.TodoID, func(n int) error {
		if n <= 2 {
			return fmt.Errorf("flaky failure %d", n)
		}
		return nil
	})
	tc.setFail(broken.TodoID, func(n int) error { return errors.New("always broken") })
	flakyID, brokenID, afterID := uuid.NewString(), uuid.NewString(), uuid.NewString()
	brokenRec := ct.Record(topic, brokenID, broken, ct.Encode(t, ser, broken))
	ct.Publish(t, pub, ct.Record(topic, flakyID, flaky, ct.Encode(t, ser, flaky)), brokenRec,
		ct.Record(topic, afterID, after, ct.Encode(t, ser, after)))

	tc.waitApplied(t, 60*time.Second, flakyID, afterID)
	if n := tc.callsOf(flaky.TodoID); n != 3 {
		t.Errorf("flaky handler ran %d times, want 3", n)
	}
	dead := dlqReader.Until(90*time.Second, ct.OfGroup(tc.group), func(ms []*kafka.Message) bool { return len(ms) >= 1 })
	if len(dead) != 1 {
		t.Fatalf("%d DLQ records, want 1", len(dead))
	}
	m := dead[0]
	for k, v := range map[string]string{events.HeaderID: brokenID, dlq.HeaderRetryCount: fmt.Sprint(maxRetries),
		dlq.HeaderErrorClass: "retriable", dlq.HeaderError: "always broken", dlq.HeaderOriginalTopic: topic} {
		if got, _ := dlq.Header(m.Headers, k); got != v {
			t.Errorf("DLQ header %s = %q, want %q", k, got, v)
		}
	}
	if got := tc.callsOf(broken.TodoID); got != inPlace*(1+maxRetries) {
		t.Errorf("broken handler ran %d times, want %d", got, inPlace*(1+maxRetries))
	}
	// the retry topic saw it maxRetries times, with retry_count 1..maxRetries; the flaky one never
	retried := retry.Collect(time.Second, ct.OfGroup(tc.group))
	var counts []string
	for _, r := range retried {
		id, _ := dlq.Header(r.Headers, events.HeaderID)
		if id != brokenID {
			t.Errorf("event %s went to the retry topic", id)
		}
		c, _ := dlq.Header(r.Headers, dlq.HeaderRetryCount)
		counts = append(counts, c)
	}
	if strings.Join(counts, ",") != "1,2" {
		t.Errorf("retry topic retry_counts %v, want [1 2]", counts)
	}
	if n := tc.applied(t, brokenID); n != 0 {
		t.Errorf("the always-failing event was applied %d times", n)
	}
}

// TestRegistryOutage stops the Schema Registry while valid records arrive: nothing is
// dead-lettered, and every record is applied once it is back.
func TestRegistryOutage(t *testing.T) {
	e := ct.LoadEnv(t)
	topic, retryTopic, dlqTopic, dlqReader, ser, pub := failureSetup(t, e, 3)
	// encode while the registry is up (the writer side is not under test)
	var recs []*kafka.Message
	var ids []string
	for range 30 {
		ev := created("outage")
		id := uuid.NewString()
		ids = append(ids, id)
		recs = append(recs, ct.Record(topic, id, ev, ct.Encode(t, ser, ev)))
	}
	stack(t, "stop", "apicurio")
	t.Cleanup(func() { stack(t, "start", "apicurio") })
	// its deserializer has no schema cached
	tc := startTestConsumer(t, e, topic, consumer.Config{RetryTopic: retryTopic, DLQTopic: dlqTopic})
	ct.Publish(t, pub, recs...)

	// while it is down: transient in-place retries and a paused partition show in the metrics (once
	// the consumer has joined and fetched), nothing applied (the schema cannot be fetched), nothing
	// dead-lettered
	paused := regexp.MustCompile(`consumer_partition_paused\{[^}]*topic="` + regexp.QuoteMeta(topic) + `"\} 1`)
	ct.Eventually(t, 30*time.Second, "transient in-place retries and a paused partition in the metrics", func() (bool, string) {
		metrics := metricstest.Scrape(t, tc.svc.Consumer.Handler())
		return strings.Contains(metrics, `consumer_retries_total{class="transient",group="`+tc.group+`",how="in_place"}`) &&
			paused.MatchString(metrics), metricstest.Lines(metrics, "consumer_")
	})
	var n int
	if err := tc.db.QueryRow(`SELECT count(*) FROM applied`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d events applied while the registry was down", n)
	}
	t0 := time.Now()
	stack(t, "start", "apicurio")
	tc.waitApplied(t, 90*time.Second, ids...)
	t.Logf("registry back: all %d records applied %s after its start returned", len(ids), time.Since(t0).Round(time.Millisecond))
	if dead := dlqReader.Collect(2*time.Second, ct.OfGroup(tc.group)); len(dead) != 0 {
		t.Fatalf("%d records dead-lettered during the registry outage", len(dead))
	}
}

// TestCleanHandover: a second member joins while records flow (a cooperative rebalance moves some
// partitions to it), then the first stops as on SIGTERM. A clean revoke and a clean shutdown
// commit exactly what was applied, so no record is delivered twice: every event is applied once
// and neither member ever sees a duplicate.
func TestCleanHandover(t *testing.T) {
	e := ct.LoadEnv(t)
	topic, retryTopic, dlqTopic := ct.Topic(t, e, 6), ct.Topic(t, e, 1), ct.Topic(t, e, 1)
	_, dbURL := ct.Schema(t, e)
	group := ct.Name(t, "group")
	cfg := consumer.Config{RetryTopic: retryTopic, DLQTopic: dlqTopic}
	ser, pub := ct.Serializer(t, e), ct.Producer(t, e)
	const total = 900
	var recs []*kafka.Message
	var ids []string
	for range total {
		ev := created("handover")
		id := uuid.NewString()
		ids = append(ids, id)
		recs = append(recs, ct.Record(topic, id, ev, ct.Encode(t, ser, ev)))
	}
	a := startMember(t, e, topic, cfg, group, dbURL)
	produced := make(chan error, 1) // the producer goroutine reports here: t.Fatal belongs to the test goroutine
	go func() {                     // ~300 records/s for 3 s
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := 0; i < total; i += 30 {
			for _, m := range recs[i : i+30] {
				if err := pub.Publish(ctx, m); err != nil {
					produced <- fmt.Errorf("produce record %d: %w", i, err)
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		produced <- nil
	}()
	time.Sleep(time.Second)
	b := startMember(t, e, topic, cfg, group, dbURL)
	ct.Eventually(t, 30*time.Second, "the second member handles records", func() (bool, string) {
		return handled(metricstest.Scrape(t, b.svc.Consumer.Handler())) > 0, "nothing handled by b"
	})
	a.stop()
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	ct.Eventually(t, 60*time.Second, "every event applied", func() (bool, string) {
		var rows, distinct int
		if err := a.db.QueryRow(`SELECT count(*), count(DISTINCT event_id) FROM applied`).Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		return distinct == total, fmt.Sprintf("%d rows, %d events of %d", rows, distinct, total)
	})
	var rows int
	if err := a.db.QueryRow(`SELECT count(*) FROM applied`).Scan(&rows); err != nil || rows != total {
		t.Fatalf("%d rows for %d events (%v)", rows, total, err)
	}
	ma, mb := metricstest.Scrape(t, a.svc.Consumer.Handler()), metricstest.Scrape(t, b.svc.Consumer.Handler())
	if strings.Contains(ma+mb, "consumer_events_duplicate_total{") {
		t.Fatalf("a record was delivered twice across the handover:\n%s\n%s", metricstest.Lines(ma, "duplicate"), metricstest.Lines(mb, "duplicate"))
	}
	t.Logf("handled: first member %v, second member %v", handled(ma), handled(mb))
}

// handled sums consumer_events_handled_total in a metrics page.
func handled(metrics string) float64 {
	var sum float64
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "consumer_events_handled_total{") {
			var v float64
			fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
			sum += v
		}
	}
	return sum
}

// stack runs scripts/stack.sh (stop|start COMPONENT) from the repository root.
func stack(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("../scripts/stack.sh", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/stack.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("scripts/stack.sh %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
}

// TestProducerPartitionsLikeJava: a keyed record the runtime writes (retry, DLQ, replay) lands
// on the partition Kafka's Java producer (Debezium's) picks for its key: murmur2, positive, modulo
// the partition count. librdkafka's default partitioner would pick another one for most keys.
func TestProducerPartitionsLikeJava(t *testing.T) {
	e := ct.LoadEnv(t)
	topic := ct.Topic(t, e, 6)
	r := ct.NewReader(t, e, topic)
	pub := ct.Producer(t, e)
	want := map[string]int32{}
	for range 40 {
		k := uuid.NewString()
		want[k] = javaPartition([]byte(k), 6)
		ct.Publish(t, pub, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key: []byte(k), Value: []byte("x")})
	}
	got := r.Until(30*time.Second, func(*kafka.Message) bool { return true }, func(ms []*kafka.Message) bool { return len(ms) == len(want) })
	for _, m := range got {
		if p := m.TopicPartition.Partition; p != want[string(m.Key)] {
			t.Errorf("key %s on partition %d, Java's producer puts it on %d", m.Key, p, want[string(m.Key)])
		}
	}
}

// javaPartition is org.apache.kafka.common.utils.Utils.murmur2 as the Java producer's default
// partitioner uses it for a keyed record.
func javaPartition(data []byte, partitions int32) int32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h&0x7fffffff) % partitions
}

// TestHandlerPanic: a handler that panics does not crash the consumer: the record goes to the DLQ
// as permanent, with the panic value, nothing of it is applied, and the records behind it are.
func TestHandlerPanic(t *testing.T) {
	e := ct.LoadEnv(t)
	topic, retryTopic, dlqTopic, dlqReader, ser, pub := failureSetup(t, e, 1)
	tc := startTestConsumer(t, e, topic, consumer.Config{RetryTopic: retryTopic, DLQTopic: dlqTopic})
	bad, after := created("panic"), created("panic")
	tc.setFail(bad.TodoID, func(int) error { panic("handler bug") })
	badID, afterID := uuid.NewString(), uuid.NewString()
	ct.Publish(t, pub, ct.Record(topic, badID, bad, ct.Encode(t, ser, bad)), ct.Record(topic, afterID, after, ct.Encode(t, ser, after)))
	tc.waitApplied(t, 60*time.Second, afterID)
	firstDeadLetter(t, dlqReader, tc.group, badID, "permanent", "handler bug")
	if n := tc.callsOf(bad.TodoID); n != 1 {
		t.Errorf("the panicking handler ran %d times, want 1", n)
	}
	if n := tc.applied(t, badID); n != 0 {
		t.Errorf("the panicking event was applied %d times", n)
	}
}

// TestRefusedCommitIsNotTransient: a handler that swallowed a failed statement returns nil, and
// the COMMIT rolls back. That fails the same way every time: the record goes through the retry
// topic to the DLQ instead of blocking its partition forever, and the records behind it are applied.
func TestRefusedCommitIsNotTransient(t *testing.T) {
	e := ct.LoadEnv(t)
	topic, retryTopic, dlqTopic, dlqReader, ser, pub := failureSetup(t, e, 1)
	tc := startTestConsumer(t, e, topic, consumer.Config{RetryTopic: retryTopic, DLQTopic: dlqTopic,
		MaxRetries: 1, InPlaceAttempts: 2, RetryDelay: 200 * time.Millisecond})
	bad, after := created("commit"), created("commit")
	tc.setFail(bad.TodoID, func(int) error { return errSwallowFailedStatement })
	badID, afterID := uuid.NewString(), uuid.NewString()
	ct.Publish(t, pub, ct.Record(topic, badID, bad, ct.Encode(t, ser, bad)), ct.Record(topic, afterID, after, ct.Encode(t, ser, after)))
	tc.waitApplied(t, 60*time.Second, afterID)
	firstDeadLetter(t, dlqReader, tc.group, badID, "retriable", "rollback")
	if n := tc.callsOf(bad.TodoID); n != 4 {
		t.Errorf("handler ran %d times, want 4 (2 in place, 1 retry round)", n)
	}
}

// TestBatchApply: 300 records already on a one-partition topic when the consumer starts are
// applied in a few transactions (records of one transaction share its processed_at, now()),
// on the real database: an event twice inside the backlog is applied once, an undecodable record
// and a record whose handler fails for good go to the DLQ alone, and every other one is applied.
func TestBatchApply(t *testing.T) {
	e := ct.LoadEnv(t)
	topic, retryTopic, dlqTopic, dlqReader, ser, pub := failureSetup(t, e, 1)
	const total = 300
	var recs []*kafka.Message
	var ids []string
	evs := map[string]events.TodoCreated{}
	for i := range total {
		ev := created("batch")
		id := uuid.NewString()
		evs[id] = ev
		value := ct.Encode(t, ser, ev)
		if i == 100 {
			value = []byte("not avro")
		} else if i != 200 {
			ids = append(ids, id)
		}
		recs = append(recs, ct.Record(topic, id, ev, value))
		if i == 150 {
			recs = append(recs, ct.Record(topic, ids[140], evs[ids[140]], ct.Encode(t, ser, evs[ids[140]]))) // again
		}
	}
	badID, junkID := recs[201].Headers, recs[100].Headers // 201: one record was added after 150
	badEvent, _ := dlq.Header(badID, events.HeaderID)
	junkEvent, _ := dlq.Header(junkID, events.HeaderID)
	ct.Publish(t, pub, recs...)
	tc := startTestConsumer(t, e, topic, consumer.Config{RetryTopic: retryTopic, DLQTopic: dlqTopic})
	// set before the consumer has joined its group (a join takes far longer than this line)
	tc.setFail(evs[badEvent].TodoID, func(int) error { return consumer.PermanentError(errors.New("refused")) })
	tc.waitApplied(t, 60*time.Second, ids...)
	dead := dlqReader.Until(60*time.Second, ct.OfGroup(tc.group), func(ms []*kafka.Message) bool { return len(ms) >= 2 })
	var deadIDs []string
	for _, m := range dead {
		id, _ := dlq.Header(m.Headers, events.HeaderID)
		deadIDs = append(deadIDs, id)
	}
	if len(deadIDs) != 2 || deadIDs[0] != junkEvent || deadIDs[1] != badEvent {
		t.Fatalf("DLQ has %v, want [%s %s]", deadIDs, junkEvent, badEvent)
	}
	// (its handler may have run twice: a batch rolled back by the failing record runs again)
	if n := tc.applied(t, ids[140]); n != 1 {
		t.Errorf("the event delivered twice was applied %d times", n)
	}
	if !strings.Contains(metricstest.Scrape(t, tc.svc.Consumer.Handler()), "consumer_events_duplicate_total{") {
		t.Error("the second delivery was not counted as a duplicate")
	}
	var rows, txs int
	if err := tc.db.QueryRow(`SELECT count(*), count(DISTINCT processed_at) FROM consumer_processed_events`).Scan(&rows, &txs); err != nil {
		t.Fatal(err)
	}
	if rows != len(ids) || txs > total/10 {
		t.Fatalf("%d processed events in %d transactions, want %d in at most %d", rows, txs, len(ids), total/10)
	}
	t.Logf("%d events applied in %d transactions", rows, txs)
}
