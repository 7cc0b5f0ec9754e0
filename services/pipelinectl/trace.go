package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/topicreader"
)

// traceOutcome is what one consumer group did with one event.
type traceOutcome struct {
	Group string `json:"group"`
	// State is applied, retrying (on the retry topic), dead-lettered (in the DLQ, not replayed),
	// replayed (from the DLQ, not applied yet) or pending (not applied, not failed: not consumed yet).
	State string     `json:"state"`
	At    *time.Time `json:"at,omitempty"`    // applied: processed_at; retrying, dead-lettered: when it failed last; replayed: when
	Where string     `json:"where,omitempty"` // the retry or DLQ record: topic[partition]@offset
	Retry int        `json:"retry_count,omitempty"`
	Error string     `json:"error,omitempty"`
}

// traceEvent is one event of the todo on the main topic, with each group's outcome.
type traceEvent struct {
	Type        string         `json:"type"`
	EventID     string         `json:"ce_id"`
	CommittedAt time.Time      `json:"committed_at"` // ce_time: the outbox row's created_at, in the todo's transaction
	Topic       string         `json:"topic"`
	Partition   int32          `json:"partition"`
	Offset      int64          `json:"offset"`
	Groups      []traceOutcome `json:"groups"`
}

// traceResult is the whole trail of one todo.
type traceResult struct {
	TodoID string       `json:"todo_id"`
	Since  time.Time    `json:"since"` // where the topics were read from
	Events []traceEvent `json:"events"`
	Note   string       `json:"note,omitempty"`
}

