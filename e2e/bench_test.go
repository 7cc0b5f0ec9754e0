//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/todocdc/pipeline/events"
)

// BenchmarkCreateTodo measures the write path over HTTP: authenticate, validate, encode the event,
// and commit the todo row and its outbox row in one transaction.
func BenchmarkCreateTodo(b *testing.B) {
	tok := token(b, uniqueUser("bench"))
	body := []byte(`{"title":"benchmark todo"}`)
	b.ResetTimer()
	for b.Loop() {
		if r := call(b, "POST", "/v1/todos", tok, "application/json", body); r.Status != 201 {
			b.Fatalf("create: %d %s", r.Status, r.Body)
		}
	}
}

// BenchmarkCommitToKafka measures the latency from the API's answer (the transaction committed)
// to the record being readable on todos.task.events by a read_committed consumer, one todo at a
// time, and reports its percentiles. Debezium's poll.interval.ms dominates it.
func BenchmarkCommitToKafka(b *testing.B) {
	reader := newTopicReader(b, events.Topic)
	tok := token(b, uniqueUser("latency"))
	body := []byte(`{"title":"latency probe"}`)
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		r := call(b, "POST", "/v1/todos", tok, "application/json", body)
		committed := time.Now()
		if r.Status != 201 {
			b.Fatalf("create: %d %s", r.Status, r.Body)
		}
		var created struct{ ID string }
		if err := json.Unmarshal(r.Body, &created); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for found := false; !found; {
			if time.Now().After(deadline) {
				b.Fatalf("todo %s not on %s after 30s", created.ID, events.Topic)
			}
			if m, err := reader.poll(50 * time.Millisecond); err != nil {
				b.Fatal(err)
			} else if m != nil && string(m.Key) == created.ID {
				found = true
			}
		}
		lat = append(lat, time.Since(committed))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	fmt.Printf("commit -> Kafka over %d todos: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", len(lat), pct(0.5), pct(0.99), float64(lat[len(lat)-1].Microseconds())/1000)
}
