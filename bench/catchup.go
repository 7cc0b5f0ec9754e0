package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/todocdc/pipeline/events"
	"github.com/todocdc/pipeline/internal/connect"
	"github.com/todocdc/pipeline/serde"
)

// CatchUp is a relay catching up on a backlog: Events committed while it was halted (the
// connector paused, or stopped with -catchup-halt stop; the peer's forwarder stopped), then
// started. Rates are Events divided by the time from the start to the last event in
// Kafka (relayed) or handled by a group; Steady ones from the first to the last.
type CatchUp struct {
	Events        int                `json:"events"`
	WriteSecs     float64            `json:"write_s"`
	FirstInKafka  float64            `json:"first_in_kafka_after_s"`
	Relayed       float64            `json:"relayed_per_s"`
	RelayedSteady float64            `json:"relayed_steady_per_s"`
	Handled       map[string]float64 `json:"handled_per_s,omitempty"`
	Missing       map[string]int     `json:"missing,omitempty"`
	CPU           CPUUse             `json:"cpu"`
}

func (b *bench) catchUp(ctx context.Context, rep *Report) error {
	n := b.c.CatchUpEvents
	cc, err := connect.New(b.c.ConnectURL, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	rd, err := b.newReader(ctx, events.Topic)
	if err != nil {
		return err
	}
	defer rd.close()
	b.log.Info("catch-up: halting the connector (the pipeline pauses)", "connector", b.c.Connector, "how", b.c.CatchUpHalt)
	halt, state := cc.Pause, "PAUSED"
	if b.c.CatchUpHalt == "stop" {
		halt, state = cc.Stop, "STOPPED"
	}
	if err := halt(ctx, b.c.Connector); err != nil {
		return fmt.Errorf("%s connector: %w", b.c.CatchUpHalt, err)
	}
	resumed := false
	defer func() { // whatever happens, the connector runs again
		if !resumed {
			rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := cc.Resume(rctx, b.c.Connector); err != nil {
				b.log.Error("catch-up: could not resume the connector: resume it by hand (pipelinectl connectors resume)", "err", err)
			}
		}
	}()
	if _, err := cc.WaitState(ctx, b.c.Connector, state, time.Minute); err != nil {
		return fmt.Errorf("connector not %s: %w", state, err)
	}
	t0 := time.Now()
	keys, ids, err := b.writeBacklog(ctx, n)
	if err != nil {
		return err
	}
	cu := CatchUp{Events: n, WriteSecs: round2(time.Since(t0).Seconds()), Handled: map[string]float64{}, Missing: map[string]int{}}
	b.log.Info("catch-up: backlog committed; starting the connector", "events", n, "took", time.Since(t0).Round(time.Millisecond))
	if err := b.slotKept(ctx, cc); err != nil {
		return err
	}
	comps := b.components()
	cpu0 := sampleCPU(comps)
	start := time.Now()
	if err := cc.Resume(ctx, b.c.Connector); err != nil {
		return fmt.Errorf("resume connector: %w", err)
	}
	resumed = true
	if _, err := cc.WaitResumed(ctx, b.c.Connector, time.Minute); err != nil {
		return fmt.Errorf("the connector did not run again: %w", err)
	}
	timeout := max(b.c.Drain, time.Duration(n/500)*time.Second)
	cu.relayed(ctx, rd, keys, start, timeout)
	for name, db := range map[string]querier{"notifier": b.notDB, "analytics": b.anaDB} {
		done, lastAt, err := waitHandledCount(ctx, db, name, ids, timeout)
		if err != nil {
			return err
		}
		cu.Missing[name] = n - done
		if done > 0 {
			cu.Handled[name] = round2(float64(done) / lastAt.Sub(start).Seconds())
		}
	}
	cu.CPU = cpuBetween(cpu0, sampleCPU(comps))
	rep.CatchUp = &cu
	return nil
}

// writeBacklog commits n TodoCreated events for the bench's users, 2,000 per transaction (todo
// rows and outbox rows by COPY, the outbox rows deleted again as todo-api does), and returns the
// todo ids (record keys) and event ids.
func (b *bench) writeBacklog(ctx context.Context, n int) (keys, ids []string, err error) {
	ser, err := serde.NewSerializer(serde.NewRegistryClient(b.c.RegistryURL, 10*time.Second), serde.SerializerConfig{})
	if err != nil {
		return nil, nil, err
	}
	conn, err := pgx.Connect(ctx, b.c.TodoDB)
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	const per = 2000
	for done := 0; done < n; done += per {
		m := min(per, n-done)
		var todoRows, outRows [][]any
		var batchIDs []uuid.UUID
		now := time.Now().UTC().Truncate(time.Millisecond)
		for i := range m {
			tid, eid := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
			user := "bench-u" + strconv.Itoa((done+i)%b.c.Users)
			ev := events.TodoCreated{TodoID: tid.String(), UserID: user, Title: "catch-up", Status: events.StatusPending, Priority: events.PriorityNormal, CreatedAt: now}
			payload, err := ser.Serialize(ctx, ev)
			if err != nil {
				return nil, nil, fmt.Errorf("encode: %w", err)
			}
			todoRows = append(todoRows, []any{tid, user, "catch-up", "PENDING", "NORMAL", now, now})
			outRows = append(outRows, []any{eid, events.AggregateType, tid.String(), events.TypeCreated, payload, now})
			batchIDs = append(batchIDs, eid)
			keys, ids = append(keys, tid.String()), append(ids, eid.String())
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"todos"}, []string{"id", "user_id", "title", "status", "priority", "created_at", "updated_at"}, pgx.CopyFromRows(todoRows)); err != nil {
				return fmt.Errorf("copy todos: %w", err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"outbox"}, []string{"id", "aggregate_type", "aggregate_id", "event_type", "payload", "created_at"}, pgx.CopyFromRows(outRows)); err != nil {
				return fmt.Errorf("copy outbox: %w", err)
			}
			_, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, batchIDs)
			return err
		})
		if err != nil {
			return nil, nil, fmt.Errorf("backlog: %w", err)
		}
	}
	return keys, ids, nil
}

