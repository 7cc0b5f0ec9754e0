package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/todocdc/pipeline/internal/metricstest"
)

func TestMetricsCountRequestsByRouteAndStatus(t *testing.T) {
	srv, _, token := newTestAPI(t)
	srv.metrics = newHTTPMetrics(prometheus.NewRegistry())
	h := srv.routes()
	tok := token("alice")
	do(h, http.MethodPost, "/v1/todos", tok, "application/json", `{"title":"a"}`)
	do(h, http.MethodPost, "/v1/todos", tok, "application/json", `{"title":""}`)
	do(h, http.MethodGet, "/v1/todos/not-a-uuid", tok, "", "")
	do(h, http.MethodGet, "/nowhere", tok, "", "")
	body := metricstest.Scrape(t, h)
	for _, want := range []string{
		`http_requests_total{route="POST /v1/todos",status="201"} 1`,
		`http_requests_total{route="POST /v1/todos",status="400"} 1`,
		`http_requests_total{route="GET /v1/todos/{id}",status="400"} 1`,
		`http_requests_total{route="unmatched",status="404"} 1`,
		`http_request_duration_seconds_count{route="POST /v1/todos",status="201"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, metricstest.Lines(body, "http_requests_total"))
		}
	}
}
