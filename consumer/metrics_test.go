package consumer

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestLagCountsTransactionMarkersAsCaughtUp(t *testing.T) {
	const unknown = -1001
	for _, tc := range []struct {
		name       string
		p          rdPartition
		polledNext int64
		want       int64
		known      bool
	}{
		{"caught up, one commit marker after the last record", rdPartition{NextOffset: 11, StoredOffset: 10, CommittedOffset: 10, LSOffset: 11}, 10, 0, true},
		{"restarted at the committed offset, nothing polled since", rdPartition{NextOffset: 11, StoredOffset: unknown, CommittedOffset: 10, LSOffset: 11}, -1, 0, true},
		{"a record polled, not processed yet", rdPartition{NextOffset: 12, StoredOffset: 10, CommittedOffset: 10, LSOffset: 12}, 11, 2, true},
		{"records fetched, not handed out", rdPartition{FetchqCnt: 3, NextOffset: 15, StoredOffset: 10, LSOffset: 15}, 10, 5, true},
		{"fetcher behind the end", rdPartition{NextOffset: 20, StoredOffset: 10, LSOffset: 30}, 10, 20, true},
		{"a topic without transactions, caught up", rdPartition{NextOffset: 7, StoredOffset: 7, LSOffset: 7}, 7, 0, true},
		{"nothing stored nor committed, fetcher not started", rdPartition{NextOffset: unknown, StoredOffset: unknown, CommittedOffset: unknown, LSOffset: 5}, -1, 0, false},
		{"nothing stored nor committed, empty partition", rdPartition{NextOffset: 0, StoredOffset: unknown, CommittedOffset: unknown, LSOffset: 0}, -1, 0, true},
		{"nothing committed, a record polled", rdPartition{NextOffset: 1, StoredOffset: unknown, CommittedOffset: unknown, LSOffset: 1}, 1, 0, false},
		{"end unknown", rdPartition{StoredOffset: 4, LSOffset: unknown}, 4, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.p.lag(tc.polledNext)
			if got != tc.want || ok != tc.known {
				t.Fatalf("lag = %d, %v; want %d, %v", got, ok, tc.want, tc.known)
			}
		})
	}
}

func TestObserveStatsSetsOwnedPartitionsOnly(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, "g")
	doc := `{"topics":{"t":{"partitions":{
		"0":{"fetchq_cnt":0,"next_offset":11,"stored_offset":10,"committed_offset":10,"ls_offset":11},
		"1":{"fetchq_cnt":0,"next_offset":9,"stored_offset":5,"committed_offset":5,"ls_offset":9},
		"2":{"fetchq_cnt":0,"next_offset":3,"stored_offset":1,"committed_offset":1,"ls_offset":3},
		"-1":{"fetchq_cnt":0,"next_offset":-1001,"stored_offset":-1001,"committed_offset":-1001,"ls_offset":-1001}}}}}`
	m.observeStats(doc, func(topic string, p int32) (bool, int64) {
		return p != 2, map[int32]int64{0: 10, 1: 9}[p]
	})
	for p, want := range map[string]float64{"0": 0, "1": 4} {
		var d dto.Metric
		if err := m.lag.WithLabelValues("t", p).Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetGauge().GetValue(); got != want {
			t.Errorf("partition %s: lag %v, want %v", p, got, want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "consumer_lag_records" && len(mf.GetMetric()) != 2 {
			t.Errorf("%d lag series, want 2 (partition 2 is not owned)", len(mf.GetMetric()))
		}
	}
	m.observeStats("not json", func(string, int32) (bool, int64) { panic(fmt.Sprint("called")) })
}
