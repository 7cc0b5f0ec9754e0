package status

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Get asks url and wants a 2xx answer (a /readyz, a REST root).
func Get(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s %s", url, resp.Status, body)
	}
	return nil
}

// Families is a scraped /metrics page, by metric name.
type Families map[string]*dto.MetricFamily

// Scrape reads a Prometheus text exposition (at most 8 MiB).
func Scrape(ctx context.Context, hc *http.Client, url string) (Families, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return fams, nil
}

// Each calls f with every sample of name, its labels as a map.
func (f Families) Each(name string, fn func(labels map[string]string, value float64)) {
	mf := f[name]
	if mf == nil {
		return
	}
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		var v float64
		switch {
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Untyped != nil:
			v = m.GetUntyped().GetValue()
		default:
			continue
		}
		fn(labels, v)
	}
}

// DebeziumFrom reads Debezium's streaming metrics for the connector whose topic.prefix is server
// (series debezium_metrics_*{context="streaming",server=...}, monitoring/jmx/connect.yml).
func DebeziumFrom(f Families, server string) DebeziumFacts {
	d := DebeziumFacts{Available: true, MillisSinceEvent: -1}
	get := func(name string, into *float64) bool {
		found := false
		f.Each(name, func(l map[string]string, v float64) {
			if l["context"] == "streaming" && l["server"] == server {
				*into, found = v, true
			}
		})
		return found
	}
	var connected float64
	d.StreamingRegistry = get("debezium_metrics_connected", &connected)
	d.Connected = connected == 1
	get("debezium_metrics_millisecondssincelastevent", &d.MillisSinceEvent)
	get("debezium_metrics_queueremainingcapacity", &d.QueueRemaining)
	get("debezium_metrics_queuetotalcapacity", &d.QueueTotal)
	get("debezium_metrics_totalnumberofeventsseen", &d.TotalEventsSeen)
	return d
}

// ConsumerFrom reads the consumer runtime's own series: paused partitions
// (consumer_partition_paused, "topic/partition") and the last commit time.
func ConsumerFrom(f Families) (paused map[string]bool, lastCommit time.Time) {
	paused = map[string]bool{}
	f.Each("consumer_partition_paused", func(l map[string]string, v float64) {
		if v == 1 {
			paused[l["topic"]+"/"+l["partition"]] = true
		}
	})
	f.Each("consumer_last_commit_timestamp_seconds", func(_ map[string]string, v float64) {
		if v > 0 {
			lastCommit = time.UnixMilli(int64(v * 1000))
		}
	})
	return paused, lastCommit
}
