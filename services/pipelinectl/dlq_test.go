package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/dlq"
)

// A replay that failed partway says what it did: replayed, skipped, the failure, what was not tried.
func TestPrintReplayPartialFailure(t *testing.T) {
	var b bytes.Buffer
	printReplay(&b, []replayResult{
		{Offset: 3, EventID: "e3", Status: replayDone, Topic: "main"},
		{Offset: 4, EventID: "e4", Status: replaySkipped, Topic: "main", Reason: "already replayed at X (--force to replay it again)"},
		{Offset: 5, EventID: "e5", Status: replayFailed, Reason: "replay offset 5 to main: broker down"},
		{Offset: 6, Status: replayNotAttempted},
	})
	want := `replayed offset 3 (event e3) to main
skipped offset 4 (event e4): already replayed at X (--force to replay it again)
FAILED offset 5 (event e5): replay offset 5 to main: broker down
not attempted: offset 6 (event -)
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printReplay(&b, nil)
	if !strings.Contains(b.String(), "nothing to replay") {
		t.Fatalf("empty: %q", b.String())
	}
}

// failingPublisher acknowledges the first n records, then fails.
type failingPublisher struct {
	n    int
	sent []*kafka.Message
}

func (p *failingPublisher) Publish(_ context.Context, m *kafka.Message) error {
	if len(p.sent) >= p.n {
		return errors.New("broker down")
	}
	p.sent = append(p.sent, m)
	return nil
}

func TestReplayEntriesStopsAtTheFirstFailure(t *testing.T) {
	var entries []dlq.Entry
	for o := int64(10); o < 14; o++ {
		entries = append(entries, dlq.Entry{Offset: o, Value: []byte("v"),
			Headers: []kafka.Header{{Key: events.HeaderID, Value: []byte(fmt.Sprint("e", o))}},
			Failure: dlq.Failure{Topic: "main"}})
	}
	// two records and their markers pass, the third record fails
	pub := &failingPublisher{n: 4}
	res, err := replayEntries(context.Background(), pub, "dlq", entries, "", time.Second)
	if err == nil || !strings.Contains(err.Error(), "broker down") {
		t.Fatalf("err %v", err)
	}
	var got []string
	for _, r := range res {
		got = append(got, fmt.Sprint(r.Offset, ":", r.Status, ":", r.Topic))
	}
	want := []string{"10:replayed:main", "11:replayed:main", "12:failed:", "13:not_attempted:"}
	if !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	if res[0].EventID != "e10" || res[2].Reason == "" {
		t.Errorf("results %+v", res)
	}
}
