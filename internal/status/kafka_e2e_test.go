//go:build e2e

package status_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	ct "github.com/todocdc/pipeline/internal/consumertest"
	"github.com/todocdc/pipeline/internal/status"
)

// TestGroupLagCountsRecordsNotMarkers: a group committed below records, a committed transaction
// and an aborted one has as lag the records a read_committed consumer would still get: the
// commit and abort markers and the aborted record are not counted, and the figure is exact.
func TestGroupLagCountsRecordsNotMarkers(t *testing.T) {
	e := ct.LoadEnv(t)
	topic := ct.Topic(t, e, 2)
	group := ct.Name(t, "lag")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec := func(p int32) *kafka.Message {
		return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: p}, Value: []byte("v")}
	}
	// partition 0: offsets 0-3 plain, 4-5 a committed transaction, 6 its marker
	// partition 1: offsets 0-1 plain, 2 an aborted transaction, 3 its marker
	ct.Publish(t, ct.Producer(t, e), rec(0), rec(0), rec(0), rec(0), rec(1), rec(1))
	p, err := kafka.NewProducer(e.Kafka.ConfigMap(kafka.ConfigMap{"transactional.id": group}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tx := range []struct {
		ms     []*kafka.Message
		commit bool
	}{{[]*kafka.Message{rec(0), rec(0)}, true}, {[]*kafka.Message{rec(1)}, false}} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		delivered := make(chan kafka.Event, len(tx.ms))
		for _, m := range tx.ms {
			if err := p.Produce(m, delivered); err != nil {
				t.Fatal(err)
			}
		}
		for range tx.ms { // an abort would drop records not sent yet
			if m, ok := (<-delivered).(*kafka.Message); !ok || m.TopicPartition.Error != nil {
				t.Fatalf("delivery in a transaction: %v", m)
			}
		}
		end := p.CommitTransaction
		if !tx.commit {
			end = p.AbortTransaction
		}
		if err := end(ctx); err != nil {
			t.Fatal(err)
		}
	}

	admin, err := kafka.NewAdminClient(e.Kafka.ConfigMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	committed := []kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: 1}, {Topic: &topic, Partition: 1, Offset: 0}}
	if _, err := admin.AlterConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: committed}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.DeleteConsumerGroups(context.Background(), []string{group}) })

	gs, err := status.GroupLag(ctx, e.Kafka, group)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(gs.Partitions)
	want := fmt.Sprint([]status.PartitionLag{
		{Topic: topic, Partition: 0, Committed: 1, End: 7, Lag: 5, Exact: true},
		{Topic: topic, Partition: 1, Committed: 0, End: 4, Lag: 2, Exact: true},
	})
	if got != want {
		t.Errorf("lag of %s:\n got %s\nwant %s", group, got, want)
	}
}
