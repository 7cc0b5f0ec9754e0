package consumer

import (
	"context"
	"database/sql"
	"errors"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// processBatch takes ms, consecutive records of one partition of the main topic, each to an
// outcome, like process does one by one, and calls done(m) in order once m's offset may be stored
// (for a batch, with its last record only). The records that decode are applied together through the batchStore, in one
// transaction; a record that fails is isolated and goes through the failure policy on its own
// (settle), with the failed attempt counted as its first:
//   - a record that does not decode (or has no ce_id, or the wrong type) splits the batch: the
//     records before it are applied, then it is settled, then the rest is applied;
//   - a handler error (or panic, or a failed statement swallowed) on record i rolls the batch
//     back: the records before i are applied again as a batch, record i is settled, the rest
//     follows;
//   - an error that names no record (begin, the processed-events insert, commit) settles every
//     record of the batch one by one, which retries a transient one in place.
//
// It returns an error only when wait ended first (revoke or shutdown); what is not done is left
// for the next owner.
func (c *Consumer) processBatch(run, wait context.Context, bs batchStore, ms []*kafka.Message, pause func(bool), done func(*kafka.Message)) error {
	for _, m := range ms {
		c.m.consumed.WithLabelValues(*m.TopicPartition.Topic).Inc()
	}
	for len(ms) > 0 {
		var ps []prepared
		var failed error
		for _, m := range ms {
			p, err := c.prepare(run, m)
			if err != nil {
				failed = err
				break
			}
			ps = append(ps, p)
		}
		if err := c.applyBatch(run, wait, bs, ps, pause, done); err != nil {
			return err
		}
		ms = ms[len(ps):]
		if failed != nil {
			if err := c.settle(run, wait, ms[0], pause, failed); err != nil {
				return err
			}
			done(ms[0])
			ms = ms[1:]
		}
	}
	return nil
}

// applyBatch applies ps in one transaction (see processBatch).
func (c *Consumer) applyBatch(run, wait context.Context, bs batchStore, ps []prepared, pause func(bool), done func(*kafka.Message)) error {
	var msgs []*Message
	var idx []int // msgs[j] is ps[idx[j]]
	for i, p := range ps {
		if p.h != nil {
			msgs, idx = append(msgs, p.msg), append(idx, i)
		}
	}
	if len(msgs) == 0 {
		if len(ps) > 0 {
			done(ps[len(ps)-1].rec)
		}
		return nil
	}
	// one transaction at a time per consumer, with the other partitions' batches that wait (combine.go)
	r := c.combine.apply(run, bs, c.cfg.GroupID, msgs, func(tx *sql.Tx, j int) error {
		p := ps[idx[j]]
		p.msg.afterCommit = nil // hooks of a rolled back try must not run
		return p.h(run, tx, p.msg, p.ev)
	})
	dup, err := r.dup, r.err
	var be *batchError
	switch {
	case err == nil:
		for j, i := range idx {
			c.done(ps[i], dup[j], r.took)
		}
		done(ps[len(ps)-1].rec) // offsets are monotonic: the last one stores the batch
		return nil
	case errors.As(err, &be) && be.Index >= 0 && be.Index < len(idx) && wait.Err() == nil:
		k := idx[be.Index]
		if err := c.applyBatch(run, wait, bs, ps[:k], pause, done); err != nil {
			return err
		}
		if err := c.settle(run, wait, ps[k].rec, pause, be.Err); err != nil {
			return err
		}
		done(ps[k].rec)
		return c.applyBatch(run, wait, bs, ps[k+1:], pause, done)
	default:
		if wait.Err() != nil {
			return wait.Err()
		}
		c.log.Warn("batch failed, applying its records one by one", "records", len(ps), "err", err)
		for _, p := range ps {
			if err := c.settle(run, wait, p.rec, pause, nil); err != nil {
				return err
			}
			done(p.rec)
		}
		return nil
	}
}
