package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/connect"
	"github.com/todocdc/pipeline/internal/dlq"
	"github.com/todocdc/pipeline/internal/producer"
	"github.com/todocdc/pipeline/internal/relay"
)

// relayDatabaseURLEnv overrides the database connection stuck and skip use to read the slot.
const relayDatabaseURLEnv = "RELAY_DATABASE_URL"

// isolateBatchSize is the max.batch.size skip runs the connector with while it isolates the
// blocking event: one record per poll, so one record per Kafka transaction.
const isolateBatchSize = "1"

// stuckReport is what connectors stuck finds, and what skip acts on.
type stuckReport struct {
	Name      string          `json:"name"`
	Stuck     bool            `json:"stuck"`
	Status    string          `json:"status"`
	Task      int             `json:"task,omitempty"`
	Trace     *relay.Trace    `json:"trace,omitempty"`
	Committed *relay.Position `json:"committed_offset,omitempty"`
	Slot      *relay.SlotInfo `json:"slot,omitempty"`
	SlotLSN   string          `json:"slot_confirmed_lsn,omitempty"`
	Pending   int             `json:"pending_events"`          // undelivered outbox events read from the slot
	Before    []relay.Event   `json:"events_before,omitempty"` // pending events ahead of the blocking one
	Event     *relay.Event    `json:"event,omitempty"`         // the event that blocks the relay
	Reason    string          `json:"reason,omitempty"`        // why it is that one
	Isolate   bool            `json:"needs_isolation"`         // skip must first let the events before it through
	// SharedOffset lists the events that share the committed offset's LSN, when more than one
	// does: Debezium 3.6 cannot resume between them (dbz#1554) and skip refuses.
	SharedOffset []relay.Event  `json:"events_sharing_the_offset_lsn,omitempty"`
	Note         string         `json:"note,omitempty"`
	offset       connect.Offset // the committed offset, as Connect has it
	config       connect.Config // the connector's config
	stream       relay.Stream   // the pending changes (Event.Index points into it)
	router       relay.Router   // the connector's Outbox Event Router settings
}

// diagnose finds whether the connector is stuck and on which event: the failed task's trace,
// the committed offset, and the undelivered changes peeked from the replication slot.
func (a *app) diagnose(ctx context.Context, c *connect.Client, name string, limit int) (stuckReport, error) {
	r := stuckReport{Name: name}
	s, err := c.Status(ctx, name)
	if err != nil {
		return r, err
	}
	r.Status = s.Summary()
	f := s.Failure()
	if f == nil {
		r.Note = "no task is FAILED: the relay is not stuck on an event (a task that is RUNNING but delivers nothing is another fault: see the slot and the Connect log)"
		return r, nil
	}
	r.Task = f.Task
	tr := relay.ParseTrace(f.Trace)
	r.Trace = &tr
	if r.config, err = c.Config(ctx, name); err != nil {
		return r, err
	}
	if r.router, err = relay.RouterOf(r.config); err != nil {
		return r, err
	}
	offs, err := c.Offsets(ctx, name)
	if err != nil {
		return r, err
	}
	pos, err := r.setOffset(name, offs)
	if err != nil {
		return r, err
	}
	db, err := a.relayDB(r.config)
	if err != nil {
		return r, err
	}
	defer db.Close()
	slotName, pub := r.config["slot.name"], r.config["publication.name"]
	if slotName == "" {
		slotName = "debezium" // the connector's default
	}
	if pub == "" {
		pub = "dbz_publication"
	}
	slot, err := relay.Slot(ctx, db, slotName)
	if err != nil {
		return r, err
	}
	r.Slot, r.SlotLSN = &slot, slot.ConfirmedFlush.String()
	stream, err := relay.Peek(ctx, db, slotName, pub, limit)
	if err != nil {
		return r, err
	}
	pending, found := stream, true
	if r.Committed != nil {
		pending, found = relay.Pending(stream, pos)
	}
	if !found {
		r.Note = fmt.Sprintf("the slot holds nothing after the committed offset (LSN %s): the task failed on something else than an event",
			pos.LSN)
		return r, nil
	}
	r.stream = pending
	evs, err := r.router.Events(pending)
	if err != nil {
		return r, err
	}
	r.Pending = len(evs)
	// Events sharing the committed LSN (a COPY): Debezium 3.6 resumes after all of them, however
	// many it delivered (dbz#1554). A restart, ours included, would lose the undelivered ones.
	if at, err := r.router.Events(relay.AtLSN(stream, pos.Processed)); err == nil && len(at) > 1 && r.Committed != nil && pos.MessageType == "INSERT" {
		r.SharedOffset = at
		r.Stuck = tr.Send
		r.Note = fmt.Sprintf("%d events share LSN %s, the committed offset's (a COPY into the outbox): Debezium 3.6 records no position "+
			"inside one LSN and resumes after all of them, so it would lose those it has not delivered, the blocking one with them "+
			"(dbz#1554, fixed in Debezium 3.7.0). Nothing here can move between them: see README, \"A stuck relay\"", len(at), pos.Processed)
		return r, nil
	}
	if len(evs) == 0 {
		r.Note = "no undelivered outbox event in the slot after the committed offset: the task failed on something else than an event"
		return r, nil
	}
	pick := r.pickBlocking(evs, tr)
	r.Stuck = tr.Send
	if !tr.Send {
		r.Note = "the trace is not a failure to send a record: skipping an event would not help; read the trace"
	}
	e := evs[pick]
	r.Event, r.Before = &e, evs[:pick]
	return r, nil
}

