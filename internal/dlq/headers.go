// Package dlq is the dead-letter topic's record format, shared by the consumer runtime (which
// writes retry and DLQ copies) and the operator's tooling (which lists and replays them): the
// failure headers, what they say (Failure), reading the DLQ with its replay markers, and replay.
package dlq

import (
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Headers the runtime adds to records it sends to the retry topic and the DLQ. The record keeps its
// original key, value and headers; these say where it came from and why it failed. A record on the
// retry topic already carries them; the runtime updates them and keeps the first ones.
const (
	HeaderRetryCount        = "retry_count"         // retry-topic rounds done (0: straight to the DLQ)
	HeaderOriginalTopic     = "original_topic"      // topic the record was first read from
	HeaderOriginalPartition = "original_partition"  // its partition there
	HeaderOriginalOffset    = "original_offset"     // its offset there
	HeaderError             = "error_message"       // the last error
	HeaderErrorClass        = "error_class"         // "retriable" or "permanent"
	HeaderFirstFailure      = "first_failure_time"  // RFC 3339, when the record first failed
	HeaderFailedAt          = "failed_time"         // RFC 3339, when it failed last
	HeaderGroup             = "consumer_group"      // the consumer group that failed it
	HeaderRetryNotBefore    = "retry_not_before"    // retry topic only: RFC 3339, re-consume from then on
	HeaderReplayedAt        = "replayed_time"       // on a record replayed from the DLQ: when
	HeaderReplayOf          = "replayed_dlq_offset" // on a record replayed from the DLQ, and on the DLQ's replay marker
	HeaderReplayTopic       = "replayed_to_topic"   // on the DLQ's replay marker: where the record went
)

// failureHeaders are the runtime's own headers, dropped before new ones are added.
var failureHeaders = map[string]bool{
	HeaderRetryCount: true, HeaderOriginalTopic: true, HeaderOriginalPartition: true, HeaderOriginalOffset: true,
	HeaderError: true, HeaderErrorClass: true, HeaderFirstFailure: true, HeaderFailedAt: true, HeaderGroup: true,
	HeaderRetryNotBefore: true, HeaderReplayedAt: true, HeaderReplayOf: true, HeaderReplayTopic: true,
}

// maxErrorHeader bounds the error text kept in a header.
const maxErrorHeader = 2000

// Class is what the runtime does with a failed record; a DLQ record says Retriable or Permanent.
type Class int

const (
	// Transient: the infrastructure failed (database or registry unreachable, a timeout). The record
	// is retried in place, with backoff, for as long as it takes; it is never dead-lettered for this.
	Transient Class = iota
	// Retriable: the handler failed and might succeed later. The record is retried in place a few
	// times, then goes through the retry topic, then to the DLQ after the runtime's MaxRetries rounds.
	Retriable
	// Permanent: the record can never succeed (not the wire format, unknown schema id, undecodable,
	// a handler's permanent error). It goes straight to the DLQ.
	Permanent
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Retriable:
		return "retriable"
	default:
		return "permanent"
	}
}

// Failure describes why and where a record failed.
type Failure struct {
	Topic        string // original topic
	Partition    int32
	Offset       int64
	Err          string
	Class        Class // Retriable or Permanent (what a reader of the DLQ needs)
	RetryCount   int
	FirstFailure time.Time
	FailedAt     time.Time
	Group        string
}

// FailureOf is the failure of m, failing now with err of class in group: for a record read from the main topic, its own position;
// for one that came back from the retry topic, the position and first-failure time it carries.
func FailureOf(m *kafka.Message, group string, err error, class Class, now time.Time) Failure {
	f := Failure{
		Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset),
		Err: err.Error(), Class: class, FirstFailure: now, FailedAt: now, Group: group,
	}
	if t, ok := Header(m.Headers, HeaderOriginalTopic); ok {
		f.Topic = t
		if p, err := strconv.ParseInt(HeaderOr(m.Headers, HeaderOriginalPartition, ""), 10, 32); err == nil {
			f.Partition = int32(p)
		}
		if o, err := strconv.ParseInt(HeaderOr(m.Headers, HeaderOriginalOffset, ""), 10, 64); err == nil {
			f.Offset = o
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, HeaderOr(m.Headers, HeaderFirstFailure, "")); err == nil {
		f.FirstFailure = t
	}
	f.RetryCount = RetryCount(m.Headers)
	return f
}

// RetryCount is the retry_count header's value (0 when absent or malformed).
func RetryCount(hs []kafka.Header) int {
	n, err := strconv.Atoi(HeaderOr(hs, HeaderRetryCount, "0"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// FailureHeaders returns the original headers without the runtime's ones, followed by f's headers.
func FailureHeaders(orig []kafka.Header, f Failure) []kafka.Header {
	out := StripFailureHeaders(orig)
	errText := f.Err
	if len(errText) > maxErrorHeader {
		errText = errText[:maxErrorHeader]
	}
	class := f.Class
	if class == Transient {
		class = Retriable
	}
	return append(out,
		kafka.Header{Key: HeaderOriginalTopic, Value: []byte(f.Topic)},
		kafka.Header{Key: HeaderOriginalPartition, Value: []byte(strconv.Itoa(int(f.Partition)))},
		kafka.Header{Key: HeaderOriginalOffset, Value: []byte(strconv.FormatInt(f.Offset, 10))},
		kafka.Header{Key: HeaderError, Value: []byte(errText)},
		kafka.Header{Key: HeaderErrorClass, Value: []byte(class.String())},
		kafka.Header{Key: HeaderRetryCount, Value: []byte(strconv.Itoa(f.RetryCount))},
		kafka.Header{Key: HeaderFirstFailure, Value: []byte(f.FirstFailure.UTC().Format(time.RFC3339Nano))},
		kafka.Header{Key: HeaderFailedAt, Value: []byte(f.FailedAt.UTC().Format(time.RFC3339Nano))},
		kafka.Header{Key: HeaderGroup, Value: []byte(f.Group)},
	)
}

// StripFailureHeaders returns hs without the runtime's failure, retry and replay headers.
func StripFailureHeaders(hs []kafka.Header) []kafka.Header {
	out := make([]kafka.Header, 0, len(hs)+10)
	for _, h := range hs {
		if !failureHeaders[h.Key] {
			out = append(out, h)
		}
	}
	return out
}

// Header returns the first header named key.
func Header(hs []kafka.Header, key string) (string, bool) {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// HeaderOr returns the first header named key, or def when there is none.
func HeaderOr(hs []kafka.Header, key, def string) string {
	if v, ok := Header(hs, key); ok {
		return v
	}
	return def
}
