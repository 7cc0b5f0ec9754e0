package main

import (
	"context"
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/todocdc/pipeline/internal/status"
)

// slotCollector exports replication slots as Prometheus series, read at each scrape:
// postgres_replication_slot_up (1 when the slot exists and could be read), _active,
// _wal_retained_bytes (current WAL - restart_lsn), _pending_bytes (current WAL -
// confirmed_flush_lsn) and _confirmed_flush_lsn_bytes (a position that only grows: an alert
// on `changes(...[3m]) == 0` with pending bytes is a stalled relay). Label: slot.
type slotCollector struct {
	db    *sql.DB
	slots []string
	ctx   func() (context.Context, context.CancelFunc)

	up, active, retained, pending, confirmed *prometheus.Desc
}

// newSlotCollector collects slots through db; each scrape's query is bounded by timeoutCtx.
func newSlotCollector(db *sql.DB, timeoutCtx func() (context.Context, context.CancelFunc), slots ...string) *slotCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("postgres_replication_slot_"+name, help, []string{"slot"}, nil)
	}
	return &slotCollector{db: db, slots: slots, ctx: timeoutCtx,
		up:        d("up", "1 when the replication slot exists and was read, else 0."),
		active:    d("active", "1 while a client (Debezium) streams from the slot."),
		retained:  d("wal_retained_bytes", "WAL the slot keeps on disk: current WAL position - restart_lsn."),
		pending:   d("pending_bytes", "WAL not yet confirmed by the slot's client: current WAL position - confirmed_flush_lsn."),
		confirmed: d("confirmed_flush_lsn_bytes", "The slot's confirmed_flush_lsn as a byte position; moves with every confirmation (heartbeats included)."),
	}
}

// Describe implements prometheus.Collector.
func (c *slotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.active, c.retained, c.pending, c.confirmed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *slotCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := c.ctx()
	defer cancel()
	for _, name := range c.slots {
		f, confirmed, err := status.Slot(ctx, c.db, name)
		if err != nil || !f.Exists {
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0, name)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1, name)
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, b2f(f.Active), name)
		ch <- prometheus.MustNewConstMetric(c.retained, prometheus.GaugeValue, float64(f.RetainedBytes), name)
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(f.PendingBytes), name)
		ch <- prometheus.MustNewConstMetric(c.confirmed, prometheus.GaugeValue, float64(confirmed), name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