// relayDB connects to the connector's database: RELAY_DATABASE_URL, or the connector's own
// host, port, database and credentials (config provider references ${env:VAR} resolved from
// pipelinectl's environment, as the worker resolves them from its own). The role needs
// REPLICATION to peek at the slot: the connector's role has it.
// setOffset takes the connector's committed source offset (none: it streams from the slot's
// position) and returns its position (zero without one).
func (r *stuckReport) setOffset(name string, offs []connect.Offset) (relay.Position, error) {
	var pos relay.Position
	switch len(offs) {
	case 0:
		// Nothing committed yet (a new connector, or offsets reset): Debezium streams from the
		// slot's confirmed position, its source partition is {"server": topic.prefix}.
		r.offset = connect.Offset{Partition: map[string]any{"server": r.config["topic.prefix"]}, Offset: map[string]any{}}
	case 1:
		r.offset = offs[0]
		var err error
		if pos, err = relay.ParsePosition(r.offset.Offset); err != nil {
			return pos, fmt.Errorf("connector %s offset: %w", name, err)
		}
		r.Committed = &pos
	default:
		return pos, fmt.Errorf("connector %s has %d committed source offsets, want 1 (one Debezium PostgreSQL server)", name, len(offs))
	}
	return pos, nil
}

// pickBlocking is the index of the event of evs the task is stuck on: the one its trace names,
// else the first that breaks the outbox rules, else the first (with Isolate: only one record per
// transaction can tell). It sets Reason, and Isolate when events are ahead of the one picked.
func (r *stuckReport) pickBlocking(evs []relay.Event, tr relay.Trace) int {
	pick := -1
	for i, e := range evs {
		if tr.Names(e) {
			pick, r.Reason = i, "the task's trace names it: "+tr.Summary()
			break
		}
	}
	if pick < 0 {
		for i, e := range evs {
			if e.Problem != "" {
				pick, r.Reason = i, "it breaks the outbox rules: "+e.Problem
				break
			}
		}
	}
	if pick < 0 {
		pick, r.Reason = 0, "it is the first undelivered event (neither the trace nor the outbox rules point at one)"
		r.Isolate = len(evs) > 1
	}
	if pick > 0 {
		r.Isolate = true
	}
	return pick
}

