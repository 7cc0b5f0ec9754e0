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
			Help:        "Records between the consumer's position and the end of the partition (librdkafka statistics).",
			ConstLabels: c}, []string{"topic", "partition"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "consumer_partition_paused",
			Help: "1 while a partition is paused (backoff or a full queue).", ConstLabels: c}, []string{"topic", "partition"}),
	}
	reg.MustRegister(m.consumed, m.handled, m.duplicates, m.unknownTypes, m.retried, m.deadLettered, m.latency, m.lag, m.paused)
	return m
}

// librdkafka statistics, the part with the lag.
type rdStats struct {
	Topics map[string]struct {
		Partitions map[string]struct {
			ConsumerLag int64 `json:"consumer_lag"`
		} `json:"partitions"`
	} `json:"topics"`
}

// observeStats sets the lag gauges from a librdkafka statistics document.
func (m *metrics) observeStats(doc string, owned func(topic string, partition int32) bool) {
	var s rdStats
	if json.Unmarshal([]byte(doc), &s) != nil {
		return
	}
	for topic, t := range s.Topics {
		for p, ps := range t.Partitions {
			id, err := strconv.Atoi(p)
			if err != nil || id < 0 || !owned(topic, int32(id)) || ps.ConsumerLag < 0 {
				continue
			}
			m.lag.WithLabelValues(topic, p).Set(float64(ps.ConsumerLag))
		}
	}
}
