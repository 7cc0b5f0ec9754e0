package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/internal/topicreader"
	"github.com/todocdc/pipeline/serde"
)

// tailOptions are the flags of tail.
type tailOptions struct {
	fromBeginning bool
	offset        int64
	since         string
	partition     int32
	max           int
	noFollow      bool
	isolation     string
}

// tailRecord is one record as tail prints it (one JSON object per line with --output json).
type tailRecord struct {
	Topic     string         `json:"topic"`
	Partition int32          `json:"partition"`
	Offset    int64          `json:"offset"`
	Timestamp time.Time      `json:"timestamp"`
	Key       string         `json:"key"`
	Headers   []tailHeader   `json:"headers"`
	SchemaID  int            `json:"schema_id,omitempty"`
	Record    string         `json:"record,omitempty"`
	Event     map[string]any `json:"event,omitempty"`
	Error     string         `json:"error,omitempty"`
	ValueHex  string         `json:"value_hex,omitempty"`
}

type tailHeader struct {
	Key      string `json:"key"`
	Value    string `json:"value,omitempty"`
	ValueHex string `json:"value_hex,omitempty"`
}

func (a *app) tailCmd() *cobra.Command {
	var o tailOptions
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print a topic's records as typed events, with their headers",
		Long: `tail reads TOPIC (every partition, or --partition P) and prints each record:
partition, offset, timestamp, key, every header, and the value decoded with
the writer schema the registry holds for its schema id (as the typed event the
consumers see). A value that cannot be decoded (not the wire format, an unknown
schema id, a body that does not decode) is printed as hex with the error: tail
reads the dead-letter topic too.

Where it starts: by default at the end (new records only); --from-beginning,
--offset N (in every partition read) or --since (a duration back from now,
like 15m, or an RFC 3339 time). It follows the topic until interrupted;
--max N stops after N records, --no-follow once every partition's end is
reached. It reads read_committed by default, like the consumers: records of
aborted transactions are not shown (--isolation read_uncommitted shows them).
It joins no consumer group and commits nothing.

With --output json it prints one JSON object per record and line.`,
		Example: `  pipelinectl tail todos.task.events
  pipelinectl tail todos.task.events --from-beginning --max 10
  pipelinectl tail todos.task.events --since 15m --no-follow -o json | jq .event
  pipelinectl tail todos.task.events --partition 2 --offset 1200 --max 1
  pipelinectl tail todos.task.events.dlq --from-beginning --no-follow`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, topics []string) error {
			return a.tail(cmd, topics[0], o, cmd.Flags().Changed("offset"), cmd.Flags().Changed("partition"))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.fromBeginning, "from-beginning", false, "start at the first record of each partition")
	f.Int64Var(&o.offset, "offset", 0, "start at this offset in each partition read")
	f.StringVar(&o.since, "since", "", "start at records written since this duration ago (15m) or this RFC 3339 time")
	f.Int32Var(&o.partition, "partition", 0, "read only this partition (default: every partition)")
	f.IntVar(&o.max, "max", 0, "stop after this many records (0: no limit)")
	f.BoolVar(&o.noFollow, "no-follow", false, "stop once the end of every partition is reached")
	f.StringVar(&o.isolation, "isolation", "read_committed", "read_committed or read_uncommitted")
	return cmd
}

// start turns the flags into where each partition starts, and checks they do not contradict
// each other.
func (o tailOptions) start(offsetSet bool, now time.Time) (topicreader.Start, error) {
	n := 0
	for _, set := range []bool{o.fromBeginning, offsetSet, o.since != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return topicreader.Start{}, usagef("--from-beginning, --offset and --since are exclusive")
	}
	switch {
	case o.fromBeginning:
		return topicreader.FromBeginning(), nil
	case offsetSet:
		if o.offset < 0 {
			return topicreader.Start{}, usagef("--offset must be 0 or more, got %d", o.offset)
		}
		return topicreader.AtOffset(o.offset), nil
	case o.since != "":
		if d, err := time.ParseDuration(o.since); err == nil {
			if d <= 0 {
				return topicreader.Start{}, usagef("--since must be a positive duration, got %s", o.since)
			}
			return topicreader.Since(now.Add(-d)), nil
		}
		t, err := time.Parse(time.RFC3339, o.since)
		if err != nil {
			return topicreader.Start{}, usagef("--since %q is neither a duration (15m) nor an RFC 3339 time", o.since)
		}
		return topicreader.Since(t), nil
	}
	return topicreader.FromEnd(), nil
}

