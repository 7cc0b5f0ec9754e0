package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestScrapeAndLines: a registry's page is scraped, and Lines keeps the samples of one metric only.
func TestScrapeAndLines(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "things_total", Help: "things"}, []string{"kind"})
	reg.MustRegister(c, prometheus.NewGauge(prometheus.GaugeOpts{Name: "other", Help: "things_total is not here"}))
	c.WithLabelValues("a").Add(2)
	c.WithLabelValues("b").Inc()
	body := Scrape(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if got, want := Lines(body, "things_total"), "things_total{kind=\"a\"} 2\nthings_total{kind=\"b\"} 1"; got != want {
		t.Errorf("Lines: %q, want %q\nfrom:\n%s", got, want, body)
	}
	if got := Lines(body, "absent"); got != "" {
		t.Errorf("Lines of an absent metric: %q", got)
	}
}
