package consumer

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
)

// worker processes one partition's records in order, in its own goroutine, so a partition in
// backoff or waiting out a retry delay never holds up the others nor the poll loop (which must
// keep polling to stay in the group). Its queue is bounded by pausing the partition.
type worker struct {
	h   recordsHandler
	set workerSettings
	key partKey
	tp  []kafka.TopicPartition

	mu       sync.Mutex
	queue    []*kafka.Message
	last     kafka.Offset // highest offset queued: a re-fetch after resume is not queued twice
	closed   bool
	paused   bool        // the partition is paused
	backoff  bool        // because of a backoff (else: because the queue is full)
	retry    *time.Timer // a failed Resume is tried again when it fires
	signal   chan struct{}
	done     chan struct{}
	waitCtx  context.Context // ends at stop: backoffs and delays are abandoned
	stopWait context.CancelFunc
	runCtx   context.Context // ends ShutdownTimeout after stop: a handler still running is cancelled
	stopRun  context.CancelFunc
}

// recordsHandler takes a partition's records, in order, each to an outcome, and calls done(m)
// once m's offset may be stored; it returns an error only when s.wait ended first (what is not
// done is left for the partition's next owner).
type recordsHandler interface {
	handle(s scope, ms []*kafka.Message, done func(*kafka.Message)) error
}

// workerHost is what a worker needs from its consumer: its settings for the partition and the
// handler of its records.
type workerHost interface {
	recordsHandler
	workerSettings(k partKey) workerSettings
}

// workerSettings are a worker's limits and tools.
type workerSettings struct {
	queueSize       int           // records buffered before the partition is paused
	batchSize       int           // records handed over at once, at most
	shutdownTimeout time.Duration // how long a record in hand may take at stop
	ctl             partitions
	log             *slog.Logger
	paused          *prometheus.GaugeVec // topic, partition: 1 while paused
}

func newWorker(host workerHost, k partKey) *worker {
	topic := k.topic
	w := &worker{h: host, set: host.workerSettings(k), key: k, tp: []kafka.TopicPartition{{Topic: &topic, Partition: k.partition}},
		last: -1, signal: make(chan struct{}, 1), done: make(chan struct{})}
	w.waitCtx, w.stopWait = context.WithCancel(context.Background())
	w.runCtx, w.stopRun = context.WithCancel(context.Background())
	return w
}

func (w *worker) enqueue(m *kafka.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || m.TopicPartition.Offset <= w.last {
		return
	}
	w.last = m.TopicPartition.Offset
	w.queue = append(w.queue, m)
	if len(w.queue) >= w.set.queueSize {
		w.setPausedLocked(true)
	}
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// next waits for the next record; nil once the worker is stopped.
func (w *worker) next() *kafka.Message {
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return nil
		}
		if len(w.queue) > 0 {
			m := w.queue[0]
			w.queue[0] = nil
			w.queue = w.queue[1:]
			if w.paused && !w.backoff && len(w.queue) <= w.set.queueSize/4 {
				w.setPausedLocked(false)
			}
			w.mu.Unlock()
			return m
		}
		w.mu.Unlock()
		<-w.signal
	}
}

// nextBatch waits for the next record and returns it with up to max-1 more already queued;
// nil once the worker is stopped.
func (w *worker) nextBatch(max int) []*kafka.Message {
	m := w.next()
	if m == nil {
		return nil
	}
	batch := []*kafka.Message{m}
	w.mu.Lock()
	n := min(len(w.queue), max-1)
	batch = append(batch, w.queue[:n]...)
	clear(w.queue[:n])
	w.queue = w.queue[n:]
	if w.paused && !w.backoff && len(w.queue) <= w.set.queueSize/4 {
		w.setPausedLocked(false)
	}
	w.mu.Unlock()
	return batch
}

