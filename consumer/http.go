package consumer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// stallAfter is how long the poll loop may go without polling before /healthz fails: it only
// blocks on a rebalance, which waits at most ShutdownTimeout for in-flight handlers.
const stallAfter = 60 * time.Second

// Handler serves GET /metrics (Prometheus), /healthz (the poll loop is alive, no fatal error) and /readyz (the
// consumer has joined its group and Deps.Ready passes).
func (c *Consumer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.gather, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := c.healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := c.readyErr(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func (c *Consumer) healthy() error {
	if err := c.fatalErr(); err != nil {
		return err
	}
	last := c.lastPoll.Load()
	if last == 0 {
		return errors.New("not polling yet")
	}
	if d := time.Since(time.Unix(0, last)); d > stallAfter {
		return fmt.Errorf("poll loop stalled for %s", d.Round(time.Second))
	}
	return nil
}

func (c *Consumer) readyErr(ctx context.Context) error {
	if err := c.healthy(); err != nil {
		return err
	}
	if !c.joined.Load() {
		return errors.New("not in the consumer group yet")
	}
	if c.ready != nil {
		if err := c.ready(ctx); err != nil {
			return fmt.Errorf("not ready: %w", err)
		}
	}
	return nil
}
