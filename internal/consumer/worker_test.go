package consumer

import (
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// recordingParts records pause/resume calls and stored offsets.
type recordingParts struct {
	mu     sync.Mutex
	calls  []string
	stored []kafka.Offset
}

func (p *recordingParts) Pause([]kafka.TopicPartition) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "pause")
	return nil
}

func (p *recordingParts) Resume([]kafka.TopicPartition) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "resume")
	return nil
}

func (p *recordingParts) StoreOffsets(tps []kafka.TopicPartition) ([]kafka.TopicPartition, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tp := range tps {
		p.stored = append(p.stored, tp.Offset)
	}
	return tps, nil
}

func (p *recordingParts) snapshot() ([]string, []kafka.Offset) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...), append([]kafka.Offset(nil), p.stored...)
}

func TestWorkerQueuePausesAndDropsRefetches(t *testing.T) {
	f := newFixture(t, func(int) error { return nil })
	f.c.cfg.QueueSize = 8
	parts := &recordingParts{}
	f.c.ctl = parts
	topic := "t"
	w := newWorker(f.c, partKey{topic, 0})
	for o := range 8 {
		w.enqueue(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Offset: kafka.Offset(o)}})
	}
	w.enqueue(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Offset: 3}}) // a re-fetch
	if calls, _ := parts.snapshot(); len(calls) != 1 || calls[0] != "pause" || len(w.queue) != 8 {
		t.Fatalf("after 8 records (+1 re-fetch): calls %v, queue %d; want one pause, 8 queued", calls, len(w.queue))
	}
	for range 6 { // down to QueueSize/4 = 2 left
		w.next()
	}
	if calls, _ := parts.snapshot(); len(calls) != 2 || calls[1] != "resume" {
		t.Fatalf("calls %v: want a resume once the queue drained", calls)
	}
	w.pauseForBackoff(true)
	w.pauseForBackoff(false)
	if calls, _ := parts.snapshot(); len(calls) != 4 || calls[2] != "pause" || calls[3] != "resume" {
		t.Fatalf("calls %v: want pause and resume around a backoff", calls)
	}
}

func TestWorkerStoresNextOffsetAfterEachRecord(t *testing.T) {
	f := newFixture(t, func(int) error { return nil })
	parts := &recordingParts{}
	f.c.ctl = parts
	topic := "t"
	w := newWorker(f.c, partKey{topic, 0})
	go w.run()
	for o := 10; o < 13; o++ {
		m := record(topic, "ok", "e"+string(rune('a'+o)), "todos.task.created")
		m.TopicPartition.Offset = kafka.Offset(o)
		w.enqueue(m)
	}
	for {
		if _, stored := parts.snapshot(); len(stored) == 3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	w.stop()
	if _, stored := parts.snapshot(); stored[0] != 11 || stored[2] != 13 {
		t.Fatalf("stored offsets %v, want 11 12 13 (next to read)", stored)
	}
	if f.calls != 3 {
		t.Fatalf("handler ran %d times", f.calls)
	}
}
