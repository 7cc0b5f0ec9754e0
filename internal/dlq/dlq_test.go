package dlq

import (
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/todocdc/pipeline/events"
)

func TestFailureHeadersRoundTripAndReplay(t *testing.T) {
	first := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	f := Failure{Topic: "todos.task.events", Partition: 4, Offset: 99, Err: "boom", Class: Permanent, RetryCount: 3,
		FirstFailure: first, FailedAt: first.Add(time.Minute), Group: "analytics"}
	orig := []kafka.Header{{Key: events.HeaderID, Value: []byte("e1")}, {Key: events.HeaderType, Value: []byte(events.TypeCreated)}}
	hs := FailureHeaders(orig, f)
	if got := ParseFailure(hs); got != f {
		t.Fatalf("ParseFailure(FailureHeaders(f)) = %+v, want %+v", got, f)
	}
	e := Entry{Partition: 0, Offset: 7, Key: []byte("k"), Value: []byte("v"), Headers: hs, Failure: f}
	now := first.Add(time.Hour)
	m := ReplayMessage(e, "", now)
	if *m.TopicPartition.Topic != "" || string(m.Key) != "k" || string(m.Value) != "v" {
		t.Fatalf("replay record %+v", m)
	}
	keys := map[string]string{}
	for _, h := range m.Headers {
		keys[h.Key] = string(h.Value)
	}
	if keys[events.HeaderID] != "e1" || keys[events.HeaderType] != events.TypeCreated || keys[HeaderReplayOf] != "7" {
		t.Errorf("replay headers %v: want the original ones and replayed_dlq_offset 7", keys)
	}
	for _, k := range []string{HeaderRetryCount, HeaderError, HeaderOriginalTopic, HeaderGroup} {
		if _, ok := keys[k]; ok {
			t.Errorf("replay keeps failure header %s: it would start with a stale retry count", k)
		}
	}
	mk := ReplayMarker(e, events.DLQTopic, "todos.task.events", now)
	if mk.Value != nil || mk.TopicPartition.Partition != 0 || *mk.TopicPartition.Topic != events.DLQTopic {
		t.Errorf("marker %+v", mk)
	}
}

func TestReplayMarkerNeedsItsHeaders(t *testing.T) {
	e := Entry{Partition: 0, Offset: 7, Key: []byte("k"), Value: []byte("v"),
		Headers: []kafka.Header{{Key: events.HeaderID, Value: []byte("e1")}}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if o, to, ok := replayMarkerOf(ReplayMarker(e, events.DLQTopic, "main", now)); !ok || o != 7 || to != "main" {
		t.Fatalf("marker not recognised: %d %q %v", o, to, ok)
	}
	// a replayed record with an empty value (a tombstone) that lands in a DLQ (replay --to it):
	// it carries replayed_dlq_offset, but it is an entry, not a marker
	again := ReplayMessage(e, events.DLQTopic, now)
	again.Value = nil
	if _, _, ok := replayMarkerOf(again); ok {
		t.Fatal("a replayed record with no value taken for a marker")
	}
	bad := ReplayMarker(e, events.DLQTopic, "main", now)
	bad.Headers[0].Value = []byte("x")
	if _, _, ok := replayMarkerOf(bad); ok {
		t.Fatal("a marker with a non-numeric offset accepted")
	}
	withValue := ReplayMarker(e, events.DLQTopic, "main", now)
	withValue.Value = []byte("v")
	if _, _, ok := replayMarkerOf(withValue); ok {
		t.Fatal("a record with a value taken for a marker")
	}
}

func TestFailureHeadersKeepOriginalsAndReplaceOwn(t *testing.T) {
	orig := []kafka.Header{{Key: events.HeaderID, Value: []byte("e1")}, {Key: HeaderRetryCount, Value: []byte("2")},
		{Key: HeaderError, Value: []byte("old")}}
	hs := FailureHeaders(orig, Failure{Topic: "t", Partition: 1, Offset: 9, Err: "new", Class: Permanent, RetryCount: 2,
		FirstFailure: time.Unix(0, 0), FailedAt: time.Unix(1, 0), Group: "g"})
	counts := map[string]int{}
	for _, h := range hs {
		counts[h.Key]++
	}
	for _, k := range []string{events.HeaderID, HeaderRetryCount, HeaderError, HeaderOriginalTopic, HeaderFirstFailure} {
		if counts[k] != 1 {
			t.Errorf("header %s appears %d times", k, counts[k])
		}
	}
	if v, _ := Header(hs, HeaderError); v != "new" {
		t.Errorf("error_message %q", v)
	}
	if v, _ := Header(hs, HeaderFirstFailure); v != "1970-01-01T00:00:00Z" {
		t.Errorf("first_failure_time %q", v)
	}
}
