package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/producer"
	"github.com/todocdc/pipeline/internal/topics"
	"github.com/todocdc/pipeline/serde"
)

// dlqRecord is one DLQ entry as dlq list/show print it.
type dlqRecord struct {
	Partition         int32             `json:"partition"`
	Offset            int64             `json:"offset"`
	Timestamp         time.Time         `json:"timestamp"`
	Key               string            `json:"key"`
	EventID           string            `json:"event_id,omitempty"`
	EventType         string            `json:"event_type,omitempty"`
	OriginalTopic     string            `json:"original_topic"`
	OriginalPartition int32             `json:"original_partition"`
	OriginalOffset    int64             `json:"original_offset"`
	Error             string            `json:"error"`
	ErrorClass        string            `json:"error_class"`
	RetryCount        int               `json:"retry_count"`
	FirstFailure      time.Time         `json:"first_failure_time"`
	Group             string            `json:"consumer_group"`
	ReplayedAt        *time.Time        `json:"replayed_time,omitempty"`
	ReplayedTo        string            `json:"replayed_to_topic,omitempty"`
	Headers           map[string]string `json:"headers,omitempty"`
	SchemaID          int               `json:"schema_id,omitempty"`
	Event             any               `json:"event,omitempty"`
	DecodeError       string            `json:"decode_error,omitempty"`
	ValueHex          string            `json:"value_hex,omitempty"`
}

func toDLQRecord(e dlq.Entry) dlqRecord {
	f := e.Failure
	r := dlqRecord{Partition: e.Partition, Offset: e.Offset, Timestamp: e.Timestamp, Key: string(e.Key),
		OriginalTopic: f.Topic, OriginalPartition: f.Partition, OriginalOffset: f.Offset, Error: f.Err,
		ErrorClass: f.Class.String(), RetryCount: f.RetryCount, FirstFailure: f.FirstFailure, Group: f.Group,
		ReplayedTo: e.ReplayedTo}
	r.EventID, _ = dlq.Header(e.Headers, events.HeaderID)
	r.EventType, _ = dlq.Header(e.Headers, events.HeaderType)
	if !e.ReplayedAt.IsZero() {
		t := e.ReplayedAt
		r.ReplayedAt = &t
	}
	return r
}

func (a *app) dlqCmd() *cobra.Command {
	var topic string
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay the dead-letter topic",
		Long: `dlq reads the dead-letter topic (todos.task.events.dlq): every record there keeps
its original key, value and headers, plus headers saying where it came from
(original_topic, original_partition, original_offset), why it failed
(error_message, error_class: retriable or permanent), how often it was retried
(retry_count), since when (first_failure_time) and in which consumer group.

replay writes chosen records back to their original topic once the cause is
fixed, and records the replay in the DLQ (a marker record), so list shows them
as replayed and replay --all skips them. A replayed event keeps its ce_id: a
consumer that had already applied it skips it.`,
		Example: `  pipelinectl dlq list
  pipelinectl dlq show 12
  pipelinectl dlq replay 12 13
  pipelinectl dlq replay --all`,
		Args: args(cobra.ArbitraryArgs),
		RunE: group,
	}
	cmd.PersistentFlags().StringVar(&topic, "topic", events.DLQTopic, "dead-letter topic")
	cmd.AddCommand(a.dlqListCmd(&topic), a.dlqShowCmd(&topic), a.dlqReplayCmd(&topic))
	return cmd
}

func (a *app) dlqListCmd(topic *string) *cobra.Command {
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the dead-lettered records (replayed ones with --all)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := a.readDLQ(cmd.Context(), *topic)
			if err != nil {
				return err
			}
			out := []dlqRecord{}
			for _, e := range entries {
				if all || e.ReplayedAt.IsZero() {
					out = append(out, toDLQRecord(e))
				}
			}
			return a.emit(out, func(w io.Writer) { printDLQList(w, *topic, out) })
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include records already replayed")
	return list
}

