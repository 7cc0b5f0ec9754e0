//go:build e2e

package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/topicreader"
	"github.com/todocdc/pipeline/internal/topics"
)

// scratchTopics writes a topics file declaring topics of the test's own (random names, so they
// are new to the cluster: a "fresh cluster" as far as they go) and deletes the topics at the end.
func scratchTopics(t *testing.T, env map[string]string, partitions int, names ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("topics:\n")
	for _, n := range names {
		fmt.Fprintf(&b, `  - name: %s
    partitions: %d
    replication_factor: 3
    configs:
      cleanup.policy: compact
      retention.ms: "2592000000"
      min.compaction.lag.ms: "604800000"
      min.insync.replicas: "2"
`, n, partitions)
	}
	f := filepath.Join(t.TempDir(), "topics.yaml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopics(t, env, names...) })
	return f
}

func deleteTopics(t *testing.T, env map[string]string, names ...string) {
	ac, err := kafka.NewAdminClient(adminKafka(env).ConfigMap(nil))
	if err != nil {
		t.Errorf("admin client: %v", err)
		return
	}
	defer ac.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ac.DeleteTopics(ctx, names); err != nil {
		t.Errorf("delete scratch topics %v: %v", names, err)
	}
}

func scratchName(kind string) string {
	return fmt.Sprintf("e2e.scratch%d.%s", time.Now().UnixNano(), kind)
}

func TestE2ETopicsApplyCreatesDeclaredTopicsThenIsANoOp(t *testing.T) {
	env := e2eEnv(t)
	a, b := scratchName("created"), scratchName("completed")
	file := scratchTopics(t, env, 3, a, b)

	code, out, stderr := runCLI(t, env, "topics", "apply", "--file", file)
	if code != exitOK || !strings.Contains(out, a+": created") || !strings.Contains(out, b+": created") {
		t.Fatalf("first apply: exit %d\n%s\n%s", code, out, stderr)
	}
	admin, err := topics.NewAdmin(adminKafka(env), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers, err := admin.Brokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if brokers < 3 && !strings.Contains(stderr, "replication") {
		t.Errorf("replication factor 3 on %d broker(s) without a warning:\n%s", brokers, stderr)
	}
	actual, err := admin.Describe(ctx, []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{a, b} {
		got := actual[n]
		if got.Partitions != 3 || got.ReplicationFactor != min(3, brokers) {
			t.Errorf("%s: %d partitions, replication %d", n, got.Partitions, got.ReplicationFactor)
		}
		for k, v := range map[string]string{"cleanup.policy": "compact", "retention.ms": "2592000000", "min.compaction.lag.ms": "604800000"} {
			if got.Configs[k] != v {
				t.Errorf("%s: %s=%q, want %q", n, k, got.Configs[k], v)
			}
		}
	}

	out = mustRun(t, env, exitOK, "topics", "apply", "--file", file)
	if !strings.Contains(out, "nothing to do") || strings.Contains(out, ": created") {
		t.Fatalf("second apply did something:\n%s", out)
	}

	// fewer partitions than the cluster has: reported, not applied, exit 1; the topic keeps 3
	fewer := scratchTopicsFile(t, strings.ReplaceAll(readFile(t, file), "partitions: 3", "partitions: 2"))
	out = mustRun(t, env, exitFailure, "topics", "apply", "--file", fewer)
	if !strings.Contains(out, "NOT APPLIED") {
		t.Fatalf("lowering partitions was not reported:\n%s", out)
	}
	if actual, err = admin.Describe(ctx, []string{a}); err != nil || actual[a].Partitions != 3 {
		t.Fatalf("partitions after a refused lowering: %+v, %v", actual[a], err)
	}

	// irreversible changes (more partitions, a lower retention.ms, another cleanup.policy) are
	// conflicts without --allow-destructive: reported, exit 1, nothing changed
	destr := strings.ReplaceAll(readFile(t, file), "partitions: 3", "partitions: 4")
	destr = strings.ReplaceAll(destr, `retention.ms: "2592000000"`, `retention.ms: "86400000"`)
	destr = strings.ReplaceAll(destr, "cleanup.policy: compact", "cleanup.policy: delete")
	destructive := scratchTopicsFile(t, destr)
	out = mustRun(t, env, exitFailure, "topics", "apply", "--file", destructive)
	for _, want := range []string{"NOT APPLIED: has 3 partitions, declared 4", "retention.ms lowered 2592000000 -> 86400000",
		"cleanup.policy compact -> delete", "--allow-destructive"} {
		if !strings.Contains(out, want) {
			t.Errorf("without --allow-destructive the output lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, env, exitOK, "topics", "apply", "--file", destructive, "--dry-run", "--allow-destructive")
	if !strings.Contains(out, a+": would raise partitions: 3 -> 4 (DESTRUCTIVE") || !strings.Contains(out, "retention.ms 2592000000 -> 86400000 (DESTRUCTIVE)") {
		t.Errorf("--dry-run --allow-destructive does not show the changes:\n%s", out)
	}
	if actual, err = admin.Describe(ctx, []string{a}); err != nil || actual[a].Partitions != 3 ||
		actual[a].Configs["retention.ms"] != "2592000000" || actual[a].Configs["cleanup.policy"] != "compact" {
		t.Fatalf("topic changed without --allow-destructive: %+v, %v", actual[a], err)
	}
	out = mustRun(t, env, exitOK, "topics", "apply", "--file", destructive, "--allow-destructive")
	if !strings.Contains(out, a+": partitions raised: 3 -> 4") {
		t.Errorf("--allow-destructive did not raise the partitions:\n%s", out)
	}
	if actual, err = admin.Describe(ctx, []string{a}); err != nil || actual[a].Partitions != 4 ||
		actual[a].Configs["retention.ms"] != "86400000" || actual[a].Configs["cleanup.policy"] != "delete" {
		t.Fatalf("topic after --allow-destructive: %+v, %v", actual[a], err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func scratchTopicsFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "topics.yaml")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestE2ETailDecodesEventsAndShowsUndecodableAsHex copies a real event of todos.task.events into
// a scratch topic after a value that is not Avro, and tails it.
func TestE2ETailDecodesEventsAndShowsUndecodableAsHex(t *testing.T) {
	env := e2eEnv(t)
	kc := adminKafka(env)
	topic := scratchName("tail")
	mustRun(t, env, exitOK, "topics", "apply", "--file", scratchTopics(t, env, 1, topic))

	// a decodable event of the pipeline (other tests put undecodable records there too)
	var real tailRecord
	out := mustRun(t, env, exitOK, "tail", events.Topic, "--from-beginning", "--max", "200", "--no-follow", "-o", "json")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r tailRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("tail of %s: %v\n%s", events.Topic, err, line)
		}
		if r.Error == "" && r.Record != "" {
			real = r
			break
		}
	}
	if real.Record == "" {
		t.Fatalf("no decodable event among the first records of %s:\n%s", events.Topic, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := topicreader.Open(ctx, topicreader.Config{Kafka: kc, Topic: real.Topic, GroupID: "e2e-tail-copy",
		Partitions: []int32{real.Partition}, Start: topicreader.AtOffset(real.Offset)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	msg, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}

	p, err := kafka.NewProducer(kc.ConfigMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	junk := []byte("not avro at all")
	for _, m := range []*kafka.Message{
		{Key: []byte("k-junk"), Value: junk, Headers: []kafka.Header{{Key: "dlq.error", Value: []byte("why")}}},
		{Key: msg.Key, Value: msg.Value, Headers: msg.Headers},
	} {
		m.TopicPartition = kafka.TopicPartition{Topic: &topic, Partition: 0}
		delivered := make(chan kafka.Event, 1)
		if err := p.Produce(m, delivered); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-delivered:
			if err := ev.(*kafka.Message).TopicPartition.Error; err != nil {
				t.Fatalf("produce to %s: %v", topic, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("produce to %s: no delivery report after 30s", topic)
		}
	}

	out = mustRun(t, env, exitOK, "tail", topic, "--from-beginning", "--no-follow", "-o", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 records, got:\n%s", out)
	}
	var bad, good tailRecord
	if json.Unmarshal([]byte(lines[0]), &bad) != nil || json.Unmarshal([]byte(lines[1]), &good) != nil {
		t.Fatalf("not JSON lines:\n%s", out)
	}
	if bad.Error == "" || bad.ValueHex != hex.EncodeToString(junk) || bad.Key != "k-junk" || len(bad.Headers) != 1 || bad.Headers[0].Value != "why" {
		t.Errorf("undecodable record: %+v", bad)
	}
	if good.Error != "" || good.Record != real.Record || good.Event["todo_id"] != real.Event["todo_id"] || good.Offset != 1 {
		t.Errorf("decoded record: %+v, want the event of %+v", good, real)
	}
	var ceType bool
	for _, h := range good.Headers {
		ceType = ceType || h.Key == events.HeaderType && h.Value != ""
	}
	if !ceType {
		t.Errorf("headers lost: %+v", good.Headers)
	}

	out = mustRun(t, env, exitOK, "tail", topic, "--offset", "1", "--max", "1")
	if !strings.Contains(out, topic+"[0]@1 ") || !strings.Contains(out, real.Record) || strings.Contains(out, "@0 ") {
		t.Errorf("--offset 1 --max 1:\n%s", out)
	}
	out = mustRun(t, env, exitOK, "tail", topic, "--since", "10m", "--no-follow")
	if !strings.Contains(out, "undecodable: ") || !strings.Contains(out, "value (hex): "+hex.EncodeToString(junk)) {
		t.Errorf("--since 10m:\n%s", out)
	}
}

// TestE2EConnectorLifecycle pauses, resumes, stops and resumes the outbox connector, shows its
// offsets, and checks that a reset is refused while it runs. It leaves it RUNNING.
func TestE2EConnectorLifecycle(t *testing.T) {
	env := e2eEnv(t)
	mustRun(t, env, exitOK, "connectors", "apply", outboxConnectorFile)
	t.Cleanup(func() {
		if code, out, stderr := runCLI(t, env, "connectors", "resume", "todos-outbox"); code != exitOK {
			t.Errorf("resume at cleanup: exit %d\n%s\n%s", code, out, stderr)
		}
	})

	out := mustRun(t, env, exitOK, "connectors", "offsets", "todos-outbox", "-o", "json")
	var offs struct {
		Offsets []struct{ Partition, Offset map[string]any }
	}
	if err := json.Unmarshal([]byte(out), &offs); err != nil || len(offs.Offsets) == 0 || offs.Offsets[0].Offset["lsn"] == nil {
		t.Fatalf("offsets: %v\n%s", err, out)
	}
	out = mustRun(t, env, exitFailure, "connectors", "offsets", "todos-outbox", "--reset", "--yes")
	if !strings.Contains(out, "not STOPPED") {
		t.Fatalf("reset of a running connector:\n%s", out)
	}

	for _, step := range []struct{ verb, want string }{
		{"pause", "todos-outbox: paused; PAUSED, tasks 0=PAUSED"},
		{"resume", "todos-outbox: resumed; RUNNING, tasks 0=RUNNING"},
		{"stop", "todos-outbox: stopped; STOPPED, no tasks"},
		{"resume", "todos-outbox: resumed; RUNNING, tasks 0=RUNNING"},
	} {
		out := mustRun(t, env, exitOK, "connectors", step.verb, "todos-outbox")
		if !strings.HasPrefix(out, step.want) {
			t.Fatalf("%s: %q, want %q", step.verb, out, step.want)
		}
	}
	out = mustRun(t, env, exitOK, "connectors", "status", "todos-outbox", "-o", "json")
	var st []struct {
		Connector struct{ State string }
		Tasks     []struct{ State string }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 || st[0].Connector.State != "RUNNING" {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if code, _, _ := runCLI(t, env, "connectors", "pause", "no-such-connector"); code != exitFailure {
		t.Errorf("pause of a missing connector: exit %d, want %d", code, exitFailure)
	}
}
