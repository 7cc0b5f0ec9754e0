// Package topicreader reads a Kafka topic without a consumer group: every partition (or some),
// from the beginning, the end, an offset or a time, following the topic or stopping at its high
// watermark. It serves the DLQ tooling, pipelinectl tail and the tests' readers.
package topicreader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/todocdc/pipeline/kafkaconf"
)

// Start says where each partition is read from; the zero value is the end (new records only).
type Start struct {
	kind    int // 0 end, 1 beginning, 2 offset, 3 time, 4 an offset per partition
	offset  int64
	at      time.Time
	offsets map[int32]int64
}

// FromEnd starts at each partition's high watermark when the reader opens: only records written
// after that are read.
func FromEnd() Start { return Start{} }

// FromBeginning starts at each partition's first record still on the broker.
func FromBeginning() Start { return Start{kind: 1} }

// AtOffset starts at offset n (0 or more) in every partition read. An offset out of range is
// reset by librdkafka (auto.offset.reset: latest).
func AtOffset(n int64) Start { return Start{kind: 2, offset: n} }

// Since starts, in each partition, at the first record whose timestamp is t or later (the end
// when there is none).
func Since(t time.Time) Start { return Start{kind: 3, at: t} }

// AtOffsets reads the partitions named, each from its own offset (0 or more); Config.Partitions
// must then be empty.
func AtOffsets(offsets map[int32]int64) Start { return Start{kind: 4, offsets: maps.Clone(offsets)} }

// Equal reports whether s and o start at the same place.
func (s Start) Equal(o Start) bool {
	return s.kind == o.kind && s.offset == o.offset && s.at.Equal(o.at) && maps.Equal(s.offsets, o.offsets)
}

// String says where s starts, for messages.
func (s Start) String() string {
	switch s.kind {
	case 1:
		return "beginning"
	case 2:
		return fmt.Sprintf("offset %d", s.offset)
	case 3:
		return "since " + s.at.Format(time.RFC3339Nano)
	case 4:
		return fmt.Sprintf("offsets %v", s.offsets)
	}
	return "end"
}

// Config configures a Reader. Zero values take the defaults named in each comment.
type Config struct {
	Kafka kafkaconf.Client // required: where to connect and as whom
	Topic string           // required
	// Partitions limits the partitions read; default every partition of the topic.
	Partitions []int32
	Start      Start // default FromEnd
	// ReadUncommitted also returns the records of aborted transactions; by default the reader is
	// read_committed, like the consumers.
	ReadUncommitted bool
	// StopAtEnd makes Next return io.EOF once every partition is read up to the high watermark it
	// had when the reader opened; by default the reader follows the topic.
	StopAtEnd bool
	// StopAt makes Next return io.EOF once each partition it names is read up to its offset there
	// (exclusive); a partition it does not name counts as read. Records at or past a partition's
	// offset may still be returned while others are not there yet. Not with StopAtEnd.
	StopAt map[int32]int64
	// FailFast makes "all brokers down" an error (Kafka unreachable): by default the reader
	// waits for the brokers to come back, as librdkafka does.
	FailFast bool
	// GroupID is the group.id librdkafka requires; no group is joined and no offset committed.
	// Default "topicreader-<pid>-<nanoseconds>".
	GroupID string
	// Timeout bounds each request to Kafka while opening (metadata, watermarks, offsets for a
	// time) when the context has no deadline; default 10s.
	Timeout time.Duration
	// Log takes the client's non-fatal errors (at Debug); default slog.Default().
	Log *slog.Logger
}

// ErrNoTopic is returned (wrapped) by Open for a topic that does not exist or a partition it does
// not have.
var ErrNoTopic = errors.New("no such topic or partition")

// Reader reads one topic; it is not safe for concurrent use. Close it when done.
type Reader struct {
	c     *kafka.Consumer
	topic string
	log   *slog.Logger
	parts []kafka.TopicPartition
	start map[int32]int64 // the offset each partition starts at (resolved; -1 when logical)
	ends  map[int32]int64 // with StopAtEnd or after StopAtCurrentEnd: where each partition stops
	eof   map[int32]int64 // the end offset of the last PartitionEOF seen per partition
	tmo   time.Duration
	fast  bool
}

