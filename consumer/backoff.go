package consumer

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is exponential backoff with full jitter: attempt n (from 0) waits a random time in
// [d/2, d], d = min(Initial * 2^n, Max).
type Backoff struct {
	Initial time.Duration // first delay; default 100ms
	Max     time.Duration // largest delay; default 10s
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	return b
}

// Delay is the wait before retry attempt n (0 = the first retry).
func (b Backoff) Delay(n int, rnd func() float64) time.Duration {
	b = b.withDefaults()
	d := b.Max
	if n < 62 {
		if x := b.Initial << n; x > 0 && x < b.Max {
			d = x
		}
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// sleep waits d or until ctx ends; it reports whether the full time passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
