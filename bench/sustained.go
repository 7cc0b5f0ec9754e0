package main

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/loadgen"
	"github.com/todocdc/pipeline/internal/processed"
)

// Step is one sustained open-loop step.
//
// Definitions (the same for the peer): "due" is when the load generator's schedule said the
// request should go; "commit" is when the load generator received todo-api's 201 (todo-api answers
// after its transaction's COMMIT returned, so this is the commit plus the answer's trip over
// loopback); "in Kafka" is when a read_committed reader of the topic first polled the record;
// "handled" by a group is the processed_at of the group's consumer_processed_events row, the
// now() of the consumer transaction that applied the event (its start: the commit follows within
// the group's mean transaction time, reported beside it).
type Step struct {
	Offered  float64 `json:"offered_per_s"`
	Duration float64 `json:"duration_s"`
	Sent     int     `json:"sent"`
	OK       int     `json:"ok"`
	Achieved float64 `json:"achieved_per_s"`
	// API is due -> commit (the request's latency counted from when it was due).
	API loadgen.Summary `json:"api_latency"`
	// ToKafka is commit -> in Kafka.
	ToKafka loadgen.Summary `json:"commit_to_kafka"`
	// Handled is commit -> handled, per group.
	Handled map[string]loadgen.Summary `json:"commit_to_handled,omitempty"`
	// Missing counts committed events not in Kafka / not handled within the drain timeout.
	Missing map[string]int `json:"missing,omitempty"`
	// TxMs is the mean duration of a group's apply transaction during the step (from
	// consumer_handler_seconds), ms.
	TxMs map[string]float64 `json:"consumer_tx_mean_ms,omitempty"`
	// MaxLag is the highest consumer_lag_records (summed over partitions) seen per group.
	MaxLag map[string]float64 `json:"max_consumer_lag,omitempty"`
	CPU    CPUUse             `json:"cpu"`
	Errors []string           `json:"errors,omitempty"`
}

// sent is one successful request: its key (todo id), when it was due and when it committed.
type sent struct {
	key      string
	due, end time.Time
}

func (b *bench) sustained(ctx context.Context, rep *Report) error {
	api, err := b.newAPI(b.c.Workers)
	if err != nil {
		return err
	}
	defer api.close()
	rd, err := b.newReader(ctx, events.Topic)
	if err != nil {
		return err
	}
	defer rd.close()
	for _, rate := range b.c.Rates {
		b.log.Info("sustained step", "rate", rate, "duration", b.c.StepDuration)
		st, err := b.step(ctx, api, rd, rate)
		if err != nil {
			return err
		}
		rep.Sustained = append(rep.Sustained, st)
		b.log.Info("step done", "offered", rate, "achieved", st.Achieved, "api_p99", st.API.P99, "kafka_p99", st.ToKafka.P99, "handled", st.Handled)
	}
	return nil
}

func (b *bench) step(ctx context.Context, api *apiClient, rd *reader, rate float64) (Step, error) {
	st := Step{Offered: rate, Duration: b.c.StepDuration.Seconds(), Handled: map[string]loadgen.Summary{},
		Missing: map[string]int{}, TxMs: map[string]float64{}, MaxLag: map[string]float64{}}
	comps := b.components()
	tx0 := b.txTotals(ctx)
	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	lagDone := b.watchLag(lagCtx, st.MaxLag)
	cpu0 := sampleCPU(comps)
	keys := make([]string, loadgen.Count(rate, b.c.StepDuration))
	start := time.Now().Add(50 * time.Millisecond)
	res := loadgen.Run(ctx, start, rate, b.c.StepDuration, b.c.Workers, func(ctx context.Context, i int) error {
		id, err := api.create(ctx, i)
		keys[i] = id
		return err
	})
	var ok []sent
	var apiLat []time.Duration
	errs := map[string]int{}
	var last time.Time
	for i, r := range res {
		if r.Err != nil {
			errs[r.Err.Error()]++
			continue
		}
		ok = append(ok, sent{key: keys[i], due: r.Due, end: r.End})
		apiLat = append(apiLat, r.Latency())
		last = maxTime(last, r.End)
	}
	st.Sent, st.OK = len(res), len(ok)
	if len(ok) > 0 {
		st.Achieved = round2(float64(len(ok)) / last.Sub(start).Seconds())
	}
	st.API = loadgen.Summarize(apiLat)
	st.Errors = topErrors(errs, 5)
	if err := b.follow(ctx, rd, ok, &st, true); err != nil {
		return st, err
	}
	st.CPU = cpuBetween(cpu0, sampleCPU(comps))
	stopLag()
	<-lagDone
	tx1 := b.txTotals(ctx)
	for g, t := range tx1 {
		if n := t[1] - tx0[g][1]; n > 0 {
			st.TxMs[g] = round2((t[0] - tx0[g][0]) / n * 1000)
		}
	}
	return st, nil
}

