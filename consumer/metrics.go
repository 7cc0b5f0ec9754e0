package consumer

import (
	"encoding/json"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runtime's Prometheus series, all labelled with the consumer group.
type metrics struct {
	consumed     *prometheus.CounterVec   // topic
	handled      *prometheus.CounterVec   // type
	duplicates   *prometheus.CounterVec   // type
	unknownTypes *prometheus.CounterVec   // type
	retried      *prometheus.CounterVec   // how: "in_place" or "retry_topic"
	deadLettered *prometheus.CounterVec   // class
	latency      *prometheus.HistogramVec // type
	lag          *prometheus.GaugeVec     // topic, partition
	paused       *prometheus.GaugeVec     // topic, partition
	lastCommit   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, group string) *metrics {
	c := prometheus.Labels{"group": group}
	m := &metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_records_consumed_total",
			Help: "Records read from Kafka.", ConstLabels: c}, []string{"topic"}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_events_handled_total",
			Help: "Events applied (handler and processed mark committed).", ConstLabels: c}, []string{"type"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_events_duplicate_total",
			Help: "Events skipped because they were already processed.", ConstLabels: c}, []string{"type"}),
		unknownTypes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_events_unrouted_total",
			Help: "Events skipped because no handler takes their type.", ConstLabels: c}, []string{"type"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_retries_total",
			Help: "Retries: in place (after backoff) or through the retry topic.", ConstLabels: c}, []string{"how", "class"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_dead_lettered_total",
			Help: "Records sent to the DLQ.", ConstLabels: c}, []string{"class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "consumer_handler_seconds",
			Help: "Time to apply one event (transaction included).", ConstLabels: c,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"type"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "consumer_lag_records",
			Help:        "Records between what the group processed and the partition's last stable offset; 0 when only transaction markers are left (librdkafka statistics).",
			ConstLabels: c}, []string{"topic", "partition"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "consumer_partition_paused",
			Help: "1 while a partition is paused (backoff or a full queue).", ConstLabels: c}, []string{"topic", "partition"}),
		lastCommit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "consumer_last_commit_timestamp_seconds",
			Help: "Unix time of the last offset commit that stored an offset (0: none since start).", ConstLabels: c}),
	}
	reg.MustRegister(m.consumed, m.handled, m.duplicates, m.unknownTypes, m.retried, m.deadLettered, m.latency, m.lag, m.paused,
		m.lastCommit)
	return m
}

// rdStats is the part of a librdkafka statistics document the lag is computed from
// (librdkafka's STATISTICS.md: offsets are -1001 when unknown).
type rdStats struct {
	Topics map[string]struct {
		Partitions map[string]rdPartition `json:"partitions"`
	} `json:"topics"`
}

type rdPartition struct {
	FetchqCnt       int64 `json:"fetchq_cnt"`       // records fetched, not yet handed to the application
	NextOffset      int64 `json:"next_offset"`      // the next offset the fetcher asks for
	StoredOffset    int64 `json:"stored_offset"`    // the offset to commit (last processed record + 1)
	CommittedOffset int64 `json:"committed_offset"` // the last committed offset
	LSOffset        int64 `json:"ls_offset"`        // the last stable offset (read_committed's end)
}

// lag is the number of records between what the group has processed (the stored offset, else
// the committed one) and the partition's last stable offset, or false when it is unknown.
//
// On a topic written in Kafka transactions (Debezium's exactly-once relay) every commit marker
// takes an offset that no consumer ever receives, so that difference stays >= 1 for ever once the
// consumer is caught up. The difference is therefore read as 0 when nothing data can lie in it:
// the fetcher has reached the last stable offset (next_offset >= ls_offset), nothing fetched is
// waiting (fetchq_cnt = 0) and every record handed to the application has been processed
// (polledNext, the offset after the last record polled, or -1 when none was, is <= the stored
// offset): the offsets left are commit markers (or aborted records). While records are in flight
// the figure is an upper bound: it counts the markers in between too. A partition with nothing
// processed nor committed reads 0 once the fetcher is at its end, else it is unknown.
func (p rdPartition) lag(polledNext int64) (int64, bool) {
	atEnd := p.LSOffset >= 0 && p.FetchqCnt == 0 && p.NextOffset >= p.LSOffset
	pos := p.StoredOffset
	if pos < 0 {
		pos = p.CommittedOffset
	}
	if pos < 0 {
		// Nothing processed nor committed yet (a partition never written to): caught up when the
		// fetcher is at the end and handed nothing out.
		return 0, atEnd && polledNext < 0
	}
	if p.LSOffset < 0 {
		return 0, false
	}
	lag := max(p.LSOffset-pos, 0)
	if lag > 0 && atEnd && polledNext <= pos {
		lag = 0
	}
	return lag, true
}

// observeStats sets the lag gauges from a librdkafka statistics document. polled says whether a
// partition is owned and the offset after its last polled record (-1 if none since it was assigned).
func (m *metrics) observeStats(doc string, polled func(topic string, partition int32) (owned bool, next int64)) {
	var s rdStats
	if json.Unmarshal([]byte(doc), &s) != nil {
		return
	}
	for topic, t := range s.Topics {
		for p, ps := range t.Partitions {
			id, err := strconv.Atoi(p)
			if err != nil || id < 0 {
				continue
			}
			owned, next := polled(topic, int32(id))
			if !owned {
				continue
			}
			if lag, ok := ps.lag(next); ok {
				m.lag.WithLabelValues(topic, p).Set(float64(lag))
			}
		}
	}
}
