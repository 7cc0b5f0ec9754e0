package consumer

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// recordingParts records pause/resume calls and stored offsets.
type recordingParts struct {
	mu          sync.Mutex
	calls       []string
	stored      []kafka.Offset
	failResumes int // the next Resume calls that fail
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
	if p.failResumes > 0 {
		p.failResumes--
		p.calls = append(p.calls, "resume-failed")
		return errors.New("resume failed")
	}
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

// A partition paused when its worker stops (revoke or shutdown) is resumed first: librdkafka's
// pause flag survives the revoke, and the partition's next worker would never resume it.
func TestWorkerStopResumesAPausedPartition(t *testing.T) {
	for _, why := range []string{"backoff", "full queue"} {
		t.Run(why, func(t *testing.T) {
			f := newFixture(t, func(int) error { return nil })
			f.c.cfg.QueueSize = 4
			parts := &recordingParts{}
			f.c.ctl = parts
			topic := "t"
			w := newWorker(f.c, partKey{topic, 0})
			if why == "backoff" {
				w.pauseForBackoff(true)
			} else {
				for o := range 4 {
					w.enqueue(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Offset: kafka.Offset(o)}})
				}
			}
			close(w.done) // no run goroutine
			w.stop()
			if calls, _ := parts.snapshot(); !slices.Equal(calls, []string{"pause", "resume"}) {
				t.Fatalf("calls %v: want the partition resumed at stop", calls)
			}
			w.pauseForBackoff(true) // after stop: nothing
			if calls, _ := parts.snapshot(); len(calls) != 2 {
				t.Fatalf("calls %v: a stopped worker paused again", calls)
			}
		})
	}
}

// A Resume that fails is tried again until it passes, even with nothing queued to trigger it.
func TestWorkerRetriesAFailedResume(t *testing.T) {
	defer func(d time.Duration) { resumeRetryDelay = d }(resumeRetryDelay)
	resumeRetryDelay = time.Millisecond
	f := newFixture(t, func(int) error { return nil })
	parts := &recordingParts{failResumes: 3}
	f.c.ctl = parts
	w := newWorker(f.c, partKey{"t", 0})
	w.pauseForBackoff(true)
	w.pauseForBackoff(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls, _ := parts.snapshot()
		if len(calls) > 0 && calls[len(calls)-1] == "resume" {
			want := []string{"pause", "resume-failed", "resume-failed", "resume-failed", "resume"}
			if !slices.Equal(calls, want) {
				t.Fatalf("calls %v, want %v", calls, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls %v: the failed resume was not retried", calls)
		}
		time.Sleep(time.Millisecond)
	}
	w.mu.Lock()
	paused := w.paused
	w.mu.Unlock()
	if paused {
		t.Fatal("worker still thinks the partition is paused")
	}
}

// /readyz's group membership: set on assignment, cleared by a lost assignment or a revoke that
// leaves no partition; newly assigned partitions are resumed (a pause flag left from before).
func TestJoinedFollowsTheAssignment(t *testing.T) {
	f := newFixture(t, func(int) error { return nil })
	parts := &recordingParts{}
	f.c.ctl = parts
	topic := "t"
	tp := func(p int32) kafka.TopicPartition { return kafka.TopicPartition{Topic: &topic, Partition: p} }
	f.c.assigned([]kafka.TopicPartition{tp(0), tp(1)})
	if !f.c.joined.Load() {
		t.Fatal("not joined after an assignment")
	}
	if calls, _ := parts.snapshot(); !slices.Equal(calls, []string{"resume"}) {
		t.Fatalf("calls %v: want the assigned partitions resumed", calls)
	}
	f.c.revoked([]kafka.TopicPartition{tp(0)}, false)
	if !f.c.joined.Load() {
		t.Fatal("not joined after a revoke that leaves a partition")
	}
	f.c.revoked([]kafka.TopicPartition{tp(1)}, false)
	if f.c.joined.Load() {
		t.Fatal("still joined after a revoke that leaves no partition")
	}
	f.c.assigned([]kafka.TopicPartition{tp(0), tp(1)})
	f.c.revoked([]kafka.TopicPartition{tp(0)}, true)
	if f.c.joined.Load() {
		t.Fatal("still joined after a lost assignment")
	}
	f.c.stopWorkers(f.c.allWorkers())
}