// store stores the offset after m: m's outcome is durable.
func (w *worker) store(m *kafka.Message) {
	next := m.TopicPartition
	next.Offset++
	if _, err := w.set.ctl.StoreOffsets([]kafka.TopicPartition{next}); err != nil {
		w.set.log.Warn("store offset", "topic", w.key.topic, "partition", w.key.partition, "err", err)
	}
}

// run hands the records queued to the handler, up to batchSize at a time, and stores the offset
// of each once the handler says it is done.
func (w *worker) run() {
	defer close(w.done)
	s := scope{run: w.runCtx, wait: w.waitCtx, pause: w.pauseForBackoff}
	for {
		ms := w.nextBatch(w.set.batchSize)
		if ms == nil {
			return
		}
		if err := w.h.handle(s, ms, w.store); err != nil {
			return // stopped before all were done: the rest is not stored, the next owner reads it again
		}
	}
}

// resumeRetryDelay is how long a worker waits before trying again a Resume that failed: until
// it succeeds the partition fetches nothing, so something must retry it.
var resumeRetryDelay = time.Second

// pauseForBackoff pauses the partition while its head record is retried in place.
func (w *worker) pauseForBackoff(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.backoff == on {
		return
	}
	w.backoff = on
	if on {
		w.setPausedLocked(true)
	} else if len(w.queue) <= w.set.queueSize/4 {
		w.setPausedLocked(false)
	}
}

func (w *worker) setPausedLocked(on bool) {
	if w.paused == on || w.closed {
		return
	}
	var err error
	if on {
		err = w.set.ctl.Pause(w.tp)
	} else {
		err = w.set.ctl.Resume(w.tp)
	}
	if err != nil {
		w.set.log.Warn("pause/resume", "topic", w.key.topic, "partition", w.key.partition, "pause", on, "err", err)
		if !on && w.retry == nil {
			w.retry = time.AfterFunc(resumeRetryDelay, w.retryResume)
		}
		return
	}
	w.paused = on
	v := 0.0
	if on {
		v = 1
	}
	w.set.paused.WithLabelValues(w.key.topic, strconv.Itoa(int(w.key.partition))).Set(v)
}

// retryResume tries again a Resume that failed, if the partition should still be resumed.
func (w *worker) retryResume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.retry = nil
	if w.paused && !w.backoff && len(w.queue) <= w.set.queueSize/4 {
		w.setPausedLocked(false) // fails again: schedules the next try
	}
}

// resumeOnStopLocked resumes a paused partition before the worker lets it go. The pause flag is
// the client's, not the assignment's: it can survive a revoke and a later re-assignment
// (confluent-kafka-go#193), and the next worker of the partition would start with paused=false
// on a partition that never fetches. On revoke the partition is still assigned here (inside the
// rebalance callback), so the Resume applies.
func (w *worker) resumeOnStopLocked() {
	if w.retry != nil {
		w.retry.Stop()
		w.retry = nil
	}
	if !w.paused {
		return
	}
	if err := w.set.ctl.Resume(w.tp); err != nil {
		w.set.log.Warn("resume on stop", "topic", w.key.topic, "partition", w.key.partition, "err", err)
	}
	w.paused = false
}

// stop ends the worker: the record being applied may finish (up to ShutdownTimeout), a backoff or
// a retry delay is abandoned, queued records are dropped (they were not stored).
func (w *worker) stop() {
	w.mu.Lock()
	w.resumeOnStopLocked()
	w.closed = true
	w.queue = nil
	w.mu.Unlock()
	w.stopWait()
	select {
	case w.signal <- struct{}{}:
	default:
	}
	t := time.NewTimer(w.set.shutdownTimeout)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
		w.set.log.Warn("handler still running at shutdown timeout: cancelling it", "topic", w.key.topic, "partition", w.key.partition)
		w.stopRun()
		<-w.done
	}
	w.stopRun()
	w.set.paused.DeleteLabelValues(w.key.topic, strconv.Itoa(int(w.key.partition)))
}