// Open connects and assigns the partitions at their start. Its requests wait until ctx's deadline
// (Config.Timeout without one). Errors: a bad config, Kafka unreachable, ErrNoTopic.
func Open(ctx context.Context, cfg Config) (*Reader, error) {
	if cfg.Kafka.BootstrapServers == "" || cfg.Topic == "" {
		return nil, errors.New("topicreader: Kafka.BootstrapServers and Topic are required")
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.GroupID == "" {
		cfg.GroupID = fmt.Sprintf("topicreader-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	isolation := "read_committed"
	if cfg.ReadUncommitted {
		isolation = "read_uncommitted"
	}
	c, err := kafka.NewConsumer(cfg.Kafka.ConfigMap(kafka.ConfigMap{
		"group.id":             cfg.GroupID, // never joined: partitions are assigned
		"enable.auto.commit":   false,
		"isolation.level":      isolation,
		"enable.partition.eof": true,
		"log_level":            2, // critical only: connection failures come back as errors
	}))
	if err != nil {
		return nil, fmt.Errorf("topicreader: consumer: %w", err)
	}
	r := &Reader{c: c, topic: cfg.Topic, log: cfg.Log, start: map[int32]int64{}, eof: map[int32]int64{}, tmo: cfg.Timeout, fast: cfg.FailFast}
	if err := r.assign(ctx, cfg); err != nil {
		c.Close()
		return nil, err
	}
	return r, nil
}

// check rejects the settings that contradict each other or an offset below 0.
func (cfg Config) check() error {
	if cfg.StopAtEnd && cfg.StopAt != nil {
		return errors.New("topicreader: StopAtEnd and StopAt are exclusive")
	}
	if cfg.Start.kind == 4 && len(cfg.Partitions) > 0 {
		return errors.New("topicreader: AtOffsets names the partitions: Partitions must be empty")
	}
	if cfg.Start.kind == 4 && len(cfg.Start.offsets) == 0 {
		return errors.New("topicreader: AtOffsets names no partition")
	}
	for _, o := range append([]int64{cfg.Start.offset}, slices.Collect(maps.Values(cfg.Start.offsets))...) {
		if o < 0 {
			return fmt.Errorf("topicreader: offset must be 0 or more, got %d", o)
		}
	}
	return nil
}

// assign works out each partition's start and assigns them.
func (r *Reader) assign(ctx context.Context, cfg Config) error {
	want := cfg.Partitions
	if cfg.Start.kind == 4 {
		want = slices.Sorted(maps.Keys(cfg.Start.offsets))
	}
	ids, err := r.partitionIDs(ctx, want)
	if err != nil {
		return err
	}
	for _, id := range ids {
		tp := kafka.TopicPartition{Topic: &r.topic, Partition: id}
		switch cfg.Start.kind {
		case 0:
			_, high, err := r.c.QueryWatermarkOffsets(r.topic, id, r.timeoutMs(ctx))
			if err != nil {
				return fmt.Errorf("topicreader: watermarks of %s[%d]: %w", r.topic, id, err)
			}
			tp.Offset = kafka.Offset(high)
		case 1:
			tp.Offset = kafka.OffsetBeginning
		case 2:
			tp.Offset = kafka.Offset(cfg.Start.offset)
		case 3:
			tp.Offset = kafka.Offset(cfg.Start.at.UnixMilli())
		case 4:
			tp.Offset = kafka.Offset(cfg.Start.offsets[id])
		}
		r.parts = append(r.parts, tp)
	}
	if cfg.Start.kind == 3 {
		if r.parts, err = r.c.OffsetsForTimes(r.parts, r.timeoutMs(ctx)); err != nil {
			return fmt.Errorf("topicreader: offsets of %s for %s: %w", r.topic, cfg.Start.at.Format(time.RFC3339), err)
		}
		for i := range r.parts {
			if r.parts[i].Offset < 0 { // no record at or after that time
				r.parts[i].Offset = kafka.OffsetEnd
			}
		}
	}
	for _, tp := range r.parts {
		r.start[tp.Partition] = int64(tp.Offset)
	}
	if cfg.StopAtEnd {
		if err := r.StopAtCurrentEnd(ctx); err != nil {
			return err
		}
	}
	if cfg.StopAt != nil {
		r.ends = maps.Clone(cfg.StopAt)
	}
	if err := r.c.Assign(r.parts); err != nil {
		return fmt.Errorf("topicreader: assign %s: %w", r.topic, err)
	}
	return nil
}

// partitionIDs is want, checked against the topic's partitions, or all of them when want is empty.
func (r *Reader) partitionIDs(ctx context.Context, want []int32) ([]int32, error) {
	md, err := r.c.GetMetadata(&r.topic, false, r.timeoutMs(ctx))
	if err != nil {
		return nil, fmt.Errorf("topicreader: metadata of %s: %w", r.topic, err)
	}
	tm, ok := md.Topics[r.topic]
	if !ok || tm.Error.Code() == kafka.ErrUnknownTopicOrPart || len(tm.Partitions) == 0 {
		return nil, fmt.Errorf("topicreader: topic %s: %w", r.topic, ErrNoTopic)
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return nil, fmt.Errorf("topicreader: topic %s: %w", r.topic, tm.Error)
	}
	have := map[int32]bool{}
	var all []int32
	for _, p := range tm.Partitions {
		have[p.ID] = true
		all = append(all, p.ID)
	}
	if len(want) == 0 {
		return all, nil
	}
	for _, id := range want {
		if !have[id] {
			return nil, fmt.Errorf("topicreader: topic %s has no partition %d (it has %d): %w", r.topic, id, len(all), ErrNoTopic)
		}
	}
	return want, nil
}

// StopAtCurrentEnd takes each partition's high watermark now as where it stops: from then on, Next
// returns io.EOF once every partition is read up to it.
func (r *Reader) StopAtCurrentEnd(ctx context.Context) error {
	ends := map[int32]int64{}
	for _, tp := range r.parts {
		_, high, err := r.c.QueryWatermarkOffsets(r.topic, tp.Partition, r.timeoutMs(ctx))
		if err != nil {
			return fmt.Errorf("topicreader: watermarks of %s[%d]: %w", r.topic, tp.Partition, err)
		}
		ends[tp.Partition] = high
	}
	r.ends = ends
	return nil
}

// Topic is the topic read.
func (r *Reader) Topic() string { return r.topic }

// Partitions is the number of partitions read.
func (r *Reader) Partitions() int { return len(r.parts) }

// Starts is the offset each partition read starts at: for FromEnd the high watermark librdkafka
// reported when the reader opened; kafka.OffsetBeginning (-2) for FromBeginning, kafka.OffsetEnd
// (-1) where Since found no record.
func (r *Reader) Starts() map[int32]int64 { return maps.Clone(r.start) }

// atEnd reports whether every partition is read up to its end. A partition counts as read up to
// it when its position or its last end-of-partition event is there, or when it started there.
func (r *Reader) atEnd() bool {
	pos, err := r.c.Position(r.parts)
	if err != nil {
		return false
	}
	for _, p := range pos {
		end := r.ends[p.Partition]
		if s := r.start[p.Partition]; s >= 0 && s >= end {
			continue
		}
		// Position is invalid (negative) until a record of the partition was read.
		if int64(p.Offset) < end && r.eof[p.Partition] < end {
			return false
		}
	}
	return true
}

// Poll waits up to d for the next record: nil without an error when none came. It returns an
// error for a fatal client error, the topic deleted, or all brokers down with FailFast; io.EOF once the end
// (StopAtEnd, StopAtCurrentEnd) is reached.
func (r *Reader) Poll(d time.Duration) (*kafka.Message, error) {
	if r.ends != nil && r.atEnd() {
		return nil, io.EOF
	}
	switch ev := r.c.Poll(max(1, int(d.Milliseconds()))).(type) {
	case *kafka.Message:
		if ev.TopicPartition.Error != nil {
			r.log.Debug("topicreader: fetch", "topic", r.topic, "err", ev.TopicPartition.Error)
			return nil, nil
		}
		return ev, nil
	case kafka.PartitionEOF:
		r.eof[ev.Partition] = int64(ev.Offset)
	case kafka.Error:
		if ev.IsFatal() || ev.Code() == kafka.ErrUnknownTopicOrPart || r.fast && ev.Code() == kafka.ErrAllBrokersDown {
			return nil, fmt.Errorf("topicreader: reading %s: %w", r.topic, ev)
		}
		r.log.Debug("topicreader: kafka", "topic", r.topic, "err", ev)
	}
	return nil, nil
}

// Next waits for the next record until ctx ends (its error, wrapped), or returns io.EOF once the
// end is reached (StopAtEnd, StopAtCurrentEnd); other errors as Poll.
func (r *Reader) Next(ctx context.Context) (*kafka.Message, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("topicreader: reading %s: %w", r.topic, err)
		}
		m, err := r.Poll(100 * time.Millisecond)
		if m != nil || err != nil {
			return m, err
		}
	}
}

// ReadAll reads up to the end (see StopAtCurrentEnd, which it calls when no end is set yet) and
// returns the records in the order read.
func (r *Reader) ReadAll(ctx context.Context) ([]*kafka.Message, error) {
	if r.ends == nil {
		if err := r.StopAtCurrentEnd(ctx); err != nil {
			return nil, err
		}
	}
	var out []*kafka.Message
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// Close leaves nothing behind: no group was joined, no offset committed.
func (r *Reader) Close() {
	r.c.Close()
}

// timeoutMs is what is left of ctx's deadline in milliseconds for a librdkafka call that takes a
// timeout (at least 1), or the configured timeout when ctx has none.
func (r *Reader) timeoutMs(ctx context.Context) int {
	d, ok := ctx.Deadline()
	if !ok {
		return int(r.tmo.Milliseconds())
	}
	return max(1, int(time.Until(d).Milliseconds()))
}
