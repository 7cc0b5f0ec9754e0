//go:build e2e

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/todocdc/pipeline/consumer"
	"github.com/todocdc/pipeline/events"
	ct "github.com/todocdc/pipeline/internal/consumertest"
	"github.com/todocdc/pipeline/internal/metricstest"
)

// TestE2EDLQReplayAppliesOnce: a record dead-lettered by a handler's permanent error is listed and
// shown with its failure headers, replayed once the cause is gone, and applied exactly once; a
// forced second replay is skipped as a duplicate.
func TestE2EDLQReplayAppliesOnce(t *testing.T) {
	e := ct.LoadEnv(t)        // Kafka, the registry, PostgreSQL: this test needs no Connect
	env := asAdmin(environ()) // the test's own scratch topics: outside the operator's ACLs
	topic, retryTopic, dlqTopic := ct.Topic(t, e, 1), ct.Topic(t, e, 1), ct.Topic(t, e, 1)
	_, dbURL := ct.Schema(t, e)
	group := ct.Name(t, "group")
	dlq := ct.NewReader(t, e, dlqTopic)

	var broken atomic.Bool
	broken.Store(true)
	r := consumer.NewRouter()
	consumer.Handle(r, func(ctx context.Context, tx *sql.Tx, m *consumer.Message, ev events.TodoCreated) error {
		if broken.Load() {
			return consumer.PermanentError(errors.New("user directory says no such user"))
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO applied (event_id) VALUES ($1)`, m.EventID)
		return err
	})
	svc, db := ct.RunService(t, consumer.ServiceConfig{
		Config: consumer.Config{BootstrapServers: e.Kafka.BootstrapServers, Security: e.Kafka.Security, GroupID: group, Topic: topic,
			RetryTopic: retryTopic, DLQTopic: dlqTopic},
		DatabaseURL: dbURL, RegistryURL: e.RegistryURL,
	}, func(ctx context.Context, db *sql.DB) error {
		_, err := db.ExecContext(ctx, `CREATE TABLE applied (event_id text NOT NULL)`)
		return err
	}, func(*sql.DB) *consumer.Router { return r })
	applied := func(id string) int {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM applied WHERE event_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	ev := events.TodoCreated{TodoID: uuid.NewString(), UserID: "dlq-replay", Title: "replay me", Status: events.StatusPending,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	id := uuid.NewString()
	ct.Publish(t, ct.Producer(t, e), ct.Record(topic, id, ev, ct.Encode(t, ct.Serializer(t, e), ev)))
	dead := dlq.Until(60*time.Second, ct.OfGroup(group), func(ms []*kafka.Message) bool { return len(ms) == 1 })
	off := fmt.Sprint(int64(dead[0].TopicPartition.Offset))

	type listed struct {
		Offset        int64      `json:"offset"`
		EventID       string     `json:"event_id"`
		OriginalTopic string     `json:"original_topic"`
		ErrorClass    string     `json:"error_class"`
		Error         string     `json:"error"`
		Group         string     `json:"consumer_group"`
		ReplayedAt    *time.Time `json:"replayed_time"`
		ReplayedTo    string     `json:"replayed_to_topic"`
		Event         map[string]any
	}
	find := func(argv ...string) *listed {
		var ls []listed
		out := mustRun(t, env, exitOK, append(argv, "-o", "json", "--topic", dlqTopic)...)
		if err := json.Unmarshal([]byte(out), &ls); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
		for i := range ls {
			if ls[i].EventID == id {
				return &ls[i]
			}
		}
		return nil
	}
	l := find("dlq", "list")
	if l == nil || l.OriginalTopic != topic || l.ErrorClass != "permanent" || l.Group != group ||
		!strings.Contains(l.Error, "no such user") || l.ReplayedAt != nil || fmt.Sprint(l.Offset) != off {
		t.Fatalf("dlq list: %+v", l)
	}
	s := find("dlq", "show", off)
	if s == nil || s.Event["TodoID"] != ev.TodoID {
		t.Fatalf("dlq show %s: %+v", off, s)
	}
	if txt := mustRun(t, env, exitOK, "dlq", "show", off, "--topic", dlqTopic); !strings.Contains(txt, "no such user") || !strings.Contains(txt, ev.TodoID) {
		t.Fatalf("dlq show (text):\n%s", txt)
	}

	// the cause is fixed: a dry run says what replay would do and writes nothing ...
	broken.Store(false)
	if out := mustRun(t, env, exitOK, "dlq", "replay", off, "--topic", dlqTopic, "--dry-run"); !strings.Contains(out, "would replay offset "+off) {
		t.Fatalf("dlq replay --dry-run:\n%s", out)
	}
	if l := find("dlq", "list"); l == nil || l.ReplayedAt != nil {
		t.Fatalf("dlq replay --dry-run recorded a replay: %+v", l)
	}
	// ... then replay, applied once
	mustRun(t, env, exitOK, "dlq", "replay", off, "--topic", dlqTopic)
	ct.Eventually(t, 60*time.Second, "the replayed event applied", func() (bool, string) {
		n := applied(id)
		return n == 1, fmt.Sprintf("applied %d times", n)
	})
	if l := find("dlq", "list"); l != nil {
		t.Errorf("dlq list still shows the replayed record: %+v", l)
	}
	if l := find("dlq", "list", "--all"); l == nil || l.ReplayedAt == nil || l.ReplayedTo != topic {
		t.Errorf("dlq list --all does not record the replay: %+v", l)
	}
	// replaying again without --force skips it, saying so (a re-run after a partial failure);
	// forced, the consumer skips the duplicate
	if out := mustRun(t, env, exitOK, "dlq", "replay", off, "--topic", dlqTopic); !strings.Contains(out, "skipped offset "+off) {
		t.Fatalf("a second replay without --force did not skip the record:\n%s", out)
	}
	var rs []struct {
		Offset int64
		Status string
	}
	out := mustRun(t, env, exitOK, "dlq", "replay", off, "--topic", dlqTopic, "-o", "json")
	if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 || rs[0].Status != "skipped" {
		t.Fatalf("dlq replay -o json of a replayed record: %v\n%s", err, out)
	}
	mustRun(t, env, exitOK, "dlq", "replay", off, "--force", "--topic", dlqTopic)
	ct.Eventually(t, 60*time.Second, "the second replay skipped as a duplicate", func() (bool, string) {
		want := `consumer_events_duplicate_total{group="` + group + `",type="todos.task.created"} 1`
		return strings.Contains(metricstest.Scrape(t, svc.Consumer.Handler()), want), "no duplicate counted yet"
	})
	if n := applied(id); n != 1 {
		t.Fatalf("after a forced second replay the event is applied %d times, want 1", n)
	}
	// to a compacted topic: a warning that compaction may keep the replayed record
	compacted := ct.TopicWith(t, e, 1, map[string]string{"cleanup.policy": "compact"})
	code, _, stderr := runCLI(t, env, "dlq", "replay", off, "--force", "--to", compacted, "--topic", dlqTopic)
	if code != exitOK || !strings.Contains(stderr, "warning: "+compacted+" is compacted") {
		t.Fatalf("replay to a compacted topic: exit %d, no compaction warning; stderr:\n%s", code, stderr)
	}
}
