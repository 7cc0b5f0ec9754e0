package consumer

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/dlq"
)

// fakeBatchStore is a batchStore in memory with a transaction's all-or-nothing.
type fakeBatchStore struct {
	*fakeStore
	batches   [][]string   // the event ids of each committed batch
	commitErr func() error // at COMMIT: e.g. the connection is lost
}

func (s *fakeBatchStore) ApplyBatch(_ context.Context, group string, ms []*Message, fn func(*sql.Tx, int) error) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dup := make([]bool, len(ms))
	pending := map[string]bool{}
	var ids []string
	for i, m := range ms {
		k := group + "/" + m.EventID
		if s.seen[k] || pending[k] {
			dup[i] = true
			continue
		}
		pending[k] = true
		if err := fn(nil, i); err != nil {
			return nil, &batchError{Index: i, Err: err}
		}
		ids = append(ids, m.EventID)
	}
	if s.commitErr != nil {
		if err := s.commitErr(); err != nil {
			return nil, err
		}
	}
	for k := range pending {
		s.seen[k] = true
	}
	s.batches = append(s.batches, ids)
	return dup, nil
}

type batchFixture struct {
	c       *Consumer
	store   *fakeBatchStore
	pub     *fakePublisher
	calls   map[string]int
	applied []string // event ids whose after-commit hook ran, in order
	stored  []kafka.Offset
}

// newBatchFixture builds a consumer on a fakeBatchStore whose TodoCreated handler is
// fail(event id, n-th call); values decode as in newTestConsumer.
func newBatchFixture(t *testing.T, fail func(id string, n int) error) *batchFixture {
	f := &batchFixture{store: &fakeBatchStore{fakeStore: &fakeStore{seen: map[string]bool{}}}, pub: &fakePublisher{},
		calls: map[string]int{}}
	r := NewRouter()
	Handle(r, func(ctx context.Context, tx *sql.Tx, m *Message, ev events.TodoCreated) error {
		f.calls[m.EventID]++
		if err := fail(m.EventID, f.calls[m.EventID]); err != nil {
			return err
		}
		m.AfterCommit(func() { f.applied = append(f.applied, m.EventID) })
		return nil
	})
	f.c = newTestConsumer(t, r, f.store, f.pub)
	return f
}

// batch makes records at offsets 10, 11, ... of one partition; each value is "ok" unless given
// as "id=value".
func batch(ids ...string) []*kafka.Message {
	var ms []*kafka.Message
	for i, id := range ids {
		value := "ok"
		if k, v, ok := strings.Cut(id, "="); ok {
			id, value = k, v
		}
		m := record(events.Topic, value, id, events.TypeCreated)
		m.TopicPartition.Offset = kafka.Offset(10 + i)
		ms = append(ms, m)
	}
	return ms
}

func (f *batchFixture) run(t *testing.T, ms []*kafka.Message) {
	t.Helper()
	err := f.c.processBatch(context.Background(), context.Background(), f.store, ms, func(bool) {},
		func(m *kafka.Message) { f.stored = append(f.stored, m.TopicPartition.Offset+1) })
	if err != nil {
		t.Fatalf("processBatch: %v", err)
	}
}

func (f *batchFixture) sentTo(topic string) []string {
	var ids []string
	for _, m := range f.pub.sent {
		if *m.TopicPartition.Topic == topic {
			id, _ := dlq.Header(m.Headers, events.HeaderID)
			ids = append(ids, id)
		}
	}
	return ids
}

func TestBatchAppliesInOneTransactionAndADuplicateOnce(t *testing.T) {
	f := newBatchFixture(t, func(string, int) error { return nil })
	f.store.seen["g/old"] = true // applied before: a re-delivery
	f.run(t, batch("a", "b", "a", "old", "c"))
	if len(f.store.batches) != 1 || !slices.Equal(f.store.batches[0], []string{"a", "b", "c"}) {
		t.Fatalf("committed batches %v, want one: [a b c]", f.store.batches)
	}
	if f.calls["a"] != 1 || f.calls["old"] != 0 {
		t.Errorf("handler calls %v: a once, old never", f.calls)
	}
	if !slices.Equal(f.applied, []string{"a", "b", "c"}) {
		t.Errorf("after-commit hooks ran for %v", f.applied)
	}
	if !slices.Equal(f.stored, []kafka.Offset{15}) {
		t.Errorf("stored offsets %v, want [15] once the batch committed", f.stored)
	}
	if got := counterValue(t, f.c, "duplicates", events.TypeCreated); got != 2 {
		t.Errorf("duplicates counted %v, want 2", got)
	}
}

