// Package metricstest reads a Prometheus /metrics page in tests: the page a handler serves, and
// the samples of it that a failure message should show.
package metricstest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Scrape is the text h serves for GET /metrics; the test fails on any status but 200.
func Scrape(t testing.TB, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// Lines is the sample lines of body (HELP and TYPE comments left out) that contain substr, one a
// line.
func Lines(body, substr string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
