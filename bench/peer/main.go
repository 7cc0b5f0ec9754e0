// Command bench-peer is the peer that make bench compares the pipeline with: watermill's
// components/forwarder relaying an outbox table (watermill-sql v4, PostgreSQL) to Kafka
// (watermill-kafka's publisher). It lives in its own module so that the pipeline's module does
// not depend on watermill.
//
//	bench-peer forward   relays until SIGINT/SIGTERM
//	bench-peer load      open-loop writes (todo row + outbox message in one transaction), results as JSON on stdout
//	bench-peer fill      writes N messages as fast as it can (the catch-up backlog)
//	bench-peer versions  the watermill modules in this build, as JSON
//
// Each message has the pipeline's outbox shape: id = the event id, the Avro payload given with
// -payload (hex), metadata ce_id, ce_type, ce_time and key = the todo id, which is the Kafka
// record key on the destination topic.
package main

import (
	"context"
	stdsql "database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/todocdc/pipeline/internal/loadgen"
)

// forwarderTopic is the watermill topic (table watermill_bench_peer_outbox) the forwarder reads.
const forwarderTopic = "bench_peer_outbox"

type flags struct {
	db, brokers, topic, payload, user string
	poll                              time.Duration
	rate                              float64
	duration                          time.Duration
	workers, pool, n, batch           int
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench-peer forward|load|fill|versions [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	var f flags
	fs.StringVar(&f.db, "db", os.Getenv("TODO_API_DATABASE_URL"), "PostgreSQL URL (the todos database; default $TODO_API_DATABASE_URL: give the password there, not on a command line)")
	fs.StringVar(&f.brokers, "brokers", os.Getenv("KAFKA_BOOTSTRAP_SERVERS"), "Kafka bootstrap servers, comma-separated")
	fs.StringVar(&f.topic, "topic", "bench.peer.events", "destination Kafka topic")
	fs.DurationVar(&f.poll, "poll", 50*time.Millisecond, "forward: watermill-sql's PollInterval (its default is 1s)")
	fs.StringVar(&f.payload, "payload", "", "load, fill: the Avro payload of every message, hex")
	fs.StringVar(&f.user, "user", "bench-peer", "load, fill: the todos' user id")
	fs.Float64Var(&f.rate, "rate", 100, "load: transactions per second")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "load: how long")
	fs.IntVar(&f.workers, "workers", 256, "load: requests in flight at most (each waits for a connection of the pool)")
	fs.IntVar(&f.pool, "pool", 20, "load: database connections at most (todo-api's default pool size)")
	fs.IntVar(&f.n, "n", 1000, "fill: messages")
	fs.IntVar(&f.batch, "batch", 1000, "fill: messages per transaction")
	_ = fs.Parse(os.Args[2:])
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "forward":
		err = forward(ctx, f, log)
	case "load":
		err = load(ctx, f)
	case "fill":
		err = fill(ctx, f)
	case "versions":
		err = versions()
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-peer %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func schema() wsql.SchemaAdapter { return wsql.DefaultPostgreSQLSchema{} }

// forward runs watermill's forwarder: the SQL subscriber (default schema and offsets adapters)
// into the Kafka publisher, with the durability the pipeline keeps (acks=all, idempotence).
func forward(ctx context.Context, f flags, log *slog.Logger) error {
	db, err := open(f.db)
	if err != nil {
		return err
	}
	defer db.Close()
	wlog := watermill.NewSlogLogger(log)
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromStdSQL(db), wsql.SubscriberConfig{
		SchemaAdapter:    schema(),
		OffsetsAdapter:   wsql.DefaultPostgreSQLOffsetsAdapter{},
		PollInterval:     f.poll,
		InitializeSchema: true,
	}, wlog)
	if err != nil {
		return fmt.Errorf("sql subscriber: %w", err)
	}
	sc := kafka.DefaultSaramaSyncPublisherConfig()
	sc.Version = sarama.V3_6_0_0 // Kafka 4 refuses the default (1.0) protocol versions
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1 // sarama's condition for idempotence
	if err := setSASL(sc); err != nil {
		return err
	}
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers: strings.Split(f.brokers, ","),
		Marshaler: kafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) {
			return m.Metadata.Get("key"), nil
		}),
		OverwriteSaramaConfig: sc,
	}, wlog)
	if err != nil {
		return fmt.Errorf("kafka publisher: %w", err)
	}
	fwd, err := forwarder.NewForwarder(sub, pub, wlog, forwarder.Config{ForwarderTopic: forwarderTopic})
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	go func() {
		<-ctx.Done()
		_ = fwd.Close()
	}()
	if err := fwd.Run(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	return nil
}