func printDLQList(w io.Writer, topic string, out []dlqRecord) {
	if len(out) == 0 {
		fmt.Fprintf(w, "%s: no dead-lettered records to show\n", topic)
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OFFSET\tFROM\tEVENT ID\tTYPE\tCLASS\tRETRIES\tFIRST FAILURE\tGROUP\tREPLAYED\tERROR")
	for _, r := range out {
		replayed := "-"
		if r.ReplayedAt != nil {
			replayed = r.ReplayedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s[%d]@%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Offset, r.OriginalTopic,
			r.OriginalPartition, r.OriginalOffset, dlqOr(r.EventID, "-"), dlqOr(r.EventType, "-"), r.ErrorClass, r.RetryCount,
			r.FirstFailure.Format(time.RFC3339), r.Group, replayed, dlqTruncate(r.Error, 80))
	}
	tw.Flush()
}

func (a *app) dlqShowCmd(topic *string) *cobra.Command {
	return &cobra.Command{
		Use:   "show OFFSET...",
		Short: "Show dead-lettered records in full: headers and the decoded event",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			chosen, err := a.chooseEntries(cmd.Context(), *topic, argv, false)
			if err != nil {
				return err
			}
			deser := serde.NewDeserializer(serde.NewRegistryClient(a.registryURL, a.timeout))
			var out []dlqRecord
			for _, e := range chosen {
				out = append(out, decodedDLQRecord(cmd.Context(), deser, e))
			}
			return a.emit(out, func(w io.Writer) { printDLQShow(w, out) })
		},
	}
}

// chooseEntries reads the DLQ and returns the entries at the offsets argv names, in that order,
// or with all (and no offsets) every entry not replayed yet.
func (a *app) chooseEntries(ctx context.Context, topic string, argv []string, all bool) ([]dlq.Entry, error) {
	offsets, err := parseOffsets(argv)
	if err != nil {
		return nil, err
	}
	entries, err := a.readDLQ(ctx, topic)
	if err != nil {
		return nil, err
	}
	if !all {
		return pick(entries, offsets)
	}
	var chosen []dlq.Entry
	for _, e := range entries {
		if e.ReplayedAt.IsZero() {
			chosen = append(chosen, e)
		}
	}
	return chosen, nil
}

// decodedDLQRecord is e with its headers and its value decoded by deser (or kept as hex, up to
// 256 bytes, with the error).
func decodedDLQRecord(ctx context.Context, deser *serde.Deserializer, e dlq.Entry) dlqRecord {
	r := toDLQRecord(e)
	r.Headers = map[string]string{}
	for _, h := range e.Headers {
		r.Headers[h.Key] = string(h.Value)
	}
	d, err := deser.Deserialize(ctx, e.Value)
	r.SchemaID = d.SchemaID
	if err != nil {
		r.DecodeError = err.Error()
		r.ValueHex = fmt.Sprintf("%x", e.Value[:min(len(e.Value), 256)])
	} else {
		r.Event = d.Event
	}
	return r
}

func printDLQShow(w io.Writer, out []dlqRecord) {
	for i, r := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "offset %d (partition %d), written %s, key %q\n", r.Offset, r.Partition, r.Timestamp.UTC().Format(time.RFC3339), r.Key)
		fmt.Fprintf(w, "  from:     %s[%d] offset %d, group %s\n", r.OriginalTopic, r.OriginalPartition, r.OriginalOffset, r.Group)
		fmt.Fprintf(w, "  failure:  %s, retry_count %d, first failed %s\n", r.ErrorClass, r.RetryCount, r.FirstFailure.Format(time.RFC3339Nano))
		fmt.Fprintf(w, "  error:    %s\n", r.Error)
		if r.ReplayedAt != nil {
			fmt.Fprintf(w, "  replayed: %s to %s\n", r.ReplayedAt.Format(time.RFC3339Nano), r.ReplayedTo)
		}
		if r.DecodeError != "" {
			fmt.Fprintf(w, "  value:    does not decode (%s); hex %s\n", r.DecodeError, r.ValueHex)
		} else {
			fmt.Fprintf(w, "  event:    schema id %d, %+v\n", r.SchemaID, r.Event)
		}
		fmt.Fprintln(w, "  headers:")
		for _, h := range slices.Sorted(maps.Keys(r.Headers)) {
			fmt.Fprintf(w, "    %s: %s\n", h, dlqTruncate(r.Headers[h], 200))
		}
	}
}

