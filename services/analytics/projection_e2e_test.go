//go:build e2e

package main

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
	ct "github.com/todocdc/pipeline/internal/consumertest"
)

// TestDuplicateDeliveryChangesProjectionOnce delivers a todo's created and completed events, then
// both again (the same ce_id, as a producer retry or a Debezium restart would), then a fence
// event: the figures are those of one delivery.
func TestDuplicateDeliveryChangesProjectionOnce(t *testing.T) {
	e := ct.LoadEnv(t)
	topic, retryTopic, dlqTopic := ct.Topic(t, e, 2), ct.Topic(t, e, 1), ct.Topic(t, e, 1)
	_, dbURL := ct.Schema(t, e)
	_, db := ct.RunService(t, consumer.ServiceConfig{
		Config: consumer.Config{BootstrapServers: e.Kafka.BootstrapServers, Security: e.Kafka.Security, GroupID: ct.Name(t, "analytics"), Topic: topic,
			RetryTopic: retryTopic, DLQTopic: dlqTopic},
		DatabaseURL: dbURL, RegistryURL: e.RegistryURL,
	}, setup(nil), func(*sql.DB) *consumer.Router { return routes() })

	ser, pub := ct.Serializer(t, e), ct.Producer(t, e)
	user, todoID, fenceID := "dup-"+uuid.NewString()[:8], uuid.NewString(), uuid.NewString()
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := events.TodoCreated{TodoID: todoID, UserID: user, Title: "once", Status: events.StatusPending, CreatedAt: now}
	done1 := events.TodoCompleted{TodoID: todoID, UserID: user, CompletedAt: now.Add(time.Second)}
	fence := events.TodoCreated{TodoID: fenceID, UserID: user, Title: "fence", Status: events.StatusPending, CreatedAt: now}
	createdRec := ct.Record(topic, uuid.NewString(), c, ct.Encode(t, ser, c))
	completedRec := ct.Record(topic, uuid.NewString(), done1, ct.Encode(t, ser, done1))
	ct.Publish(t, pub, createdRec, completedRec, createdRec, completedRec)
	// the fence shares the todo's key, so its partition: once it is applied, so are the duplicates
	fenceRec := ct.Record(topic, uuid.NewString(), fence, ct.Encode(t, ser, fence))
	fenceRec.Key = []byte(todoID)
	ct.Publish(t, pub, fenceRec)

	ct.Eventually(t, 60*time.Second, "the fence applied", func() (bool, string) {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM analytics_todos WHERE todo_id = $1`, fenceID).Scan(&n)
		return err == nil && n == 1, fmt.Sprint(n, err)
	})
	s, err := statsOf(context.Background(), db, user)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{UserID: user, Created: 2, Completed: 1, Deleted: 0, Open: 1, CompletionRate: 0.5}
	if s != want {
		t.Fatalf("figures after duplicate deliveries: %+v, want %+v", s, want)
	}
}