func TestBatchIsolatesAFailingHandler(t *testing.T) {
	f := newBatchFixture(t, func(id string, n int) error {
		if id == "bad" {
			return errors.New("broken")
		}
		return nil
	})
	f.run(t, batch("a", "b", "bad", "c", "d"))
	var got [][]string
	got = append(got, f.store.batches...)
	if len(got) != 2 || !slices.Equal(got[0], []string{"a", "b"}) || !slices.Equal(got[1], []string{"c", "d"}) {
		t.Fatalf("committed batches %v, want [a b] then [c d]", got)
	}
	// the failed try in the batch counts as the first of its in-place attempts
	if f.calls["bad"] != f.c.cfg.InPlaceAttempts {
		t.Errorf("failing handler ran %d times, want %d", f.calls["bad"], f.c.cfg.InPlaceAttempts)
	}
	if f.calls["a"] != 2 || f.calls["c"] != 1 {
		t.Errorf("calls %v: a again after the rollback (2), c once", f.calls)
	}
	if ids := f.sentTo(events.RetryTopic); !slices.Equal(ids, []string{"bad"}) {
		t.Errorf("retry topic got %v, want [bad]", ids)
	}
	if !slices.Equal(f.applied, []string{"a", "b", "c", "d"}) {
		t.Errorf("after-commit hooks ran for %v (a rolled back try must not run its hook)", f.applied)
	}
	if !slices.Equal(f.stored, []kafka.Offset{12, 13, 15}) {
		t.Errorf("stored offsets %v, want [12 13 15]", f.stored)
	}
}

func TestBatchSplitsAroundUndecodableAndPanickingRecords(t *testing.T) {
	f := newBatchFixture(t, func(id string, n int) error {
		if id == "boom" {
			panic("handler bug")
		}
		return nil
	})
	f.run(t, batch("a", "junk=not avro", "b", "boom", "c"))
	if ids := f.sentTo(events.DLQTopic); !slices.Equal(ids, []string{"junk", "boom"}) {
		t.Fatalf("DLQ got %v, want [junk boom]", ids)
	}
	if f.calls["boom"] != 1 {
		t.Errorf("panicking handler ran %d times, want 1 (permanent)", f.calls["boom"])
	}
	if !slices.Equal(f.applied, []string{"a", "b", "c"}) {
		t.Errorf("applied %v", f.applied)
	}
	if last := f.stored[len(f.stored)-1]; last != 15 || !slices.IsSorted(f.stored) {
		t.Errorf("stored offsets %v: in order, up to 15", f.stored)
	}
}

func TestBatchCommitFailureFallsBackToOneByOne(t *testing.T) {
	f := newBatchFixture(t, func(string, int) error { return nil })
	n := 0
	f.store.commitErr = func() error {
		if n++; n == 1 {
			return TransientError(errors.New("connection lost at commit"))
		}
		return nil
	}
	f.run(t, batch("a", "b", "c"))
	// the failed batch committed nothing; then each record alone (Apply, not ApplyBatch)
	if len(f.store.batches) != 0 || !f.store.seen["g/a"] || !f.store.seen["g/c"] {
		t.Fatalf("batches %v, seen %v", f.store.batches, f.store.seen)
	}
	if !slices.Equal(f.applied, []string{"a", "b", "c"}) || !slices.Equal(f.stored, []kafka.Offset{11, 12, 13}) {
		t.Errorf("applied %v, stored %v", f.applied, f.stored)
	}
	if len(f.pub.sent) != 0 {
		t.Errorf("%d records sent to the retry topic or DLQ", len(f.pub.sent))
	}
}

func TestBatchStopsWhenWaitEnds(t *testing.T) {
	f := newBatchFixture(t, func(string, int) error { return nil })
	wait, cancel := context.WithCancel(context.Background())
	f.store.commitErr = func() error { cancel(); return TransientError(errors.New("database down")) }
	err := f.c.processBatch(context.Background(), wait, f.store, batch("a", "b"), func(bool) {},
		func(m *kafka.Message) { f.stored = append(f.stored, m.TopicPartition.Offset+1) })
	if err == nil || len(f.stored) != 0 {
		t.Fatalf("err %v, stored %v: want the stop's error and nothing stored", err, f.stored)
	}
}

func TestWorkerTakesQueuedRecordsAsOneBatch(t *testing.T) {
	f := newBatchFixture(t, func(string, int) error { return nil })
	f.c.cfg.BatchSize = 3
	w := newWorker(f.c, partKey{events.Topic, 2})
	for _, m := range batch("a", "b", "c", "d") {
		w.enqueue(m)
	}
	if got := w.nextBatch(f.c.cfg.BatchSize); len(got) != 3 {
		t.Fatalf("first batch has %d records, want 3 (BatchSize)", len(got))
	}
	if got := w.nextBatch(f.c.cfg.BatchSize); len(got) != 1 || got[0].TopicPartition.Offset != 13 {
		t.Fatalf("second batch %v, want the 4th record", got)
	}
}