// replayOptions are the flags of dlq replay.
type replayOptions struct {
	all, dryRun, force bool
	to                 string
}

func (a *app) dlqReplayCmd(topic *string) *cobra.Command {
	var o replayOptions
	replay := &cobra.Command{
		Use:   "replay [OFFSET...] [--all]",
		Short: "Write dead-lettered records back to their original topic, and record the replay",
		Long: `replay writes each chosen record (by DLQ offset, or --all that were not replayed
yet) back to its original topic (or --to), with its key, value and original
headers, then writes a marker into the DLQ recording the replay. A record
already replayed is skipped (and said so) unless --force: a replay that
failed partway lists what it replayed, and running it again does the rest.
When a target topic is compacted, a warning says that compaction may keep
the replayed (older) event as the latest of its key.

--dry-run prints what replay would do (status would_replay and the target
topic, or skipped) and writes nothing.`,
		Args: args(cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if o.all == (len(argv) > 0) {
				return usagef("give DLQ offsets or --all (not both)")
			}
			chosen, err := a.chooseEntries(cmd.Context(), *topic, argv, o.all)
			if err != nil {
				return err
			}
			return a.replay(cmd.Context(), *topic, chosen, o)
		},
	}
	replay.Flags().BoolVar(&o.all, "all", false, "replay every record not replayed yet")
	replay.Flags().BoolVar(&o.force, "force", false, "replay records that were already replayed")
	replay.Flags().StringVar(&o.to, "to", "", "topic to write to (default: each record's original_topic)")
	replay.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what would be replayed, write nothing")
	return replay
}

// replay replays chosen from the DLQ topic (see dlq replay's help) and prints the outcome of each.
func (a *app) replay(ctx context.Context, topic string, chosen []dlq.Entry, o replayOptions) error {
	results := []replayResult{}
	var todo []dlq.Entry
	for _, e := range chosen {
		if !o.force && !e.ReplayedAt.IsZero() {
			// a re-run after a replay that failed partway: what was done is skipped
			r := newReplayResult(e, replaySkipped)
			r.Topic = e.ReplayedTo
			r.Reason = fmt.Sprintf("already replayed at %s (--force to replay it again)", e.ReplayedAt.Format(time.RFC3339))
			results = append(results, r)
			continue
		}
		todo = append(todo, e)
	}
	a.warnCompacted(ctx, todo, o.to)
	if o.dryRun {
		results = append(results, wouldReplay(todo, o.to)...)
		return a.emit(results, func(w io.Writer) { printReplay(w, results) })
	}
	var pub *producer.Producer
	if len(todo) > 0 {
		var err error
		if pub, err = producer.New(a.kafka, a.log, nil); err != nil {
			return err
		}
		defer pub.Close()
	}
	done, failed := replayEntries(ctx, pub, topic, todo, o.to, a.timeout)
	results = append(results, done...)
	if err := a.emit(results, func(w io.Writer) { printReplay(w, results) }); err != nil {
		return err
	}
	if failed != nil {
		return reported{fmt.Errorf("replay stopped: %w (records replayed before it are recorded: a re-run skips them)", failed)}
	}
	return nil
}

// replay outcomes, as dlq replay prints them
const (
	replayDone         = "replayed"
	replaySkipped      = "skipped"
	replayFailed       = "failed"
	replayNotAttempted = "not_attempted"
	replayWould        = "would_replay" // --dry-run
)