func (a *app) traceCmd() *cobra.Command {
	var (
		groups   []string
		since    string
		dbURL    string
		topic    string
		retry    string
		dlqTopic string
	)
	cmd := &cobra.Command{
		Use:   "trace TODO_ID",
		Short: "Every event of one todo, in order, and what each consumer group did with it",
		Long: `trace answers "my todo never showed up": every event of the todo on the main
topic (records keyed by the todo id, read_committed, in offset order) with its
type, ce_id, when it was committed (ce_time), topic, partition and offset; and
for each consumer group whether and when it applied it (the group's
consumer_processed_events row in its database), or that it waits on the retry
topic or in the DLQ (with the error), or that it is not applied yet.

The topics are read from the todo's creation (its created_at in the todos
database, less a minute), or --since; events of the todo that are not on the
topic yet (the relay is behind or stuck: see pipelinectl status) do not show.`,
		Example: `  pipelinectl trace 01a226b3-78a5-750e-8916-84db8cd82c1e
  pipelinectl trace 01a226b3-78a5-750e-8916-84db8cd82c1e -o json
  pipelinectl trace ID --group notifier=postgres://... --since 2h`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id := strings.TrimSpace(argv[0])
			if id == "" || len(id) > 255 {
				return usagef("TODO_ID must be 1 to 255 characters")
			}
			targets, err := parseTraceGroups(groups)
			if err != nil {
				return err
			}
			var sinceAt time.Time
			if since != "" {
				if sinceAt, err = parseSince(since, time.Now()); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*a.timeout)
			defer cancel()
			res, err := a.trace(ctx, id, sinceAt, dbURL, topic, retry, dlqTopic, targets)
			if err != nil {
				return err
			}
			if err := a.emit(res, func(w io.Writer) { printTrace(w, res) }); err != nil {
				return err
			}
			if len(res.Events) == 0 {
				return reported{fmt.Errorf("no event of todo %s", id)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	var defGroups []string
	for _, g := range []string{"notifier", "analytics"} {
		if u := a.environ[strings.ToUpper(g)+"_DATABASE_URL"]; u != "" {
			defGroups = append(defGroups, g+"="+u)
		}
	}
	f.StringArrayVar(&groups, "group", defGroups, "consumer group and its database, NAME=DATABASE_URL (its consumer_processed_events); repeatable (default: notifier and analytics from NOTIFIER_DATABASE_URL, ANALYTICS_DATABASE_URL)")
	f.StringVar(&since, "since", "", "read the topics from this time (a duration back, e.g. 2h, or RFC 3339); default the todo's creation")
	dbDefault := a.environ["PIPELINE_DATABASE_URL"]
	if dbDefault == "" {
		dbDefault = a.environ["TODO_API_DATABASE_URL"]
	}
	f.StringVar(&dbURL, "database-url", dbDefault, "the todos database, for the todo's creation time (env PIPELINE_DATABASE_URL, else TODO_API_DATABASE_URL)")
	f.StringVar(&topic, "topic", events.Topic, "main topic")
	f.StringVar(&retry, "retry-topic", events.RetryTopic, "retry topic; empty: not read")
	f.StringVar(&dlqTopic, "dlq-topic", events.DLQTopic, "dead-letter topic; empty: not read")
	return cmd
}

type traceGroup struct{ name, dbURL string }

func parseTraceGroups(specs []string) ([]traceGroup, error) {
	var out []traceGroup
	for _, s := range specs {
		name, u, ok := strings.Cut(s, "=")
		if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(u) == "" {
			return nil, usagef("--group %q: want NAME=DATABASE_URL", redactURL(s))
		}
		out = append(out, traceGroup{strings.TrimSpace(name), strings.TrimSpace(u)})
	}
	return out, nil
}

// parseSince reads a duration back from now or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--since %q: want a positive duration (2h) or an RFC 3339 time", s)
}

func (a *app) trace(ctx context.Context, id string, since time.Time, dbURL, topic, retryTopic, dlqTopic string,
	groups []traceGroup) (traceResult, error) {
	res := traceResult{TodoID: id, Events: []traceEvent{}}
	if since.IsZero() {
		since = a.todoCreated(ctx, dbURL, id)
		if since.IsZero() {
			res.Note = "the todo's creation time is unknown (no such row, or no --database-url): the topics were read from the beginning"
		}
	}
	res.Since = since

	main, err := a.readKeyed(ctx, topic, id, since)
	if err != nil {
		return res, err
	}
	byID := map[string]int{}
	for _, m := range main {
		ev := traceEvent{Topic: topic, Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset),
			Type: dlq.HeaderOr(m.Headers, events.HeaderType, ""), EventID: dlq.HeaderOr(m.Headers, events.HeaderID, "")}
		ev.CommittedAt, _ = time.Parse(time.RFC3339Nano, dlq.HeaderOr(m.Headers, events.HeaderTime, ""))
		if _, seen := byID[ev.EventID]; seen && ev.EventID != "" {
			continue // a replayed copy, or a re-delivery by the relay: the first one is the event
		}
		byID[ev.EventID] = len(res.Events)
		res.Events = append(res.Events, ev)
	}

	// Failures per group and event: the latest retry record, the DLQ entry.
	type failure struct {
		state, where, err string
		at                time.Time
		retry             int
	}
	failed := map[string]map[string]failure{} // group -> ce_id -> failure
	note := func(group, eventID string, f failure) {
		if failed[group] == nil {
			failed[group] = map[string]failure{}
		}
		failed[group][eventID] = f
	}
	if retryTopic != "" {
		recs, err := a.readKeyed(ctx, retryTopic, id, since)
		if err != nil {
			return res, err
		}
		for _, m := range recs {
			f := dlq.ParseFailure(m.Headers)
			at, _ := time.Parse(time.RFC3339Nano, dlq.HeaderOr(m.Headers, dlq.HeaderFailedAt, ""))
			note(f.Group, dlq.HeaderOr(m.Headers, events.HeaderID, ""), failure{state: "retrying", err: f.Err, at: at, retry: f.RetryCount,
				where: fmt.Sprintf("%s[%d]@%d", retryTopic, m.TopicPartition.Partition, m.TopicPartition.Offset)})
		}
	}
	if dlqTopic != "" {
		rctx, cancel := context.WithTimeout(ctx, a.timeout)
		entries, err := dlq.Read(rctx, a.kafka, dlqTopic)
		cancel()
		if err != nil {
			return res, fmt.Errorf("read %s: %w", dlqTopic, err)
		}
		for _, e := range entries {
			if string(e.Key) != id {
				continue
			}
			f := failure{state: "dead-lettered", err: e.Failure.Err, retry: e.Failure.RetryCount,
				where: fmt.Sprintf("%s[%d]@%d", dlqTopic, e.Partition, e.Offset), at: e.Timestamp}
			if !e.ReplayedAt.IsZero() {
				f.state, f.at = "replayed", e.ReplayedAt
			}
			note(e.Failure.Group, dlq.HeaderOr(e.Headers, events.HeaderID, ""), f)
		}
	}

	ids := make([]string, 0, len(res.Events))
	for _, ev := range res.Events {
		ids = append(ids, ev.EventID)
	}
	for _, g := range groups {
		applied, err := processedAt(ctx, g, ids)
		if err != nil {
			return res, err
		}
		for i, ev := range res.Events {
			o := traceOutcome{Group: g.name, State: "pending"}
			if at, ok := applied[ev.EventID]; ok {
				o.State, o.At = "applied", &at
			} else if f, ok := failed[g.name][ev.EventID]; ok {
				o.State, o.Where, o.Error, o.Retry = f.state, f.where, f.err, f.retry
				if !f.at.IsZero() {
					at := f.at
					o.At = &at
				}
			}
			res.Events[i].Groups = append(res.Events[i].Groups, o)
		}
	}
	return res, nil
}

// todoCreated is the todo's created_at less a minute (the clocks of the database and Kafka may
// differ a little), or zero when it cannot be read.
func (a *app) todoCreated(ctx context.Context, dbURL, id string) time.Time {
	if dbURL == "" {
		return time.Time{}
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return time.Time{}
	}
	defer db.Close()
	var created time.Time
	if err := db.QueryRowContext(ctx, `SELECT created_at FROM todos WHERE id::text = $1`, id).Scan(&created); err != nil {
		if !errors.Is(err, sql.ErrNoRows) {
			a.log.Warn("todo's creation time unreadable: reading the topics from the beginning", "err", err)
		}
		return time.Time{}
	}
	return created.Add(-time.Minute)
}

// readKeyed reads topic from since (the beginning when zero) up to its current end, read_committed,
// and returns the records whose key is key, in partition and offset order.
func (a *app) readKeyed(ctx context.Context, topic, key string, since time.Time) ([]*kafka.Message, error) {
	start := topicreader.FromBeginning()
	if !since.IsZero() {
		start = topicreader.Since(since)
	}
	r, err := topicreader.Open(ctx, topicreader.Config{Kafka: a.kafka, Topic: topic, Start: start,
		StopAtEnd: true, FailFast: true, Timeout: a.timeout, Log: a.log})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", topic, err)
	}
	defer r.Close()
	var out []*kafka.Message
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		if string(m.Key) == key {
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(x, y *kafka.Message) int {
		if x.TopicPartition.Partition != y.TopicPartition.Partition {
			return int(x.TopicPartition.Partition - y.TopicPartition.Partition)
		}
		return int(x.TopicPartition.Offset - y.TopicPartition.Offset)
	})
	return out, nil
}