// querier is what the waits need of a database: *sql.DB.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// waitHandledCount waits until group has applied every one of ids (or timeout) and returns how
// many it had, and the processed_at of the last one.
func waitHandledCount(ctx context.Context, db querier, group string, ids []string, timeout time.Duration) (int, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		var done int
		var last time.Time
		for i := 0; i < len(ids); i += 20000 {
			var n int
			var at sql.NullTime
			err := db.QueryRowContext(ctx, `SELECT count(*), max(processed_at) FROM consumer_processed_events
				WHERE group_id = $1 AND event_id = ANY($2)`, group, ids[i:min(i+20000, len(ids))]).Scan(&n, &at)
			if err != nil {
				return 0, time.Time{}, fmt.Errorf("processed events of %s: %w", group, err)
			}
			done += n
			if at.Valid {
				last = maxTime(last, at.Time)
			}
		}
		if done == len(ids) || time.Now().After(deadline) || ctx.Err() != nil {
			return done, last, ctx.Err()
		}
		time.Sleep(2 * time.Second)
	}
}

// relayed waits (up to timeout) for keys in Kafka and sets the relay's figures, counted from start.
func (cu *CatchUp) relayed(ctx context.Context, rd *reader, keys []string, start time.Time, timeout time.Duration) {
	got := rd.waitAll(ctx, keys, timeout)
	cu.Missing["kafka"] = len(keys) - got
	var first, last time.Time
	for _, k := range keys {
		if a, ok := rd.get(k); ok {
			if first.IsZero() || a.At.Before(first) {
				first = a.At
			}
			last = maxTime(last, a.At)
		}
	}
	if got > 0 {
		cu.FirstInKafka = round2(first.Sub(start).Seconds())
		cu.Relayed = round2(float64(got) / last.Sub(start).Seconds())
		if got > 1 {
			cu.RelayedSteady = round2(float64(got-1) / last.Sub(first).Seconds())
		}
	}
}

// slotKept checks that the connector's replication slot still exists. While the connector is
// stopped (not paused: a paused task keeps its replication connection) its slot is inactive, and anyone with the REPLICATION attribute may drop it (seen on the
// shared stack: another test's cleanup dropped it); the events committed meanwhile are then lost
// to the relay, and the task fails at its start ("no longer available on the server").
func (b *bench) slotKept(ctx context.Context, cc *connect.Client) error {
	cfg, err := cc.Config(ctx, b.c.Connector)
	if err != nil {
		return err
	}
	slot := cfg["slot.name"]
	var n int
	if err := b.todoDB.QueryRowContext(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&n); err != nil {
		return fmt.Errorf("replication slot %s: %w", slot, err)
	}
	if n == 0 {
		return fmt.Errorf("the replication slot %s was dropped while the connector was stopped: the events committed since are lost to the relay; "+
			"restore it: pipelinectl connectors stop, connectors offsets --reset --yes, scripts/stack.sh up (makes the slot), connectors resume", slot)
	}
	return nil
}
