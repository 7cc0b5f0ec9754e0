//go:build e2e

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/consumertest"
)

// TestE2ETraceFollowsATodoAcrossEveryHop: a todo's three events on a topic of the test's own,
// consumed by a group of its own: the created event applied, the completed one dead-lettered by a
// handler that refuses it for good, the deleted one written while the consumer is stopped. trace
// lists the three in order with their ce_id, committed time, partition and offset, and says
// applied (with the processed-events row's time), dead-lettered (with the error), pending.
func TestE2ETraceFollowsATodoAcrossEveryHop(t *testing.T) {
	env := e2eEnv(t)
	ce := consumertest.LoadEnv(t)
	topic := consumertest.Topic(t, ce, 3)
	retry := consumertest.Topic(t, ce, 3)
	dlqTopic := consumertest.Topic(t, ce, 1)
	_, dbURL := consumertest.Schema(t, ce)
	group := consumertest.Name(t, "e2e")
	ser := consumertest.Serializer(t, ce)
	p := consumertest.Producer(t, ce)

	todoID, user := uuid.NewString(), "trace-e2e"
	now := time.Now().UTC().Truncate(time.Millisecond)
	evs := []events.Event{
		events.TodoCreated{TodoID: todoID, UserID: user, Title: "trace", Status: events.StatusPending, CreatedAt: now},
		events.TodoCompleted{TodoID: todoID, UserID: user, CompletedAt: now.Add(time.Second)},
		events.TodoDeleted{TodoID: todoID, UserID: user, DeletedAt: now.Add(2 * time.Second)},
	}
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	// another todo's event on the same topic, not part of the trail; its handler fails (retriable):
	// it waits on the retry topic (the delay is long: it stays there during the test)
	other := events.TodoCreated{TodoID: uuid.NewString(), UserID: user, Title: "other", Status: events.StatusPending, CreatedAt: now}
	otherID := uuid.NewString()
	consumertest.Publish(t, p, consumertest.Record(topic, otherID, other, consumertest.Encode(t, ser, other)))

	_, stop := consumertest.StartService(t, consumer.ServiceConfig{
		Config: consumer.Config{BootstrapServers: ce.Kafka.BootstrapServers, Security: ce.Kafka.Security, GroupID: group, Topic: topic, RetryTopic: retry, DLQTopic: dlqTopic,
			RetryDelay: 5 * time.Minute, Backoff: consumer.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}},
		DatabaseURL: dbURL, RegistryURL: ce.RegistryURL},
		func(context.Context, *sql.DB) error { return nil },
		func(*sql.DB) *consumer.Router {
			r := consumer.NewRouter()
			consumer.Handle(r, func(_ context.Context, _ *sql.Tx, _ *consumer.Message, ev events.TodoCreated) error {
				if ev.TodoID == other.TodoID {
					return errors.New("trace test: not now")
				}
				return nil
			})
			consumer.Handle(r, func(context.Context, *sql.Tx, *consumer.Message, events.TodoCompleted) error {
				return consumer.PermanentError(errors.New("trace test: completion refused"))
			})
			consumer.Handle(r, func(context.Context, *sql.Tx, *consumer.Message, events.TodoDeleted) error { return nil })
			return r
		})

	for i := range 2 {
		consumertest.Publish(t, p, consumertest.Record(topic, ids[i], evs[i], consumertest.Encode(t, ser, evs[i])))
	}
	argv := []string{"trace", todoID, "--topic", topic, "--retry-topic", retry, "--dlq-topic", dlqTopic,
		"--group", group + "=" + dbURL, "--since", "10m", "-o", "json"}
	var res traceResult
	consumertest.Eventually(t, time.Minute, "created applied, completed dead-lettered", func() (bool, string) {
		code, out, stderr := runCLI(t, env, argv...)
		if code != exitOK {
			return false, out + stderr
		}
		res = traceResult{}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			return false, err.Error()
		}
		return len(res.Events) == 2 && res.Events[0].Groups[0].State == "applied" && res.Events[1].Groups[0].State == "dead-lettered", out
	})
	// the other todo: on the retry topic, with its retry count and error
	consumertest.Eventually(t, time.Minute, "the other todo's event on the retry topic", func() (bool, string) {
		code, out, stderr := runCLI(t, env, "trace", other.TodoID, "--topic", topic, "--retry-topic", retry, "--dlq-topic", dlqTopic,
			"--group", group+"="+dbURL, "--since", "10m", "-o", "json")
		res = traceResult{}
		if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || len(res.Events) != 1 {
			return false, out + stderr
		}
		return res.Events[0].Groups[0].State != "pending", out
	})
	if res.Events[0].EventID != otherID {
		t.Errorf("other todo: event %s, want %s", res.Events[0].EventID, otherID)
	}
	if g := res.Events[0].Groups[0]; g.State != "retrying" || g.Retry != 1 || !strings.Contains(g.Error, "not now") || !strings.HasPrefix(g.Where, retry+"[") {
		t.Errorf("other todo: %+v, want retrying, retry_count 1, the error, on %s", g, retry)
	}

	stop()
	consumertest.Publish(t, p, consumertest.Record(topic, ids[2], evs[2], consumertest.Encode(t, ser, evs[2])))

	out := mustRun(t, env, exitOK, argv...)
	res = traceResult{}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 3 {
		t.Fatalf("%d events, want 3:\n%s", len(res.Events), out)
	}
	wantTypes := []string{events.TypeCreated, events.TypeCompleted, events.TypeDeleted}
	wantStates := []string{"applied", "dead-lettered", "pending"}
	for i, ev := range res.Events {
		g := ev.Groups[0]
		if ev.Type != wantTypes[i] || ev.EventID != ids[i] || ev.Topic != topic || ev.CommittedAt.IsZero() || g.Group != group || g.State != wantStates[i] {
			t.Errorf("event %d: %+v, want %s %s %s", i, ev, wantTypes[i], ids[i], wantStates[i])
		}
		if i > 0 && (ev.Partition != res.Events[0].Partition || ev.Offset <= res.Events[i-1].Offset) {
			t.Errorf("event %d not after event %d on the todo's partition: %d@%d", i, i-1, ev.Partition, ev.Offset)
		}
	}
	if g := res.Events[0].Groups[0]; g.At == nil || g.At.Before(now.Add(-time.Minute)) {
		t.Errorf("applied without its processed_at: %+v", g)
	}
	if g := res.Events[1].Groups[0]; !strings.Contains(g.Error, "completion refused") || !strings.HasPrefix(g.Where, dlqTopic+"[0]@") {
		t.Errorf("dead-lettered without its error or place: %+v", g)
	}

	text := mustRun(t, env, exitOK, argv[:len(argv)-2]...)
	for _, want := range []string{"todo " + todoID + ": 3 events", "applied", "dead-lettered", "completion refused", "pending"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
	t.Logf("trace:\n%s", text)

	if code, out, _ := runCLI(t, env, "trace", uuid.NewString(), "--topic", topic, "--retry-topic", "", "--dlq-topic", "",
		"--group", group+"="+dbURL, "--since", "10m"); code != exitFailure || !strings.Contains(out, "not there yet") {
		t.Errorf("a todo with no event: exit %d\n%s", code, out)
	}
}
