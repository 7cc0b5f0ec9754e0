package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// recordingBatchStore applies nothing: it records each ApplyBatch call's event ids, runs fn for
// each record (the first failure is a *batchError), marks ids it saw before as duplicates, and
// can hold its first call until released.
type recordingBatchStore struct {
	fakeStore
	mu      sync.Mutex
	calls   [][]string
	seen    map[string]bool
	hold    chan struct{} // the first call waits for it to close
	held    chan struct{} // closed when the first call is waiting
	commit  error         // returned after a successful run of every fn, commits times
	commits int
	holding sync.Once
}

func (s *recordingBatchStore) ApplyBatch(_ context.Context, _ string, ms []*Message, fn func(*sql.Tx, int) error) ([]bool, error) {
	if s.hold != nil {
		first := false
		s.holding.Do(func() { first = true })
		if first {
			close(s.held)
			<-s.hold
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	dup := make([]bool, len(ms))
	for i, m := range ms {
		ids = append(ids, m.EventID)
		if s.seen[m.EventID] {
			dup[i] = true
			continue
		}
		if err := fn(nil, i); err != nil {
			s.calls = append(s.calls, ids)
			return nil, &batchError{Index: i, Err: err}
		}
	}
	s.calls = append(s.calls, ids)
	if s.commits > 0 {
		s.commits--
		return nil, s.commit
	}
	for _, m := range ms {
		s.seen[m.EventID] = true
	}
	return dup, nil
}

func msgs(ids ...string) []*Message {
	var ms []*Message
	for _, id := range ids {
		ms = append(ms, &Message{EventID: id})
	}
	return ms
}

// failOn is an fn that fails on the record with event id bad.
func failOn(ms []*Message, bad string) func(*sql.Tx, int) error {
	return func(_ *sql.Tx, i int) error {
		if ms[i].EventID == bad {
			return errors.New("broken " + bad)
		}
		return nil
	}
}

// applyWhileHeld starts a first batch that the store holds, then the others, which wait and are
// combined; it returns each one's result, in the order given.
func applyWhileHeld(t *testing.T, s *recordingBatchStore, batches [][]*Message, fns []func(*sql.Tx, int) error) []combined {
	t.Helper()
	var cb combiner
	s.hold, s.held = make(chan struct{}), make(chan struct{})
	out := make([]combined, len(batches))
	var wg sync.WaitGroup
	wg.Go(func() { out[0] = cb.apply(context.Background(), s, "g", batches[0], fns[0]) })
	<-s.held
	for i := 1; i < len(batches); i++ { // queued behind the held one, in this order
		wg.Go(func() { out[i] = cb.apply(context.Background(), s, "g", batches[i], fns[i]) })
		waitQueued(&cb, i)
	}
	close(s.hold)
	wg.Wait()
	return out
}

func TestCombinerPutsWaitingBatchesInOneTransaction(t *testing.T) {
	s := &recordingBatchStore{seen: map[string]bool{"b2": true}}
	a, b, c := msgs("a1"), msgs("b1", "b2"), msgs("c1")
	ok := func(*sql.Tx, int) error { return nil }
	res := applyWhileHeld(t, s, [][]*Message{a, b, c}, []func(*sql.Tx, int) error{ok, ok, ok})
	if fmt.Sprint(s.calls) != "[[a1] [b1 b2 c1]]" {
		t.Fatalf("transactions %v, want [a1] alone (it was running) then b and c together", s.calls)
	}
	if fmt.Sprint(res[1].dup) != "[false true]" || fmt.Sprint(res[2].dup) != "[false]" || res[1].err != nil || res[2].err != nil {
		t.Errorf("results %+v: each batch gets its own part", res)
	}
}

func TestCombinerGivesAFailureToItsBatchAndRetriesTheOthers(t *testing.T) {
	s := &recordingBatchStore{seen: map[string]bool{}}
	a, b, c, d := msgs("a1"), msgs("b1"), msgs("c1", "c2"), msgs("d1")
	ok := func(*sql.Tx, int) error { return nil }
	res := applyWhileHeld(t, s, [][]*Message{a, b, c, d}, []func(*sql.Tx, int) error{ok, ok, failOn(c, "c2"), ok})
	if fmt.Sprint(s.calls) != "[[a1] [b1 c1 c2] [b1 d1]]" {
		t.Fatalf("transactions %v: the combined one fails on c2, then b and d again without c", s.calls)
	}
	var be *batchError
	if !errors.As(res[2].err, &be) || be.Index != 1 {
		t.Fatalf("c's result %v, want a *batchError on its record 1 (c2)", res[2].err)
	}
	if res[1].err != nil || res[3].err != nil || len(res[1].dup) != 1 || len(res[3].dup) != 1 {
		t.Errorf("b and d: %+v, %+v", res[1], res[3])
	}
}

func TestCombinerTriesEachAloneWhenTheCommitFails(t *testing.T) {
	s := &recordingBatchStore{seen: map[string]bool{}}
	a, b, c := msgs("a1"), msgs("b1"), msgs("c1")
	ok := func(*sql.Tx, int) error { return nil }
	hold, held := make(chan struct{}), make(chan struct{})
	var cb combiner
	s.hold, s.held = hold, held
	var out [3]combined
	var wg sync.WaitGroup
	wg.Go(func() { out[0] = cb.apply(context.Background(), s, "g", a, ok) })
	<-held
	s.mu.Lock()
	s.commit, s.commits = errors.New("connection lost at commit"), 2 // a's, then the combined one's
	s.mu.Unlock()
	wg.Go(func() { out[1] = cb.apply(context.Background(), s, "g", b, ok) })
	waitQueued(&cb, 1)
	wg.Go(func() { out[2] = cb.apply(context.Background(), s, "g", c, ok) })
	waitQueued(&cb, 2)
	close(hold)
	wg.Wait()
	// a (held) fails at its commit; b and c, combined, fail at theirs, then go alone
	if out[0].err == nil || out[1].err != nil || out[2].err != nil {
		t.Fatalf("results %+v", out)
	}
	if fmt.Sprint(s.calls) != "[[a1] [b1 c1] [b1] [c1]]" {
		t.Fatalf("transactions %v", s.calls)
	}
}

func TestCombinerUnderConcurrency(t *testing.T) {
	s := &recordingBatchStore{seen: map[string]bool{}}
	var cb combiner
	var wg sync.WaitGroup
	const n = 200
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			ms := msgs(fmt.Sprintf("e%d", i))
			r := cb.apply(context.Background(), s, "g", ms, func(*sql.Tx, int) error { return nil })
			if r.err != nil || len(r.dup) != 1 || r.dup[0] {
				errs <- fmt.Errorf("batch %d: %+v", i, r)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(s.seen) != n {
		t.Fatalf("%d events applied, want %d", len(s.seen), n)
	}
	t.Logf("%d batches in %d transactions", n, len(s.calls))
}

// waitQueued waits until n batches wait in cb's queue.
func waitQueued(cb *combiner, n int) {
	for {
		cb.mu.Lock()
		q := len(cb.queue)
		cb.mu.Unlock()
		if q >= n {
			return
		}
		runtime.Gosched()
	}
}
