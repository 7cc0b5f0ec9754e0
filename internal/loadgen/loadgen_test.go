package loadgen

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestDueAndCount(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		rate float64
		i    int
		want time.Duration
	}{{1000, 0, 0}, {1000, 1, time.Millisecond}, {1000, 1500, 1500 * time.Millisecond}, {250, 3, 12 * time.Millisecond}, {3, 1, 333333333}} {
		if got := Due(t0, c.rate, c.i).Sub(t0); got != c.want {
			t.Errorf("Due(rate %v, %d) = +%v, want +%v", c.rate, c.i, got, c.want)
		}
	}
	if n := Count(1500, 60*time.Second); n != 90000 {
		t.Errorf("Count(1500/s, 60s) = %d", n)
	}
}

func TestPercentilesNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(ds)
	if s != (Summary{N: 100, P50: 50, P95: 95, P99: 99, Max: 100}) {
		t.Fatalf("Summarize(1..100 ms) = %+v", s)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("Summarize sorted its argument")
	}
	if s := Summarize([]time.Duration{7 * time.Millisecond}); s.P50 != 7 || s.P99 != 7 || s.Max != 7 {
		t.Errorf("one sample: %+v", s)
	}
	if s := Summarize(nil); s != (Summary{}) {
		t.Errorf("no sample: %+v", s)
	}
	// 10 samples: p95 and p99 are the largest (rank ceil(9.5) = ceil(9.9) = 10)
	var ten []time.Duration
	for i := 1; i <= 10; i++ {
		ten = append(ten, time.Duration(i)*time.Millisecond)
	}
	if s := Summarize(ten); s.P50 != 5 || s.P95 != 10 || s.P99 != 10 {
		t.Errorf("1..10 ms: %+v", s)
	}
}

// A system that takes 20 ms per request, behind one worker, offered 200/s for 0.1 s: 20
// requests due 5 ms apart, served 20 ms apart. Counted from when each was due, the last one's
// latency is about 19*20 - 19*5 + 20 = 305 ms; counted from when it was sent it would be 20 ms.
func TestRunCountsLatencyFromTheDueTime(t *testing.T) {
	var calls atomic.Int32
	res := Run(context.Background(), time.Time{}, 200, 100*time.Millisecond, 1, func(ctx context.Context, i int) error {
		calls.Add(1)
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	if len(res) != 20 || calls.Load() != 20 {
		t.Fatalf("%d results, %d calls, want 20", len(res), calls.Load())
	}
	for i := 1; i < len(res); i++ {
		if got := res[i].Due.Sub(res[i-1].Due); got != 5*time.Millisecond {
			t.Fatalf("due times %v apart, want 5ms", got)
		}
	}
	last := res[len(res)-1]
	if l := last.Latency(); l < 280*time.Millisecond {
		t.Errorf("last latency %v: the wait for the busy worker is not counted", l)
	}
	if sent := last.End.Sub(last.Start); sent > 250*time.Millisecond { // 20 ms, a loaded machine aside
		t.Errorf("last request took %v once sent", sent)
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := Run(ctx, time.Time{}, 100, 10*time.Second, 4, func(ctx context.Context, i int) error { return nil })
	var done, stopped int
	for _, r := range res {
		if r.Err == nil {
			done++
		} else {
			stopped++
		}
	}
	if done == 0 || stopped == 0 || done > 100 { // ~20 due in 0.2 s; 1,000 in the run
		t.Fatalf("%d done, %d stopped of %d: want a few done, the rest stopped", done, stopped, len(res))
	}
}
