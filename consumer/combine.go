package consumer

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"
)

// combiner runs a consumer's batch transactions one at a time, and puts the batches of several
// partitions that wait at the same moment into one transaction (group commit across
// partitions). One at a time, because batches of several partitions that touch the same rows in
// different orders (analytics' per-user counters) deadlock each other when they run together
// (measured: a 30,000-event backlog, analytics at 36 events/s, every batch retried after 40P01);
// combined, because the batches waiting for their turn would otherwise pay a commit each.
//
// The first batch to arrive leads: it takes every batch waiting and applies them as one; when
// it is done, the first batch that arrived meanwhile leads the next round.
type combiner struct {
	mu      sync.Mutex
	leading bool
	queue   []*submission
}

type submission struct {
	ctx  context.Context
	ms   []*Message
	fn   func(tx *sql.Tx, i int) error
	res  chan combined // buffered: the leader never waits for it
	lead chan struct{} // buffered: "lead the next round"
}

// combined is a submission's outcome, as ApplyBatch would have returned it for its records
// alone, and how long its transaction took.
type combined struct {
	dup  []bool
	err  error
	took time.Duration
}

// apply applies ms through bs, with the other partitions' batches waiting at the same time. Its
// result is the one ApplyBatch gives for ms alone: when the combined transaction fails on a
// record of another batch, that batch gets the error and the others are tried again without it;
// when it fails on nothing in particular (commit), each batch is tried alone. Every try runs fn
// again (a rolled back try counts for nothing).
func (cb *combiner) apply(ctx context.Context, bs batchStore, group string, ms []*Message, fn func(tx *sql.Tx, i int) error) combined {
	s := &submission{ctx: ctx, ms: ms, fn: fn, res: make(chan combined, 1), lead: make(chan struct{}, 1)}
	cb.mu.Lock()
	cb.queue = append(cb.queue, s)
	if !cb.leading {
		cb.leading = true
		s.lead <- struct{}{}
	}
	cb.mu.Unlock()
	for {
		select {
		case r := <-s.res:
			return r
		case <-s.lead:
			cb.round(bs, group)
		}
	}
}

// round applies every batch waiting, then hands the lead to the first one that arrived meanwhile.
func (cb *combiner) round(bs batchStore, group string) {
	cb.mu.Lock()
	batch := cb.queue
	cb.queue = nil
	cb.mu.Unlock()
	applyCombined(bs, group, batch)
	cb.mu.Lock()
	if len(cb.queue) > 0 {
		cb.queue[0].lead <- struct{}{}
	} else {
		cb.leading = false
	}
	cb.mu.Unlock()
}

func applyCombined(bs batchStore, group string, batch []*submission) {
	for len(batch) > 1 {
		var all []*Message
		var owner, local []int
		for si, s := range batch {
			for j, m := range s.ms {
				all, owner, local = append(all, m), append(owner, si), append(local, j)
			}
		}
		start := time.Now()
		dup, err := bs.ApplyBatch(batch[0].ctx, group, all, func(tx *sql.Tx, i int) error { return batch[owner[i]].fn(tx, local[i]) })
		took := time.Since(start)
		var be *batchError
		switch {
		case err == nil:
			off := 0
			for _, s := range batch {
				s.res <- combined{dup: dup[off : off+len(s.ms)], took: took}
				off += len(s.ms)
			}
			return
		case errors.As(err, &be) && be.Index >= 0 && be.Index < len(all):
			// the failure is that batch's own, as if it had been alone; the others go again
			culprit := owner[be.Index]
			batch[culprit].res <- combined{err: &batchError{Index: local[be.Index], Err: be.Err}, took: took}
			batch = append(batch[:culprit:culprit], batch[culprit+1:]...)
		default:
			for _, s := range batch {
				applyAlone(bs, group, s)
			}
			return
		}
	}
	if len(batch) == 1 {
		applyAlone(bs, group, batch[0])
	}
}

func applyAlone(bs batchStore, group string, s *submission) {
	start := time.Now()
	dup, err := bs.ApplyBatch(s.ctx, group, s.ms, s.fn)
	s.res <- combined{dup: dup, err: err, took: time.Since(start)}
}
