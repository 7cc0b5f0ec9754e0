//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPrometheusScrapesEveryTarget: the Prometheus make run starts (127.0.0.1:9090) has loaded
// the repository's alert rules and scrapes every target of monitoring/prometheus.yml (todo-api,
// both consumers, Kafka, each running Connect worker), all up. A target is scraped every 15 s, so
// a target just restarted gets 60 s to come up.
func TestPrometheusScrapesEveryTarget(t *testing.T) {
	prom := getenv("PROMETHEUS_URL", "http://127.0.0.1:9090")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var rules struct {
		Data struct {
			Groups []struct {
				Name  string
				Rules []struct{ Name, Type, Health string }
			}
		}
	}
	if err := getJSON(ctx, prom+"/api/v1/rules", &rules); err != nil {
		t.Fatalf("Prometheus at %s: %v (make run starts it)", prom, err)
	}
	var alerts []string
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			if r.Type == "alerting" {
				alerts = append(alerts, r.Name)
			}
			if r.Health == "err" {
				t.Errorf("rule %s: evaluation fails", r.Name)
			}
		}
	}
	for _, want := range []string{"ConnectorNotRunning", "ConnectorTaskNotRunning", "DebeziumNotConnected", "ReplicationSlotInactive",
		"StreamingStalled", "ReplicationSlotWALRetained", "ConsumerDown", "ConsumerLagHigh", "DLQArrivals"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s not loaded (loaded: %v)", want, alerts)
		}
	}

	type target struct {
		Labels    map[string]string
		ScrapeURL string
		Health    string
		LastError string
	}
	for {
		var res struct {
			Data struct{ ActiveTargets []target }
		}
		if err := getJSON(ctx, prom+"/api/v1/targets?state=active", &res); err != nil {
			t.Fatal(err)
		}
		jobs := map[string]int{}
		var down []string
		for _, tg := range res.Data.ActiveTargets {
			jobs[tg.Labels["job"]]++
			if tg.Health != "up" {
				down = append(down, fmt.Sprintf("%s %s: %s %s", tg.Labels["job"], tg.ScrapeURL, tg.Health, tg.LastError))
			}
		}
		var missing []string
		for job, n := range map[string]int{"todo-api": 1, "consumers": 2, "kafka": 1, "connect": 1} {
			if jobs[job] < n {
				missing = append(missing, fmt.Sprintf("%s: %d targets, want %d", job, jobs[job], n))
			}
		}
		if len(missing) > 0 {
			t.Fatalf("targets missing: %s", strings.Join(missing, "; "))
		}
		if len(down) == 0 {
			t.Logf("%d targets up: %v", len(res.Data.ActiveTargets), jobs)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("targets not up: %s", strings.Join(down, "; "))
		case <-time.After(3 * time.Second):
		}
	}
}