func open(url string) (*stdsql.DB, error) {
	if url == "" {
		return nil, errors.New("no -db (or TODO_API_DATABASE_URL)")
	}
	db, err := stdsql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

// Result is one load transaction as bench reads it: the todo id (the record key), when it was
// due and when its COMMIT returned, in Unix nanoseconds; Err if it failed.
type Result struct {
	Key string `json:"key"`
	Due int64  `json:"due"`
	End int64  `json:"end"`
	Err string `json:"err,omitempty"`
}

// load writes, open-loop at -rate for -duration, one transaction per todo: the todo row and its
// message, through watermill's forwarder publisher on the transaction.
func load(ctx context.Context, f flags) error {
	db, err := open(f.db)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(f.pool)
	db.SetMaxIdleConns(f.pool)
	payload, err := hex.DecodeString(f.payload)
	if err != nil || len(payload) == 0 {
		return fmt.Errorf("-payload: want the hex of an Avro payload (%v)", err)
	}
	n := loadgen.Count(f.rate, f.duration)
	keys := make([]string, n)
	res := loadgen.Run(ctx, time.Time{}, f.rate, f.duration, f.workers, func(ctx context.Context, i int) error {
		keys[i] = uuid.NewString()
		return write(ctx, db, f.topic, f.user, payload, []string{keys[i]})
	})
	out := make([]Result, len(res))
	for i, r := range res {
		out[i] = Result{Key: keys[i], Due: r.Due.UnixNano(), End: r.End.UnixNano()}
		if r.Err != nil {
			out[i].Err = r.Err.Error()
		}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// fill writes -n messages, -batch per transaction, and prints their keys as JSON.
func fill(ctx context.Context, f flags) error {
	db, err := open(f.db)
	if err != nil {
		return err
	}
	defer db.Close()
	payload, err := hex.DecodeString(f.payload)
	if err != nil || len(payload) == 0 {
		return fmt.Errorf("-payload: want the hex of an Avro payload (%v)", err)
	}
	keys := make([]string, 0, f.n)
	for len(keys) < f.n {
		b := make([]string, min(f.batch, f.n-len(keys)))
		for i := range b {
			b[i] = uuid.NewString()
		}
		if err := write(ctx, db, f.topic, f.user, payload, b); err != nil {
			return err
		}
		keys = append(keys, b...)
	}
	return json.NewEncoder(os.Stdout).Encode(keys)
}

// write inserts one todo row per key and its message for topic, in one transaction. The
// messages table must exist: forward creates it.
func write(ctx context.Context, db *stdsql.DB, topic, user string, payload []byte, keys []string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit a no-op
	now := time.Now().UTC().Truncate(time.Millisecond)
	p, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx), wsql.PublisherConfig{SchemaAdapter: schema()}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	fp := forwarder.NewPublisher(p, forwarder.PublisherConfig{ForwarderTopic: forwarderTopic})
	msgs := make([]*message.Message, len(keys))
	for i, k := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO todos (id, user_id, title, status, priority, created_at, updated_at)
			VALUES ($1, $2, 'peer', 'PENDING', 'NORMAL', $3, $3)`, k, user, now); err != nil {
			return fmt.Errorf("insert todo: %w", err)
		}
		id := uuid.NewString()
		m := message.NewMessage(id, payload)
		m.Metadata.Set("key", k)
		m.Metadata.Set("ce_id", id)
		m.Metadata.Set("ce_type", "todos.task.created")
		m.Metadata.Set("ce_time", now.Format(time.RFC3339Nano))
		msgs[i] = m
	}
	if err := fp.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return tx.Commit()
}

func versions() error {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("no build info")
	}
	v := map[string]string{"go": bi.GoVersion}
	for _, d := range bi.Deps {
		if strings.Contains(d.Path, "ThreeDotsLabs") || d.Path == "github.com/IBM/sarama" {
			v[d.Path] = d.Version
		}
	}
	return json.NewEncoder(os.Stdout).Encode(v)
}
