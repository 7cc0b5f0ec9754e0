// Command notifier is a consumer of todos.task.events in the consumer group "notifier": it decodes
// each record (Avro, writer schema fetched by id from the registry) into a typed event and logs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/internal/config"
	"github.com/todocdc/pipeline/internal/events"
	"github.com/todocdc/pipeline/internal/serde"
)

type cfg struct {
	BootstrapServers string        `env:"KAFKA_BOOTSTRAP_SERVERS" envDefault:"127.0.0.1:9092" usage:"Kafka bootstrap servers"`
	RegistryURL      string        `env:"SCHEMA_REGISTRY_URL" envDefault:"http://127.0.0.1:8081/apis/ccompat/v7" usage:"Confluent-compatible Schema Registry URL"`
	RegistryTimeout  time.Duration `env:"SCHEMA_REGISTRY_TIMEOUT" envDefault:"5s" usage:"timeout of one registry request"`
	GroupID          string        `env:"GROUP_ID" envDefault:"notifier" usage:"consumer group id"`
	Topic            string        `env:"TOPIC" envDefault:"todos.task.events" usage:"topic to consume"`
	LogLevel         slog.Level    `env:"LOG_LEVEL" envDefault:"INFO" usage:"DEBUG, INFO, WARN or ERROR"`
}

func main() {
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: notifier

Consumes todos.task.events in consumer group "notifier" and logs every typed event it reads.

Configuration, from the environment:
`)
		config.Usage(flag.CommandLine.Output(), cfg{})
	}
	flag.Parse()
	c, err := config.Load[cfg]()
	if err != nil {
		fmt.Fprintf(os.Stderr, "notifier: %v\n(notifier -h lists the variables)\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, log); err != nil {
		log.Error("notifier stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c cfg, log *slog.Logger) error {
	consumer, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":             c.BootstrapServers,
		"group.id":                      c.GroupID,
		"partition.assignment.strategy": "cooperative-sticky",
		"isolation.level":               "read_committed",
		"auto.offset.reset":             "earliest",
		// Offsets are stored only after a record is handled, then committed in the background.
		"enable.auto.commit":       true,
		"enable.auto.offset.store": false,
	})
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	defer func() {
		if err := consumer.Close(); err != nil { // commits stored offsets and leaves the group
			log.Error("close consumer", "err", err)
		}
	}()
	if err := consumer.Subscribe(c.Topic, nil); err != nil {
		return fmt.Errorf("subscribe to %s: %w", c.Topic, err)
	}
	deser := serde.NewDeserializer(serde.NewRegistryClient(c.RegistryURL, c.RegistryTimeout))
	log.Info("notifier consuming", "topic", c.Topic, "group", c.GroupID, "bootstrap", c.BootstrapServers)

	for ctx.Err() == nil {
		switch ev := consumer.Poll(200).(type) {
		case *kafka.Message:
			if err := handle(ctx, deser, ev, log); err != nil {
				if ctx.Err() != nil {
					return nil // shutting down before the record was handled: it is read again next time
				}
				return err
			}
			if _, err := consumer.StoreMessage(ev); err != nil {
				return fmt.Errorf("store offset: %w", err)
			}
		case kafka.Error:
			if ev.IsFatal() {
				return fmt.Errorf("kafka: %w", ev)
			}
			log.Warn("kafka", "err", ev)
		}
	}
	log.Info("shutting down")
	return nil
}

// handle decodes and logs one record. A registry outage is retried with backoff until it passes
// (the record is never skipped for it); a record that can never be decoded is logged and skipped.
func handle(ctx context.Context, deser *serde.Deserializer, m *kafka.Message, log *slog.Logger) error {
	where := []any{"partition", m.TopicPartition.Partition, "offset", int64(m.TopicPartition.Offset), "key", string(m.Key)}
	backoff := 200 * time.Millisecond
	for {
		d, err := deser.Deserialize(ctx, m.Value)
		if err == nil {
			log.Info("event", append(where, "type", header(m, events.HeaderType), "id", header(m, events.HeaderID),
				"schema_id", d.SchemaID, "event", fmt.Sprintf("%+v", d.Event))...)
			return nil
		}
		if !serde.IsRetriable(err) {
			log.Error("skipping a record that cannot be decoded", append(where, "err", err)...)
			return nil
		}
		log.Warn("registry unavailable, retrying", append(where, "err", err, "in", backoff)...)
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func header(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