// processedAt reads the group's processed-events rows of the event ids.
func processedAt(ctx context.Context, g traceGroup, ids []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(ids) == 0 {
		return out, nil
	}
	db, err := sql.Open("pgx", g.dbURL)
	if err != nil {
		return nil, fmt.Errorf("group %s database: %w", g.name, err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT event_id, processed_at FROM consumer_processed_events
WHERE group_id = $1 AND event_id = ANY($2)`, g.name, ids)
	if err != nil {
		return nil, fmt.Errorf("group %s: read consumer_processed_events: %w", g.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("group %s: %w", g.name, err)
		}
		out[id] = at
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("group %s: %w", g.name, err)
	}
	return out, nil
}

func printTrace(w io.Writer, res traceResult) {
	if res.Note != "" {
		fmt.Fprintf(w, "note: %s\n", res.Note)
	}
	if len(res.Events) == 0 {
		fmt.Fprintf(w, "todo %s: no event on the topic since %s: not there yet (is the relay moving? pipelinectl status)\n",
			res.TodoID, res.Since.UTC().Format(time.RFC3339))
		return
	}
	fmt.Fprintf(w, "todo %s: %d events\n", res.TodoID, len(res.Events))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, ev := range res.Events {
		fmt.Fprintf(tw, "%s\tce_id %s\tcommitted %s\t%s[%d]@%d\n", ev.Type, ev.EventID, ev.CommittedAt.UTC().Format(time.RFC3339Nano),
			ev.Topic, ev.Partition, ev.Offset)
		for _, o := range ev.Groups {
			line := "  " + o.Group + "\t" + o.State
			if o.At != nil {
				line += " " + o.At.UTC().Format(time.RFC3339Nano)
			}
			if o.Where != "" {
				line += "\t" + o.Where
			}
			if o.Retry > 0 {
				line += "\tretry_count " + strconv.Itoa(o.Retry)
			}
			if o.Error != "" {
				line += "\t" + dlqTruncate(o.Error, 120)
			}
			fmt.Fprintln(tw, line)
		}
	}
	tw.Flush()
}
