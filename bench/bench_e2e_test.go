//go:build e2e

package main

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/todocdc/pipeline/events"
)

// TestSustainedStepSmoke runs one short open-loop step on the running stack, the way make bench
// does (50 todos/s for 2 s): every todo is answered, read from Kafka and handled by both groups,
// and each latency has its samples.
func TestSustainedStepSmoke(t *testing.T) {
	c, err := parseConfig([]string{"-sections", "sustained", "-rates", "50", "-step", "2s", "-drain", "60s", "-workers", "16"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := newBench(ctx, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	api, err := b.newAPI(c.Workers)
	if err != nil {
		t.Fatal(err)
	}
	defer api.close()
	rd, err := b.newReader(ctx, events.Topic)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.close()
	st, err := b.step(ctx, api, rd, 50)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 100 || st.OK != 100 || len(st.Errors) != 0 {
		t.Fatalf("sent %d, ok %d, errors %v: want 100 answered", st.Sent, st.OK, st.Errors)
	}
	for what, n := range st.Missing {
		if n != 0 {
			t.Errorf("%d events missing in %s", n, what)
		}
	}
	if st.API.N != 100 || st.ToKafka.N != 100 || st.Handled["notifier"].N != 100 || st.Handled["analytics"].N != 100 {
		t.Fatalf("samples: API %d, Kafka %d, handled %+v", st.API.N, st.ToKafka.N, st.Handled)
	}
	if st.ToKafka.P50 <= 0 || st.Handled["analytics"].P50 < st.ToKafka.P50/10 {
		t.Errorf("implausible latencies: commit -> Kafka %+v, handled %+v", st.ToKafka, st.Handled)
	}
	t.Logf("50/s: commit -> Kafka %+v; handled %+v", st.ToKafka, st.Handled)
}
