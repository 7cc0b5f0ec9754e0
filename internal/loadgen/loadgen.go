// Package loadgen generates open-loop load and summarizes latencies: requests are sent on a fixed
// schedule whatever the system under test does, and each one's latency is counted from when it
// was due, not from when it could be sent, so a stall shows in full (no coordinated omission).
package loadgen

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// Due is when request i (0-based) of a run at rate requests per second that starts at start is
// due: start + i/rate.
func Due(start time.Time, rate float64, i int) time.Time {
	return start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
}

// Count is how many requests a run at rate per second lasting d sends: rate*d, rounded down.
func Count(rate float64, d time.Duration) int {
	return int(rate * d.Seconds())
}

// Result is what happened to one request. Latency is End - Due; Start - Due is how late a worker
// took it (the load generator's own delay, part of the latency).
type Result struct {
	Due, Start, End time.Time
	Err             error
}

// Latency is the request's latency counted from when it was due.
func (r Result) Latency() time.Duration { return r.End.Sub(r.Due) }

// Run sends Count(rate, d) requests at rate per second from start (now when zero), each by a
// call do(ctx, i) on one of workers goroutines: a request due while every worker is busy waits
// for one, and its wait counts in its latency. It returns the results in due order once every
// request has ended, or ctx ended (requests not started then have Err ctx.Err()).
func Run(ctx context.Context, start time.Time, rate float64, d time.Duration, workers int, do func(ctx context.Context, i int) error) []Result {
	n := Count(rate, d)
	res := make([]Result, n)
	if n == 0 {
		return res
	}
	if start.IsZero() {
		start = time.Now()
	}
	tickets := make(chan int, n)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range tickets {
				r := &res[i]
				if ctx.Err() != nil {
					r.Start, r.End, r.Err = r.Due, r.Due, ctx.Err()
					continue
				}
				r.Start = time.Now()
				r.Err = do(ctx, i)
				r.End = time.Now()
			}
		})
	}
	for i := range n {
		res[i].Due = Due(start, rate, i)
	}
	for i := 0; i < n; {
		if wait := time.Until(res[i].Due); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		for now := time.Now(); i < n && !res[i].Due.After(now); i++ { // all that are due by now
			tickets <- i
		}
		if ctx.Err() != nil {
			for ; i < n; i++ {
				tickets <- i
			}
		}
	}
	close(tickets)
	wg.Wait()
	return res
}

// Summary holds the percentiles of a set of durations, exact (nearest rank over the sorted
// samples), in milliseconds when marshalled.
type Summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Summarize returns the percentiles of ds (left unchanged); the zero Summary when ds is empty.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Summary{N: len(s), P50: ms(Percentile(s, 50)), P95: ms(Percentile(s, 95)), P99: ms(Percentile(s, 99)), Max: ms(s[len(s)-1])}
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted, which must be sorted
// ascending and not empty: the smallest value with at least p % of the values at or below it.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*100) / 100 }