// follow waits for the committed events in Kafka and, when handled, in each group's
// processed-events table (up to the drain timeout each), and fills the latencies.
func (b *bench) follow(ctx context.Context, rd *reader, ok []sent, st *Step, handled bool) error {
	keys := make([]string, len(ok))
	for i, s := range ok {
		keys[i] = s.key
	}
	got := rd.waitAll(ctx, keys, b.c.Drain)
	st.Missing["kafka"] = len(ok) - got
	var toKafka []time.Duration
	ids := make([]string, 0, len(ok))
	byID := map[string]sent{}
	for _, s := range ok {
		if a, found := rd.get(s.key); found {
			toKafka = append(toKafka, a.At.Sub(s.end))
			ids = append(ids, a.EventID)
			byID[a.EventID] = s
		}
	}
	st.ToKafka = loadgen.Summarize(toKafka)
	if !handled {
		return nil
	}
	for _, g := range []struct {
		name string
		db   *sql.DB
	}{{"notifier", b.notDB}, {"analytics", b.anaDB}} {
		at, err := waitProcessed(ctx, g.db, g.name, ids, b.c.Drain)
		if err != nil {
			return err
		}
		var lat []time.Duration
		for id, t := range at {
			lat = append(lat, t.Sub(byID[id].end))
		}
		st.Handled[g.name] = loadgen.Summarize(lat)
		st.Missing[g.name] = len(ok) - len(at)
	}
	return nil
}

// waitProcessed returns the processed_at of each of ids that group has applied, waiting up to
// timeout for all of them.
func waitProcessed(ctx context.Context, db *sql.DB, group string, ids []string, timeout time.Duration) (map[string]time.Time, error) {
	at := map[string]time.Time{}
	deadline := time.Now().Add(timeout)
	pending := ids
	for {
		got, err := processed.At(ctx, db, group, pending)
		if err != nil {
			return nil, err
		}
		for id, t := range got {
			at[id] = t
		}
		var left []string
		for _, id := range pending {
			if _, ok := at[id]; !ok {
				left = append(left, id)
			}
		}
		pending = left
		if len(pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return at, ctx.Err()
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// txTotals reads each group's consumer_handler_seconds sum and count.
func (b *bench) txTotals(ctx context.Context) map[string][2]float64 {
	out := map[string][2]float64{}
	for _, g := range groups {
		if m, err := scrape(ctx, g.Metrics, "consumer_handler_seconds_sum", "consumer_handler_seconds_count"); err == nil {
			out[g.Name] = [2]float64{m["consumer_handler_seconds_sum"], m["consumer_handler_seconds_count"]}
		}
	}
	return out
}

// watchLag records into max the highest summed consumer_lag_records per group, every second,
// until ctx ends; the channel closes then.
func (b *bench) watchLag(ctx context.Context, maxLag map[string]float64) <-chan struct{} {
	done := make(chan struct{})
	go func() { // the only writer of maxLag until done closes
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			for _, g := range groups {
				if m, err := scrape(ctx, g.Metrics, "consumer_lag_records"); err == nil {
					maxLag[g.Name] = max(maxLag[g.Name], m["consumer_lag_records"])
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return done
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// topErrors lists the n most frequent errors with their counts.
func topErrors(errs map[string]int, n int) []string {
	ks := sortedKeys(errs)
	slices.SortStableFunc(ks, func(a, b string) int { return errs[b] - errs[a] })
	var out []string
	for _, k := range ks[:min(n, len(ks))] {
		out = append(out, fmt.Sprintf("%d x %s", errs[k], k))
	}
	return out
}
