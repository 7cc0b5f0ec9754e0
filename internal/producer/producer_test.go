package producer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/todocdc/pipeline/kafkaconf"
)

func TestProducerRecordsFatalError(t *testing.T) {
	p, err := New(kafkaconf.Client{BootstrapServers: "127.0.0.1:1"}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Err() != nil {
		t.Fatalf("new producer: %v", p.Err())
	}
	p.p.TestFatalError(kafka.ErrOutOfOrderSequenceNumber, "test fatal")
	deadline := time.Now().Add(5 * time.Second)
	for p.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	topic := "t"
	err = p.Publish(context.Background(), &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}})
	if !errors.Is(err, ErrFatal) || errors.Is(err, ErrNotDelivered) {
		t.Fatalf("Publish after a fatal error: %v want ErrFatal, not ErrNotDelivered", err)
	}
}

func TestProducerConfigUsesJavaPartitioner(t *testing.T) {
	cfg := *kafkaconf.Client{BootstrapServers: "b:9092"}.ConfigMap(producerConfig(kafka.ConfigMap{"linger.ms": 0}))
	for k, want := range map[string]kafka.ConfigValue{"partitioner": "murmur2_random", "enable.idempotence": true,
		"acks": "all", "linger.ms": 0, "bootstrap.servers": "b:9092"} {
		if cfg[k] != want {
			t.Errorf("%s = %v, want %v", k, cfg[k], want)
		}
	}
}
