// Package consumertest holds what the end-to-end tests of consumers share: throwaway topics and
// database schemas on the local stack, a producer of test events, and a reader of the DLQ. It
// fails the test, never skips it, when the stack is not there.
package consumertest

import (
	"context"
	"database/sql"
	"encoding/binary"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/producer"
	"github.com/todocdc/pipeline/internal/topicreader"
	"github.com/todocdc/pipeline/kafkaconf"
	"github.com/todocdc/pipeline/serde"
)

// Env is the local stack's addresses, from the environment make e2e loads (.state/env).
type Env struct {
	Kafka       kafkaconf.Client // the admin principal: tests make their own topics and groups
	RegistryURL string
	DatabaseURL string // ANALYTICS_DATABASE_URL: tests make their own schemas in that database
	JWTSecret   string
}

// LoadEnv fails the test when a variable is missing.
func LoadEnv(t testing.TB) Env {
	t.Helper()
	e := Env{Kafka: kafkaconf.Admin(os.Getenv), RegistryURL: os.Getenv("SCHEMA_REGISTRY_URL"),
		DatabaseURL: os.Getenv("ANALYTICS_DATABASE_URL"), JWTSecret: os.Getenv("JWT_SECRET")}
	if os.Getenv("KAFKA_BOOTSTRAP_SERVERS") == "" || e.RegistryURL == "" || e.DatabaseURL == "" {
		t.Fatal("KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL and ANALYTICS_DATABASE_URL must be set: " +
			"run with make e2e, or `set -a; . .state/env; set +a` after make run")
	}
	return e
}

// Name is a unique name for a test's topic, group or schema: prefix, the test's name, a random part.
func Name(t testing.TB, prefix string) string {
	s := strings.ToLower(t.Name())
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
	if len(s) > 30 {
		s = s[:30]
	}
	return prefix + "_" + s + "_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
}