type replayResult struct {
	Offset  int64  `json:"offset"`
	EventID string `json:"event_id,omitempty"`
	Status  string `json:"status"` // replayed, skipped, failed, not_attempted
	Topic   string `json:"replayed_to,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

func newReplayResult(e dlq.Entry, status string) replayResult {
	id, _ := dlq.Header(e.Headers, events.HeaderID)
	return replayResult{Offset: e.Offset, EventID: id, Status: status}
}

// wouldReplay is --dry-run's outcome of entries: each would be written to to, or to its
// original topic.
func wouldReplay(entries []dlq.Entry, to string) []replayResult {
	out := make([]replayResult, 0, len(entries))
	for _, e := range entries {
		r := newReplayResult(e, replayWould)
		r.Topic = to
		if r.Topic == "" {
			r.Topic = e.Failure.Topic
		}
		out = append(out, r)
	}
	return out
}

// replayEntries replays entries in order, each within timeout, and stops at the first failure:
// the entries after it are reported as not attempted. It returns every entry's outcome and that
// failure.
func replayEntries(ctx context.Context, pub dlq.Publisher, dlqTopic string, entries []dlq.Entry, to string,
	timeout time.Duration) ([]replayResult, error) {
	var results []replayResult
	var failed error
	for _, e := range entries {
		if failed != nil {
			results = append(results, newReplayResult(e, replayNotAttempted))
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		dest, err := dlq.Replay(rctx, pub, dlqTopic, e, to, time.Now())
		cancel()
		r := newReplayResult(e, replayDone)
		r.Topic = dest
		if err != nil {
			failed = err
			r.Status, r.Reason = replayFailed, err.Error()
		}
		results = append(results, r)
	}
	return results, failed
}

func printReplay(w io.Writer, results []replayResult) {
	if len(results) == 0 {
		fmt.Fprintln(w, "nothing to replay")
	}
	for _, r := range results {
		switch r.Status {
		case replayDone:
			fmt.Fprintf(w, "replayed offset %d (event %s) to %s\n", r.Offset, dlqOr(r.EventID, "-"), r.Topic)
		case replaySkipped:
			fmt.Fprintf(w, "skipped offset %d (event %s): %s\n", r.Offset, dlqOr(r.EventID, "-"), r.Reason)
		case replayFailed:
			fmt.Fprintf(w, "FAILED offset %d (event %s): %s\n", r.Offset, dlqOr(r.EventID, "-"), r.Reason)
		case replayWould:
			fmt.Fprintf(w, "would replay offset %d (event %s) to %s\n", r.Offset, dlqOr(r.EventID, "-"), r.Topic)
		default:
			fmt.Fprintf(w, "not attempted: offset %d (event %s)\n", r.Offset, dlqOr(r.EventID, "-"))
		}
	}
}

// warnCompacted warns, on stderr, about each target topic whose cleanup.policy includes compact:
// the replayed record is the newest of its key there, so compaction may keep it (an older event)
// instead of the later events of the same key. A topic that cannot be described is not checked.
func (a *app) warnCompacted(ctx context.Context, entries []dlq.Entry, to string) {
	var names []string
	for _, e := range entries {
		t := to
		if t == "" {
			t = e.Failure.Topic
		}
		if t != "" && !slices.Contains(names, t) {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		return
	}
	admin, err := topics.NewAdmin(a.kafka, a.timeout)
	if err != nil {
		a.log.Debug("compaction check", "err", err)
		return
	}
	defer admin.Close()
	described, err := admin.Describe(ctx, names)
	if err != nil {
		a.log.Debug("compaction check", "err", err)
		return
	}
	for _, name := range names {
		if policy := described[name].Configs["cleanup.policy"]; strings.Contains(policy, "compact") {
			fmt.Fprintf(a.stderr, "warning: %s is compacted (cleanup.policy=%s): a replayed record becomes the latest of its key, "+
				"and compaction may keep it instead of later events of the same key\n", name, policy)
		}
	}
}

func (a *app) readDLQ(ctx context.Context, topic string) ([]dlq.Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	return dlq.Read(ctx, a.kafka, topic)
}

func parseOffsets(argv []string) ([]int64, error) {
	var out []int64
	for _, s := range argv {
		o, err := strconv.ParseInt(s, 10, 64)
		if err != nil || o < 0 {
			return nil, usagef("%q is not a DLQ offset", s)
		}
		out = append(out, o)
	}
	return out, nil
}

// pick returns the entries at offsets, in the order given; an offset with no entry is an error.
func pick(entries []dlq.Entry, offsets []int64) ([]dlq.Entry, error) {
	var out []dlq.Entry
	for _, o := range offsets {
		found := false
		for _, e := range entries {
			if e.Offset == o {
				out = append(out, e)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("no dead-lettered record at offset %d", o)
		}
	}
	return out, nil
}

func dlqOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func dlqTruncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