func (a *app) tail(cmd *cobra.Command, topic string, o tailOptions, offsetSet, partitionSet bool) error {
	if o.max < 0 {
		return usagef("--max must be 0 or more, got %d", o.max)
	}
	if o.isolation != "read_committed" && o.isolation != "read_uncommitted" {
		return usagef("--isolation must be read_committed or read_uncommitted, got %q", o.isolation)
	}
	start, err := o.start(offsetSet, time.Now())
	if err != nil {
		return err
	}
	cfg := topicreader.Config{Kafka: a.kafka, Topic: topic, Start: start, StopAtEnd: o.noFollow,
		ReadUncommitted: o.isolation == "read_uncommitted", GroupID: fmt.Sprintf("pipelinectl-tail-%d", time.Now().UnixNano()),
		Timeout: a.timeout, Log: a.log}
	if partitionSet {
		cfg.Partitions = []int32{o.partition}
	}
	ctx := cmd.Context()
	r, err := topicreader.Open(ctx, cfg)
	switch {
	case errors.Is(err, topicreader.ErrNoTopic) && partitionSet:
		return usagef("%v", err)
	case errors.Is(err, topicreader.ErrNoTopic):
		return fmt.Errorf("topic %s does not exist", topic)
	case err != nil:
		return err
	}
	defer r.Close()
	deser := serde.NewDeserializer(a.registryClient())
	for printed := 0; o.max == 0 || printed < o.max; printed++ {
		m, err := r.Next(ctx)
		switch {
		case errors.Is(err, io.EOF) || ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		}
		if err := a.printTail(tailRecordOf(ctx, deser, m)); err != nil {
			return err
		}
	}
	return nil
}

// tailRecordOf is m as tail prints it, its value decoded by deser (or kept as hex with the error).
func tailRecordOf(ctx context.Context, deser *serde.Deserializer, m *kafka.Message) tailRecord {
	r := tailRecord{
		Topic:     *m.TopicPartition.Topic,
		Partition: m.TopicPartition.Partition,
		Offset:    int64(m.TopicPartition.Offset),
		Timestamp: m.Timestamp.UTC(),
		Key:       string(m.Key),
		Headers:   []tailHeader{},
	}
	for _, h := range m.Headers {
		th := tailHeader{Key: h.Key}
		if utf8.Valid(h.Value) {
			th.Value = string(h.Value)
		} else {
			th.ValueHex = hex.EncodeToString(h.Value)
		}
		r.Headers = append(r.Headers, th)
	}
	d, err := deser.Deserialize(ctx, m.Value)
	r.SchemaID = d.SchemaID
	if err != nil {
		r.Error = err.Error()
		r.ValueHex = hex.EncodeToString(m.Value)
	} else {
		r.Record = d.Event.RecordName()
		r.Event = avroFields(d.Event)
	}
	return r
}

func (a *app) printTail(r tailRecord) error {
	if a.output == "json" {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("write record: %w", err)
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	w := a.stdout
	fmt.Fprintf(w, "%s[%d]@%d %s key=%s\n", r.Topic, r.Partition, r.Offset, r.Timestamp.Format(time.RFC3339Nano), r.Key)
	hs := make([]string, 0, len(r.Headers))
	for _, h := range r.Headers {
		if h.ValueHex != "" {
			hs = append(hs, h.Key+"=0x"+h.ValueHex)
		} else {
			hs = append(hs, h.Key+"="+h.Value)
		}
	}
	fmt.Fprintf(w, "  headers: %s\n", strings.Join(hs, " "))
	if r.Error != "" {
		fmt.Fprintf(w, "  undecodable: %s\n  value (hex): %s\n", r.Error, r.ValueHex)
		return nil
	}
	ev, _ := json.Marshal(r.Event)
	fmt.Fprintf(w, "  %s (schema %d): %s\n", r.Record, r.SchemaID, ev)
	return nil
}

// avroFields is a typed event as a map from its Avro field names (the struct's avro tags).
func avroFields(ev any) map[string]any {
	v := reflect.Indirect(reflect.ValueOf(ev))
	if v.Kind() != reflect.Struct {
		return map[string]any{"value": ev}
	}
	m := make(map[string]any, v.NumField())
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("avro"), ",")
		if name == "" || name == "-" {
			name = f.Name
		}
		m[name] = v.Field(i).Interface()
	}
	return m
}