// Schema creates a schema for the test in the database and returns the database URL with its
// search_path; the schema is dropped when the test ends.
func Schema(t testing.TB, e Env) (name, dbURL string) {
	t.Helper()
	name = Name(t, "e2e")
	db, err := sql.Open("pgx", e.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE SCHEMA ` + name); err != nil {
		t.Fatalf("create schema %s (ANALYTICS_DATABASE_URL): %v", name, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", e.DatabaseURL)
		if err == nil {
			_, _ = db.Exec(`DROP SCHEMA ` + name + ` CASCADE`)
			db.Close()
		}
	})
	u, err := url.Parse(e.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return name, u.String()
}

// Topic creates a topic with the given partitions (replication 1) and deletes it when the test ends.
func Topic(t testing.TB, e Env, partitions int) string {
	t.Helper()
	return TopicWith(t, e, partitions, nil)
}

// TopicWith is Topic with topic configs (e.g. cleanup.policy). It returns once the topic is
// visible in the cluster metadata: CreateTopics answers when the controller has it, the brokers
// learn of it a moment later, and a consumer or producer started before would find it missing.
func TopicWith(t testing.TB, e Env, partitions int, configs map[string]string) string {
	t.Helper()
	name := strings.ReplaceAll(Name(t, "e2e"), "_", ".")
	admin, err := kafka.NewAdminClient(e.Kafka.ConfigMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: name, NumPartitions: partitions, ReplicationFactor: 1,
		Config: configs}})
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("create topic %s: %v %v", name, err, res)
	}
	t.Cleanup(func() {
		admin, err := kafka.NewAdminClient(e.Kafka.ConfigMap(nil))
		if err != nil {
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.DeleteTopics(ctx, []string{name})
	})
	for {
		d, err := admin.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames([]string{name}))
		if err == nil && len(d.TopicDescriptions) == 1 && d.TopicDescriptions[0].Error.Code() == kafka.ErrNoError &&
			len(d.TopicDescriptions[0].Partitions) == partitions {
			return name
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s created but not visible in the cluster metadata after 30s: %v", name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Producer is an idempotent producer for test records.
func Producer(t testing.TB, e Env) *producer.Producer {
	t.Helper()
	p, err := producer.New(e.Kafka, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Serializer encodes events with the schemas registered for the main topic (looked up, never
// registered), as todo-api does.
func Serializer(t testing.TB, e Env) *serde.Serializer {
	t.Helper()
	s, err := serde.NewSerializer(serde.NewRegistryClient(e.RegistryURL, 5*time.Second), serde.SerializerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Record is a record as todo-api's events reach Kafka: key = todo id, CloudEvents headers.
func Record(topic string, id string, ev events.Event, value []byte) *kafka.Message {
	return &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte(ev.AggregateID()),
		Value:          value,
		Headers: []kafka.Header{
			{Key: events.HeaderSpecVersion, Value: []byte(events.SpecVersion)},
			{Key: events.HeaderID, Value: []byte(id)},
			{Key: events.HeaderSource, Value: []byte(events.Source)},
			{Key: events.HeaderType, Value: []byte(ev.EventType())},
			{Key: events.HeaderTime, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
			{Key: events.HeaderContentType, Value: []byte(events.ContentType)},
		},
	}
}

// Encode serializes ev or fails the test.
func Encode(t testing.TB, s *serde.Serializer, ev events.Event) []byte {
	t.Helper()
	b, err := s.Serialize(context.Background(), ev)
	if err != nil {
		t.Fatalf("serialize %T: %v", ev, err)
	}
	return b
}

// UnknownSchemaID is a wire-format value whose schema id no registry has.
func UnknownSchemaID(body []byte) []byte {
	v := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(v[1:], 0x7fff_fff0)
	return append(v, body...)
}

// Publish writes records and waits for each acknowledgement.
func Publish(t testing.TB, p consumer.Publisher, ms ...*kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range ms {
		if err := p.Publish(ctx, m); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// Reader reads a topic from the end it had when the reader was made (read_committed).
type Reader struct {
	t testing.TB
	r *topicreader.Reader
}

// NewReader starts reading topic at its current end.
func NewReader(t testing.TB, e Env, topic string) *Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := topicreader.Open(ctx, topicreader.Config{Kafka: e.Kafka, Topic: topic, GroupID: Name(t, "reader")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return &Reader{t: t, r: r}
}

// Collect reads for the duration d and returns the records keep accepts.
func (r *Reader) Collect(d time.Duration, keep func(*kafka.Message) bool) []*kafka.Message {
	var out []*kafka.Message
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if m := r.poll(); m != nil && keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// Until reads until done says enough records were kept, or fails the test after timeout.
func (r *Reader) Until(timeout time.Duration, keep func(*kafka.Message) bool, done func([]*kafka.Message) bool) []*kafka.Message {
	r.t.Helper()
	var out []*kafka.Message
	deadline := time.Now().Add(timeout)
	for !done(out) {
		if time.Now().After(deadline) {
			r.t.Fatalf("after %s on %s: %d matching records, still waiting", timeout, r.r.Topic(), len(out))
		}
		if m := r.poll(); m != nil && keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// poll waits up to 100 ms for a record; an error the reader cannot go on after fails the test.
func (r *Reader) poll() *kafka.Message {
	r.t.Helper()
	m, err := r.r.Poll(100 * time.Millisecond)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

// OfGroup keeps the records a consumer group sent to the retry topic or the DLQ.
func OfGroup(group string) func(*kafka.Message) bool {
	return func(m *kafka.Message) bool {
		g, _ := dlq.Header(m.Headers, dlq.HeaderGroup)
		return g == group
	}
}

// Eventually polls cond every 100 ms until it holds or the timeout passes (then fails with what).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s; last state: %s", timeout, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Must is a helper for a value and an error.
func Must[T any](t testing.TB, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// StartService opens a consumer service with sc (its Log defaults to a discarding logger) and
// runs it until stop is called or the test ends; stop waits until Run has returned, and may be
// called more than once.
func StartService(t testing.TB, sc consumer.ServiceConfig, setup func(context.Context, *sql.DB) error,
	routes func(*sql.DB) *consumer.Router) (svc *consumer.Service, stop func()) {
	t.Helper()
	if sc.Log == nil {
		sc.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	svc, err := consumer.OpenService(context.Background(), sc, setup, routes)
	if err != nil {
		t.Fatalf("open consumer service: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return svc, stop
}

// RunService is StartService until the test ends, with a connection to the service's database
// (closed when the test ends) for the test's checks.
func RunService(t testing.TB, sc consumer.ServiceConfig, setup func(context.Context, *sql.DB) error,
	routes func(*sql.DB) *consumer.Router) (*consumer.Service, *sql.DB) {
	t.Helper()
	svc, _ := StartService(t, sc, setup, routes)
	db, err := sql.Open("pgx", sc.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return svc, db
}