func (a *app) relayDB(cfg connect.Config) (*sql.DB, error) {
	dsn := a.environ[relayDatabaseURLEnv]
	if dsn == "" {
		resolve := func(key string) (string, error) {
			v := cfg[key]
			if ref, ok := strings.CutPrefix(v, "${env:"); ok && strings.HasSuffix(ref, "}") {
				name := strings.TrimSuffix(ref, "}")
				if v = a.environ[name]; v == "" {
					return "", fmt.Errorf("connector setting %s is ${env:%s}, and %s is not set here: set it, or %s", key, name, name, relayDatabaseURLEnv)
				}
			}
			return v, nil
		}
		var parts [5]string
		for i, k := range []string{"database.hostname", "database.port", "database.dbname", "database.user", "database.password"} {
			v, err := resolve(k)
			if err != nil {
				return nil, usageError{err}
			}
			parts[i] = v
		}
		if parts[1] == "" {
			parts[1] = "5432"
		}
		u := url.URL{Scheme: "postgres", User: url.UserPassword(parts[3], parts[4]), Host: net.JoinHostPort(parts[0], parts[1]),
			Path: "/" + parts[2], RawQuery: "sslmode=disable&application_name=pipelinectl"}
		dsn = u.String()
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("connector database: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func (a *app) connectorsStuckCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "stuck NAME",
		Short: "Name the outbox event that stops a Debezium outbox connector (its id and LSN)",
		Long: `stuck tells whether a Debezium PostgreSQL outbox connector is stopped by one event,
and which: its outbox id, LSN, transaction, key, type and the topic it routes to.

It reads the FAILED task's trace from Connect, the connector's committed source
offset (GET /connectors/NAME/offsets), and the changes the connector has not
delivered from its replication slot (pg_logical_slot_peek_binary_changes: the
slot does not move). It finds where the connector resumes as Debezium does,
then picks the event the trace names (an invalid topic), else the first one
that breaks the outbox's rules (outbox.Validate: topic name, key, type, wire
format, size), else the first undelivered one.

Events ahead of it were in the Kafka transaction the failure aborted: skip
delivers them before it moves past the blocking one (needs_isolation).

The database: the connector's own host, port, database and user (its
${env:VAR} references resolved from this environment), or RELAY_DATABASE_URL.
The role needs REPLICATION. Exit 0 when stuck on an event or not stuck, 1 on
an error.`,
		Example: `  pipelinectl connectors stuck todos-outbox
  pipelinectl connectors stuck todos-outbox -o json | jq .event`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			if limit < 1 {
				return usagef("--max-changes must be at least 1, got %d", limit)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			r, err := a.diagnose(cmd.Context(), c, names[0], limit)
			if err != nil {
				return err
			}
			return a.emit(r, func(w io.Writer) { printStuck(w, r) })
		},
	}
	cmd.Flags().IntVar(&limit, "max-changes", 100_000, "read at most about this many changes from the slot")
	return cmd
}

func printStuck(w io.Writer, r stuckReport) {
	fmt.Fprintf(w, "%s: %s\n", r.Name, r.Status)
	if r.Trace != nil {
		fmt.Fprintf(w, "  task %d failed: %s\n", r.Task, r.Trace.Summary())
	}
	if r.Committed != nil {
		fmt.Fprintf(w, "  committed offset: lsn %s, lsn_proc %s, lsn_commit %s, txId %d, %s\n", r.Committed.LSN,
			r.Committed.Processed, r.Committed.Commit, r.Committed.TxID, r.Committed.MessageType)
	}
	if r.Committed == nil && r.Slot != nil {
		fmt.Fprintf(w, "  committed offset: none yet (Debezium starts at the slot's confirmed position)\n")
	}
	if r.Slot != nil {
		fmt.Fprintf(w, "  slot %s: active %t, confirmed %s; %d undelivered outbox event(s) after the offset\n", r.Slot.Name,
			r.Slot.Active, r.SlotLSN, r.Pending)
	}
	if r.Event != nil {
		e := r.Event
		fmt.Fprintf(w, "  blocking event: outbox id %s at LSN %s (txid %d), key %q, type %q, topic %q, %d payload bytes\n",
			e.ID, e.LSN, e.XID, e.Key, e.Type, e.Topic, e.Size)
		fmt.Fprintf(w, "    because %s\n", r.Reason)
		if e.Problem != "" {
			fmt.Fprintf(w, "    outbox rules: %s\n", e.Problem)
		}
		if len(r.Before) > 0 {
			fmt.Fprintf(w, "  %d undelivered event(s) ahead of it (the failed Kafka transaction held them): skip delivers them first\n", len(r.Before))
		}
	}
	for _, e := range r.SharedOffset {
		fmt.Fprintf(w, "  at the committed LSN %s: outbox id %s, key %q, topic %q, %d payload bytes\n", e.LSN, e.ID, e.Key, e.Topic, e.Size)
	}
	if r.Note != "" {
		fmt.Fprintf(w, "  %s\n", r.Note)
	}
	if r.Stuck && r.Event != nil {
		fmt.Fprintf(w, "  to move past it: pipelinectl connectors skip %s --id %s --yes\n", r.Name, r.Event.ID)
	}
}

// skipResult is what connectors skip did (or, without --yes, would do).
type skipResult struct {
	Name     string         `json:"name"`
	Action   string         `json:"action"` // would-skip, skipped, refused, failed
	Event    *relay.Event   `json:"event,omitempty"`
	Isolated bool           `json:"isolated"`
	Offset   map[string]any `json:"offset,omitempty"` // the offset written (or to write)
	Recorded string         `json:"recorded,omitempty"`
	Status   string         `json:"status,omitempty"`
	Steps    []string       `json:"steps"`
	Error    string         `json:"error,omitempty"`
}

func (a *app) connectorsSkipCmd() *cobra.Command {
	var (
		yes      bool
		isolate  bool
		id       string
		dlqTopic string
		wait     time.Duration
		limit    int
	)
	cmd := &cobra.Command{
		Use:   "skip NAME",
		Short: "Move a stuck Debezium outbox connector past the one event that blocks it, recording it on the DLQ",
		Long: `skip moves a connector that connectors stuck finds stuck past the blocking event,
and loses no other event. Without --yes it only says what it would do.

With --yes:
  1. if events are ahead of the blocking one after the committed offset (the
     Kafka transaction the failure aborted held them), or the trace does not
     name the event, it isolates it: stop, max.batch.size=1 (one record per
     Kafka transaction), resume, and waits until the task fails again. Every
     event ahead is then delivered and committed, and the first undelivered
     event is the one the task fails on;
  2. it refuses when other events share the blocking event's LSN (a COPY
     into the outbox): Debezium 3.6's offset cannot point between them
     (dbz#1554, fixed in 3.7.0);
  3. it records the event on the DLQ (--dlq-topic): key, payload (left out,
     with its size and sha256, when too large for the topic), ce_id and ce_type
     headers, and the failure headers of the consumers' DLQ (original_topic =
     the topic it routed to, error_class permanent, consumer_group
     connector:NAME, error_message with the outbox id, LSN and the trace's
     first line); dlq list shows it, dlq replay --to can send it once fixed;
  4. stops the connector, restores its config, writes the offset Debezium
     would have committed right after delivering the event (PATCH
     /connectors/NAME/offsets: lsn and lsn_proc its LSN, txId its transaction,
     messageType INSERT), resumes it and waits until it runs. Debezium resumes
     with the change after it, in the same transaction or the next.

--id makes sure the event skipped is the one you looked at (connectors stuck).
Exit 0 when done (or planned), 1 when refused or failed (what was done is
printed).`,
		Example: `  pipelinectl connectors stuck todos-outbox
  pipelinectl connectors skip todos-outbox                 # dry run
  pipelinectl connectors skip todos-outbox --id 0190f3c2-... --yes`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			if wait <= 0 {
				return usagef("--wait must be positive, got %s", wait)
			}
			if limit < 1 {
				return usagef("--max-changes must be at least 1, got %d", limit)
			}
			name := names[0]
			c, err := a.connect()
			if err != nil {
				return err
			}
			res, err := a.skip(cmd.Context(), c, name, skipOptions{yes: yes, isolate: isolate, id: id, dlqTopic: dlqTopic, wait: wait, limit: limit})
			if err != nil {
				res.Error = err.Error()
				if res.Action == "" || res.Action == "would-skip" {
					res.Action = "refused"
				}
			}
			if perr := a.emit(res, func(w io.Writer) { printSkip(w, res) }); perr != nil {
				return perr
			}
			if err != nil {
				return reported{err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do it (without: a dry run that says what it would do)")
	cmd.Flags().BoolVar(&isolate, "isolate", false, "isolate the event first even when nothing seems ahead of it")
	cmd.Flags().StringVar(&id, "id", "", "the outbox id of the event to skip: refused if the blocking event is another")
	cmd.Flags().StringVar(&dlqTopic, "dlq-topic", events.DLQTopic, "topic to record the skipped event on")
	cmd.Flags().DurationVar(&wait, "wait", 3*time.Minute, "how long to wait for each state of the connector")
	cmd.Flags().IntVar(&limit, "max-changes", 100_000, "read at most about this many changes from the slot")
	return cmd
}

type skipOptions struct {
	yes      bool
	isolate  bool // even when diagnose finds nothing ahead of the event
	id       string
	dlqTopic string
	wait     time.Duration
	limit    int
}

func (a *app) skip(ctx context.Context, c *connect.Client, name string, o skipOptions) (res skipResult, err error) {
	res = skipResult{Name: name, Steps: []string{}}
	step := func(format string, args ...any) { res.Steps = append(res.Steps, fmt.Sprintf(format, args...)) }
	r, err := a.diagnose(ctx, c, name, o.limit)
	if err != nil {
		return res, err
	}
	res.Status = r.Status
	if len(r.SharedOffset) > 0 {
		return res, errors.New(r.Note)
	}
	if !r.Stuck || r.Event == nil {
		return res, fmt.Errorf("connector %s is not stuck on an event: %s", name, r.Note)
	}
	res.Event = r.Event
	r.Isolate = r.Isolate || o.isolate
	if o.id != "" && r.Event.ID != o.id && !r.Isolate {
		return res, fmt.Errorf("the blocking event is %s, not %s: run connectors stuck %s", r.Event.ID, o.id, name)
	}
	if !o.yes {
		err = planSkip(&res, r, o, step)
		return res, err
	}

	orig, interrupted := originalConfig(r.config)
	changed := interrupted // the connector runs with the isolation config
	if interrupted {
		step("the connector still had the isolation config of an interrupted skip: its own config is restored at the end")
	}
	defer func() {
		if changed {
			// leave the connector with its own config whatever happened
			if rerr := a.restoreConfig(ctx, c, name, orig, o.wait); rerr != nil {
				err = errors.Join(err, fmt.Errorf("restore the config of %s (do it by hand: connectors apply): %w", name, rerr))
			} else {
				step("config restored")
			}
			res.Status = a.statusLine(ctx, c, name)
		}
	}()
	if r.Isolate {
		if r, err = a.isolate(ctx, c, name, o, orig, &changed, step); err != nil {
			return res, err
		}
		res.Event, res.Isolated = r.Event, true
	}
	e := r.Event
	if o.id != "" && e.ID != o.id {
		return res, fmt.Errorf("the blocking event is %s, not %s: run connectors stuck %s", e.ID, o.id, name)
	}
	// Skip only an event something points at: the trace, the outbox rules, a record too large
	// (with one record per transaction, the one the task failed on), or the operator's --id.
	if o.id == "" && !r.Trace.Names(*e) && e.Problem == "" && !(res.Isolated && r.Trace.TooLarge) {
		return res, fmt.Errorf("nothing confirms that outbox event %s is the record the task fails on (trace: %s): "+
			"if it is, run skip again with --id %s", e.ID, r.Trace.Summary(), e.ID)
	}
	if e.SharedLSN > 0 {
		return res, fmt.Errorf("%d other event(s) share LSN %s with %s (a COPY into the outbox): Debezium 3.6's offset cannot point between them, "+
			"and skipping the LSN would lose them (dbz#1554, fixed in Debezium 3.7.0)", e.SharedLSN, e.LSN, e.ID)
	}
	off, err := relay.SkipOffset(r.offset.Offset, r.stream, e.Index)
	if err != nil {
		return res, err
	}
	res.Offset = off
	where, err := a.recordSkipped(ctx, name, *e, r.Trace.Summary(), o.dlqTopic)
	if err != nil {
		return res, fmt.Errorf("record the event on %s (nothing was skipped): %w", o.dlqTopic, err)
	}
	res.Recorded = where
	step("recorded outbox event %s on %s", e.ID, where)
	if err := a.stopWait(ctx, c, name, o.wait); err != nil {
		return res, err
	}
	if changed {
		if _, err := c.PutConfig(ctx, name, orig); err != nil {
			return res, err
		}
		changed = false
		step("config restored")
	}
	msg, err := c.AlterOffsets(ctx, name, []connect.Offset{{Partition: r.offset.Partition, Offset: off}})
	if err != nil {
		res.Action = "failed"
		return res, fmt.Errorf("%w (the connector is STOPPED with its committed offset: run connectors resume %s, or skip again)", err, name)
	}
	step("offset written: lsn %s (%s)", e.LSN, msg)
	res.Action = "skipped"
	if err := c.Resume(ctx, name); err != nil {
		return res, err
	}
	s, err := c.WaitResumed(ctx, name, o.wait)
	res.Status = s.Summary()
	if err != nil {
		return res, fmt.Errorf("resumed past %s, but: %w (another event may block it: run connectors stuck %s)", e.ID, err, name)
	}
	step("resumed: %s", res.Status)
	return res, nil
}

// isolatingKey marks a config skip changed for isolation; its value is the connector's own
// max.batch.size ("" when unset). A skip interrupted while isolating leaves it, and the next skip
// (or connectors apply) restores the connector's own config. Connect passes a key it does not
// know to the connector, which ignores it.
const isolatingKey = "pipelinectl.skip.isolating.max.batch.size"

// isolationConfig is cfg with max.batch.size=1 and the marker that remembers cfg's own value.
// planSkip is skip without --yes: the steps it would take, and the offset it would write when no
// isolation comes first.
func planSkip(res *skipResult, r stuckReport, o skipOptions, step func(string, ...any)) error {
	res.Action = "would-skip"
	if r.Isolate {
		step("isolate: stop, set max.batch.size=%s, resume, wait until the task fails again (%d event(s) ahead are delivered)", isolateBatchSize, len(r.Before))
	}
	step("record outbox event %s (LSN %s) on %s", r.Event.ID, r.Event.LSN, o.dlqTopic)
	step("stop, write the offset just past LSN %s, resume", r.Event.LSN)
	if r.Isolate {
		return nil
	}
	var err error
	res.Offset, err = relay.SkipOffset(r.offset.Offset, r.stream, r.Event.Index)
	return err
}

// isolate runs the connector with one record per poll (so one per Kafka transaction) until its
// task fails again, and returns the diagnosis then: everything ahead of the blocking event is
// delivered, and the event is the first undelivered one. *changed is set once the connector's
// config is about to change (its own config orig must then be restored).
func (a *app) isolate(ctx context.Context, c *connect.Client, name string, o skipOptions, orig connect.Config,
	changed *bool, step func(string, ...any)) (stuckReport, error) {
	if err := a.stopWait(ctx, c, name, o.wait); err != nil {
		return stuckReport{}, err
	}
	*changed = true
	if _, err := c.PutConfig(ctx, name, isolationConfig(orig)); err != nil {
		return stuckReport{}, err
	}
	if err := c.Resume(ctx, name); err != nil {
		return stuckReport{}, err
	}
	step("isolating: max.batch.size=%s, resumed", isolateBatchSize)
	if err := a.waitFailed(ctx, c, name, o.wait); err != nil {
		return stuckReport{}, err
	}
	r, err := a.diagnose(ctx, c, name, o.limit)
	if err != nil {
		return r, err
	}
	if len(r.SharedOffset) > 0 {
		return r, errors.New(r.Note)
	}
	if r.Event == nil || !r.Stuck {
		return r, fmt.Errorf("after isolation the connector is not stuck on an event: %s", r.Note)
	}
	idx := firstInsert(r.stream, r.router)
	if idx < 0 {
		return r, fmt.Errorf("after isolation no undelivered event is left in the slot: %s", r.Note)
	}
	first, err := r.router.Event(r.stream, idx)
	if err != nil {
		return r, err
	}
	r.Event, r.Reason = &first, "the task failed on it with one record per Kafka transaction"
	step("the task failed again on outbox event %s (LSN %s); everything ahead of it is delivered", first.ID, first.LSN)
	return r, nil
}

func isolationConfig(cfg connect.Config) connect.Config {
	iso := connect.Config{}
	for k, v := range cfg {
		iso[k] = v
	}
	iso[isolatingKey] = cfg["max.batch.size"]
	iso["max.batch.size"] = isolateBatchSize
	return iso
}

// originalConfig undoes isolationConfig: cfg itself when it holds no marker.
func originalConfig(cfg connect.Config) (orig connect.Config, wasIsolating bool) {
	own, ok := cfg[isolatingKey]
	if !ok {
		return cfg, false
	}
	orig = connect.Config{}
	for k, v := range cfg {
		if k != isolatingKey {
			orig[k] = v
		}
	}
	delete(orig, "max.batch.size")
	if own != "" {
		orig["max.batch.size"] = own
	}
	return orig, true
}

// firstInsert is the index of the first outbox insert of s, or -1.
func firstInsert(s relay.Stream, r relay.Router) int {
	evs, err := r.Events(s)
	if err != nil || len(evs) == 0 {
		return -1
	}
	return evs[0].Index
}

func (a *app) statusLine(ctx context.Context, c *connect.Client, name string) string {
	s, err := c.Status(ctx, name)
	if err != nil {
		return err.Error()
	}
	return s.Summary()
}

// stopWait stops the connector and waits until it is STOPPED with no task. connect.WaitState
// would end at once on the FAILED task a stuck connector has until its tasks are shut down.
func (a *app) stopWait(ctx context.Context, c *connect.Client, name string, d time.Duration) error {
	if err := c.Stop(ctx, name); err != nil {
		return err
	}
	return a.waitUntil(ctx, c, name, d, "STOPPED", func(s connect.Status) bool {
		return s.Connector.State == connect.StateStopped && len(s.Tasks) == 0
	})
}

// waitUntil polls the connector's status until done says so, or fails after d naming want.
func (a *app) waitUntil(ctx context.Context, c *connect.Client, name string, d time.Duration, want string, done func(connect.Status) bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last connect.Status
	for {
		s, err := c.Status(ctx, name)
		if err == nil {
			last = s
			if done(s) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connector %s not %s after %s: %s", name, want, d, last.Summary())
		case <-time.After(c.PollInterval):
		}
	}
}

// waitFailed waits until a task of the connector is FAILED.
func (a *app) waitFailed(ctx context.Context, c *connect.Client, name string, d time.Duration) error {
	return a.waitUntil(ctx, c, name, d, "FAILED", func(s connect.Status) bool { return s.Failure() != nil })
}

// restoreConfig stops the connector, puts its own config back and resumes it.
func (a *app) restoreConfig(ctx context.Context, c *connect.Client, name string, cfg connect.Config, d time.Duration) error {
	if err := a.stopWait(ctx, c, name, d); err != nil {
		return err
	}
	if _, err := c.PutConfig(ctx, name, cfg); err != nil {
		return err
	}
	return c.Resume(ctx, name)
}

// recordSkipped writes the skipped event to the DLQ topic in the consumers' DLQ format and
// returns where it landed (topic[partition]@offset).
func (a *app) recordSkipped(ctx context.Context, connector string, e relay.Event, why, topic string) (string, error) {
	p, err := producer.New(a.kafka, a.log, nil)
	if err != nil {
		return "", err
	}
	defer p.Close()
	now := time.Now().UTC()
	hs := []kafka.Header{{Key: events.HeaderID, Value: []byte(e.ID)}}
	if e.Type != "" {
		hs = append(hs, kafka.Header{Key: events.HeaderType, Value: []byte(e.Type)})
	}
	if e.Time != "" {
		hs = append(hs, kafka.Header{Key: events.HeaderTime, Value: []byte(e.Time)})
	}
	hs = append(hs, kafka.Header{Key: "outbox_lsn", Value: []byte(e.LSN)},
		kafka.Header{Key: "outbox_txid", Value: []byte(strconv.FormatUint(uint64(e.XID), 10))})
	hs = dlq.FailureHeaders(hs, dlq.Failure{Topic: e.Topic, Partition: -1, Offset: -1, Class: dlq.Permanent,
		Err:          fmt.Sprintf("skipped by pipelinectl connectors skip %s: outbox id %s at LSN %s could not be relayed: %s", connector, e.ID, e.LSN, why),
		FirstFailure: now, FailedAt: now, Group: "connector:" + connector})
	m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key: []byte(e.Key), Value: e.Payload, Headers: hs}
	err = p.Publish(ctx, m)
	var kerr kafka.Error
	if errors.As(err, &kerr) && kerr.Code() == kafka.ErrMsgSizeTooLarge {
		sum := sha256.Sum256(e.Payload)
		m.Value = nil
		m.Headers = append(m.Headers, kafka.Header{Key: "payload_omitted",
			Value: []byte(fmt.Sprintf("%d bytes, sha256 %s: too large for the topic", len(e.Payload), hex.EncodeToString(sum[:])))})
		err = p.Publish(ctx, m)
	}
	if err != nil {
		return "", err
	}
	return topic, nil
}

func printSkip(w io.Writer, r skipResult) {
	fmt.Fprintf(w, "%s: %s\n", r.Name, r.Action)
	if e := r.Event; e != nil {
		fmt.Fprintf(w, "  event: outbox id %s at LSN %s (txid %d), key %q, topic %q, %d payload bytes\n", e.ID, e.LSN, e.XID, e.Key, e.Topic, e.Size)
	}
	verb := "  did:"
	if r.Action == "would-skip" {
		verb = "  would (add --yes to do it):"
	}
	if len(r.Steps) > 0 {
		fmt.Fprintln(w, verb)
		for _, s := range r.Steps {
			fmt.Fprintf(w, "    - %s\n", s)
		}
	}
	if r.Status != "" {
		fmt.Fprintf(w, "  status: %s\n", r.Status)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
}
